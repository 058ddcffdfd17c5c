"""The parts of the CUDA backend that need neither CuPy nor a GPU.

:mod:`gpa_arrays._backends.cupy_` launches the kernels of ``kernels/gpa.cu``;
everything it decides without touching a device lives here, so that the tests
can check it on any machine: the source text NVRTC compiles, the compiler
options, the generated kernel names, the launch geometry, the packing of kernel
arguments and the decoding of the status buffer. ``tests/test_cuda_source.py``
compiles :func:`source` with NVRTC for several architectures, and builds the
same files as host C++ (``kernels/host_shim.h``) to run the kernels, launched
with the geometry and arguments made here, against the NumPy reference.
"""

from __future__ import annotations

import functools
import math
import re
from importlib import resources

import numpy as np

from .. import _config
from .._status import N_CATEGORIES

__all__ = [
    "KERNELS",
    "NULL",
    "OPTIONS",
    "decode_status",
    "element_strides",
    "gpa_plan",
    "grid_size",
    "kernel_name",
    "name_expressions",
    "pair_args",
    "pairing_args",
    "prepare_args",
    "source",
    "strided_args",
    "tile_poses",
    "tiled_args",
]

#: C type of each floating dtype the kernels are instantiated for.
CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

#: Kernel templates (instantiated per floating type) and plain kernels.
TEMPLATES = ("gpa_prepare", "gpa_tiled", "gpa_strided")
PLAIN = ("gpa_pair",)
KERNELS = TEMPLATES + PLAIN

#: NVRTC options. ``--fmad=false`` keeps ``a * b + c`` two rounded operations
#: (NVRTC contracts them into one fused multiply-add by default), which the
#: bit-for-bit agreement with NumPy needs. CuPy appends ``-ftz=true`` to every
#: RawModule's options; the kernels do not depend on it (see
#: ``kernels/common.cuh``).
OPTIONS = ("--fmad=false",)

#: Status buffer entries: ``[count, max(n - first)]`` per category.
STATUS_SIZE = 2 * N_CATEGORIES

#: A null pointer argument (CuPy passes a numpy.uint64 as its 8 bytes).
NULL = np.uint64(0)

_KERNEL_DIR = "kernels"
_MAIN = "gpa.cu"
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')


def _read(name):
    return resources.files(__package__).joinpath(_KERNEL_DIR, name).read_text("utf-8")


@functools.cache
def source() -> str:
    """The CUDA source of all kernels, as one string.

    Local ``#include "..."`` lines are replaced by the file they name (once per
    file, as ``#pragma once`` would), with ``#line`` markers so that compiler
    messages name the original file. One self-contained string matters because
    CuPy's on-disk kernel cache is keyed by the source text and options: with
    ``-I`` includes a changed header would hit a stale cached binary.
    """
    seen: set[str] = set()

    def expand(name):
        if name in seen:
            return []
        seen.add(name)
        lines = [f'#line 1 "{name}"']
        for number, line in enumerate(_read(name).splitlines(), start=1):
            match = _INCLUDE.match(line)
            if match:
                lines.extend(expand(match.group(1)))
                lines.append(f'#line {number + 1} "{name}"')
            elif line.strip() != "#pragma once":
                lines.append(line)
        return lines

    return "\n".join(expand(_MAIN)) + "\n"


def kernel_name(kernel: str, dtype=None) -> str:
    """The name expression of `kernel` for `dtype` (``"gpa_tiled<float>"``)."""
    if kernel in PLAIN:
        return kernel
    return f"{kernel}<{CTYPES[np.dtype(dtype)]}>"


@functools.cache
def name_expressions() -> tuple[str, ...]:
    """Every kernel instantiation the module provides, for NVRTC."""
    names = [kernel_name(k, dtype) for k in TEMPLATES for dtype in CTYPES]
    return (*names, *PLAIN)


# --- launch geometry ----------------------------------------------------------------


def tile_poses(joints, itemsize, threads=None, tile_bytes=None):
    """Poses per shared-memory tile of ``gpa_tiled``, or 0 for ``gpa_strided``.

    As many whole poses as fit in ``CUDA_TILE_BYTES``, at most one per thread,
    rounded down so that a tile spans a multiple of 16 bytes (every tile of a
    16-byte aligned array then starts aligned and is copied in 16-byte
    vectors). 0 when fewer than ``CUDA_MIN_TILE_POSES`` poses fit.
    """
    threads = _config.CUDA_THREADS_PER_BLOCK if threads is None else threads
    tile_bytes = _config.CUDA_TILE_BYTES if tile_bytes is None else tile_bytes
    pose_bytes = 3 * joints * itemsize
    granule = 16 // math.gcd(pose_bytes, 16)
    poses = min(threads, tile_bytes // pose_bytes) // granule * granule
    return poses if poses >= max(_config.CUDA_MIN_TILE_POSES, 1) else 0


def grid_size(items, per_block, multiprocessors):
    """Blocks for `items` work items at `per_block` each, capped at a few waves."""
    blocks = -(-items // per_block)
    return int(max(1, min(blocks, multiprocessors * _config.CUDA_BLOCKS_PER_SM)))


def gpa_plan(n, joints, itemsize, contiguous, multiprocessors):
    """How to launch GPA on `n` poses: ``(kernel, grid, shared bytes, tile)``.

    ``gpa_tiled`` when source and output are both C-contiguous (`contiguous`)
    and a tile holds enough poses, else ``gpa_strided``; `tile` is the poses per
    tile (0 for the strided kernel).
    """
    poses = tile_poses(joints, itemsize)
    if poses and contiguous:
        grid = grid_size(-(-n // poses), 1, multiprocessors)
        return "gpa_tiled", grid, poses * 3 * joints * itemsize, poses
    grid = grid_size(n, _config.CUDA_THREADS_PER_BLOCK, multiprocessors)
    return "gpa_strided", grid, 0, 0


def element_strides(array):
    """Strides of `array` in elements, or None when one is not a whole number."""
    itemsize = array.dtype.itemsize
    strides = array.strides
    if any(s % itemsize for s in strides):
        return None
    return tuple(s // itemsize for s in strides)


# --- kernel arguments (order and C types of the GPA_*_PARAMS in gpa.cu) ------------

_I32 = np.int32
_I64 = np.int64
_U64 = np.uint64
_F64 = np.float64


def pairing_args(spec, index=NULL, index_stride=0):
    """``GPA_PAIRING_PARAMS``: the pairing, as the kernels evaluate it.

    `index` is the explicit ``(count,)`` int64 pairing of an array pairing (on
    the kernels' device) and `index_stride` its stride in elements.
    """
    return (
        _I32(spec.kind),
        _I64(spec.offset),
        _U64(spec.seed),
        _U64(spec.step),
        _U64(spec.a),
        _U64(spec.b),
        _U64(spec.k),
        _U64(spec.m),
        _F64(1.0 / spec.b),
        _F64(1.0 / max(spec.m, 1)),
        index,
        _I64(index_stride),
    )


def prepare_args(target, target_strides, m, joints, root, camera, camera_strides,
                 with_camera, records, status):  # fmt: skip
    """``GPA_PREPARE_PARAMS``; strides are in elements."""
    return (
        target,
        *(_I64(s) for s in target_strides),
        _I64(m),
        _I32(joints),
        _I32(root),
        camera,
        *(_I64(s) for s in camera_strides),
        _I32(with_camera),
        records,
        status,
    )


def tiled_args(source, out, n, joints, root, records, camera, camera_strides, poseda,
               pairing, status, poses_per_tile):  # fmt: skip
    """``GPA_TILED_PARAMS``; `pairing` is the tuple of :func:`pairing_args`."""
    return (
        source,
        out,
        _I64(n),
        _I32(joints),
        _I32(root),
        records,
        camera,
        *(_I64(s) for s in camera_strides),
        _I32(poseda),
        *pairing,
        status,
        _I32(poses_per_tile),
    )


def strided_args(source, source_strides, out, out_strides, n, joints, root, records,
                 camera, camera_strides, poseda, pairing, status):  # fmt: skip
    """``GPA_STRIDED_PARAMS``; strides are in elements."""
    return (
        source,
        *(_I64(s) for s in source_strides),
        out,
        *(_I64(s) for s in out_strides),
        _I64(n),
        _I32(joints),
        _I32(root),
        records,
        camera,
        *(_I64(s) for s in camera_strides),
        _I32(poseda),
        *pairing,
        status,
    )


def pair_args(out, count, pairing):
    """``GPA_PAIR_PARAMS``."""
    return (out, _I64(count), *pairing)


# --- status -------------------------------------------------------------------------


def decode_status(raw, n):
    """Turn a kernel status buffer into the ``(3, 2)`` form of :mod:`_status`.

    Parameters
    ----------
    raw : (STATUS_SIZE,) uint64 ndarray, on the host
        Per category the count of flagged items and ``max(n - i)`` over them.
    n : int
        Items the kernel covered.

    Returns
    -------
    (3, 2) int64 ndarray or None
        ``[count, first index]`` per category, or None when nothing was flagged.
    """
    counts = raw[0::2].astype(np.int64)
    if not counts.any():
        return None
    status = np.zeros((N_CATEGORIES, 2), dtype=np.int64)
    status[:, 0] = counts
    status[:, 1] = np.where(counts > 0, n - raw[1::2].astype(np.int64), 0)
    return status
