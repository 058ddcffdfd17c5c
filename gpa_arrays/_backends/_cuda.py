"""The parts of the CUDA backend that need neither CuPy nor a GPU.

:mod:`gpa_arrays._backends.cupy_` launches the kernels of ``kernels/gpa.cu``
(GPA, pairing, target records, projection) and ``kernels/metrics.cu`` (the
metrics), each compiled as its own NVRTC module at its first use; everything
it decides without touching a device lives here, so that the tests
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
    "FEATURE_PERSPECTIVE",
    "FEATURE_PROJECT",
    "KERNELS",
    "MODULES",
    "NULL",
    "OPTIONS",
    "Launch",
    "block_size",
    "clip_args",
    "decode_status",
    "element_strides",
    "extension_args",
    "gpa_plan",
    "grid_size",
    "joint_errors_args",
    "kernel_name",
    "module_of",
    "name_expressions",
    "pair_args",
    "pairing_args",
    "prepare_args",
    "procrustes_fit_args",
    "project_args",
    "source",
    "strided_args",
    "strided_ext_args",
    "tile_pitch",
    "tile_poses",
    "tiled_args",
    "tiled_ext_args",
    "widen_args",
]

#: C type of each floating dtype the kernels are instantiated for.
CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

#: Kernel templates instantiated per floating type.
TEMPLATES = (
    "gpa_prepare",
    "gpa_widen",
    "gpa_tiled",
    "gpa_strided",
    "gpa_project",
    "gpa_clip",
)
#: Templates instantiated per floating type and feature set (``FEATURE_SETS``).
EXTENDED = ("gpa_tiled_ext", "gpa_strided_ext")
#: Kernels that are not templates.
PLAIN = ("gpa_pair",)
#: The metrics kernels (templates per floating type).
METRICS = ("gpa_joint_errors", "gpa_procrustes_fit")
#: Metrics kernels instantiated per floating type and alignment code
#: (``numpy_.ALIGN_*``: none, scale, Procrustes), passed where the GPA kernels
#: take their features.
ALIGNED = ("gpa_joint_errors",)
ALIGNS = (0, 1, 2)
KERNELS = TEMPLATES + EXTENDED + PLAIN + METRICS

#: Feature bits of the extended kernels (``kernels/geometry.cuh``): project the
#: aligned poses (``return_2d``), solve the perspective depth.
FEATURE_PROJECT = 1
FEATURE_PERSPECTIVE = 2
FEATURE_SETS = (
    FEATURE_PROJECT,
    FEATURE_PERSPECTIVE,
    FEATURE_PROJECT | FEATURE_PERSPECTIVE,
)

#: NVRTC options. ``--fmad=false`` keeps ``a * b + c`` two rounded operations
#: (NVRTC contracts them into one fused multiply-add by default), which the
#: bit-for-bit agreement with NumPy needs. The language standard is named here
#: because CuPy adds its own only when none is given, and its default changed
#: (``-std=c++11`` in CuPy 13, C++17 later): the tests compile with exactly
#: these options. CuPy appends ``-ftz=true`` to every RawModule's options; the
#: kernels do not depend on it (see ``kernels/common.cuh``).
OPTIONS = ("--fmad=false", "-std=c++17")

#: Status buffer entries: ``[count, max(n - first)]`` per category.
STATUS_SIZE = 2 * N_CATEGORIES

#: A null pointer argument (CuPy passes a numpy.uint64 as its 8 bytes).
NULL = np.uint64(0)

_KERNEL_DIR = "kernels"
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')


def _read(name):
    return resources.files(__package__).joinpath(_KERNEL_DIR, name).read_text("utf-8")


@functools.cache
def source(main: str = "gpa.cu") -> str:
    """The CUDA source of one module's kernels (`main` and its headers), as one string.

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

    return "\n".join(expand(main)) + "\n"


def kernel_name(kernel: str, dtype=None, features: int = 0) -> str:
    """The name expression of `kernel` for `dtype` and `features`.

    ``"gpa_tiled<float>"``; ``"gpa_tiled_ext<double, 3>"`` for an extended
    kernel (``features`` a member of ``FEATURE_SETS``); ``"gpa_pair"``.
    """
    if kernel in PLAIN:
        return kernel
    ctype = CTYPES[np.dtype(dtype)]
    if kernel in ALIGNED:
        if features not in ALIGNS:
            raise ValueError(f"{kernel} has no instantiation for alignment {features}")
        return f"{kernel}<{ctype}, {features}>"
    if kernel in EXTENDED:
        if features not in FEATURE_SETS:
            raise ValueError(f"{kernel} has no instantiation for features {features}")
        return f"{kernel}<{ctype}, {features}>"
    return f"{kernel}<{ctype}>"


def _module_table():
    default = [kernel_name(k, t) for k in TEMPLATES for t in CTYPES]
    table = {"gpa": ("gpa.cu", (*default, *PLAIN))}
    for features in FEATURE_SETS:
        names = tuple(kernel_name(k, t, features) for k in EXTENDED for t in CTYPES)
        table[f"gpa_ext{features}"] = ("gpa.cu", names)
    table["metrics"] = (
        "metrics.cu",
        tuple(
            kernel_name(k, t, a)
            for k in METRICS
            for t in CTYPES
            for a in (ALIGNS if k in ALIGNED else (0,))
        ),
    )
    return table


#: The NVRTC modules: name -> (source file, name expressions). Each is compiled
#: at its first use, once per device. NVRTC instantiates only the templates a
#: module names, so the default GPA path compiles in about a second, and
#: ``return_2d``, ``depth="perspective"`` and the metrics (float64 code) add
#: their own modules only when used (about a second each, NVRTC 12, one core;
#: CuPy's disk cache makes later processes skip it).
MODULES = _module_table()


def module_of(kernel: str, features: int = 0) -> str:
    """The module (a key of ``MODULES``) that holds `kernel` with `features`."""
    if kernel in EXTENDED:
        return f"gpa_ext{features}"
    if kernel in METRICS:
        return "metrics"
    return "gpa"


def name_expressions(module: str = "gpa") -> tuple[str, ...]:
    """The kernel instantiations of `module` (a key of ``MODULES``), for NVRTC."""
    return MODULES[module][1]


# --- launch geometry ----------------------------------------------------------------


def tile_pitch(values):
    """Elements between staged poses of `values` elements in a shared tile.

    One more than `values` when it is a multiple of 4: each thread reads its
    own pose, so the pitch is the stride of a warp's reads, and a multiple of
    4 would put several of them in one of the 32 shared-memory banks (16 ways
    for J = 16 float32, 32 for J = 32); an odd pitch spreads them over all
    banks. ``gpa_tile_pitch`` in ``kernels/gpa.cu`` is the device's twin.
    """
    return values + 1 if values % 4 == 0 else values


def tile_poses(joints, itemsize, threads=None, tile_bytes=None, project=False):
    """Poses per shared-memory tile of ``gpa_tiled``, or 0 for ``gpa_strided``.

    As many whole poses as fit in ``CUDA_TILE_BYTES`` (`tile_bytes`) at their
    :func:`tile_pitch`, at most one per thread, rounded down so that a tile of
    the contiguous poses spans a multiple of 16 bytes (every tile of a 16-byte
    aligned array then starts aligned and, unpadded, is copied in 16-byte
    vectors). With `project` a pose also holds its 2D projection (``2 J``
    values, a second 16-byte multiple after the 3D tile). 0 when fewer than
    ``CUDA_MIN_TILE_POSES`` poses fit.
    """
    threads = _config.CUDA_THREADS_PER_BLOCK if threads is None else threads
    tile_bytes = _config.CUDA_TILE_BYTES if tile_bytes is None else tile_bytes
    granule = 16 // math.gcd(3 * joints * itemsize, 16)
    staged = tile_pitch(3 * joints) * itemsize
    if project:
        granule = math.lcm(granule, 16 // math.gcd(2 * joints * itemsize, 16))
        staged += tile_pitch(2 * joints) * itemsize
    poses = min(threads, tile_bytes // staged) // granule * granule
    return poses if poses >= max(_config.CUDA_MIN_TILE_POSES, 1) else 0


def grid_size(items, per_block, multiprocessors):
    """Blocks for `items` work items at `per_block` each, capped at a few waves."""
    blocks = -(-items // per_block)
    return int(max(1, min(blocks, multiprocessors * _config.CUDA_BLOCKS_PER_SM)))


def block_size(max_threads, configured=None):
    """Threads per block of a kernel whose registers allow `max_threads`.

    At most ``CUDA_THREADS_PER_BLOCK`` (`configured`) and never more than the
    kernel's ``max_threads_per_block`` (a launch above it fails with
    ``CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES``). Where the registers limit how many
    warps an SM holds, the block is shrunk to divide that limit evenly:
    ``max_threads_per_block`` is the register-limited warps of one SM, so a
    kernel allowed 384 threads (about 150 registers) runs two blocks of 192
    (12 warps per SM) where one block of 256 would leave 8.
    """
    configured = _config.CUDA_THREADS_PER_BLOCK if configured is None else configured
    threads = min(configured, max_threads)
    warps, limit = threads // 32, max_threads // 32
    if warps == 0:  # blocks below a warp (the host tests' tiny geometry)
        return threads
    blocks = -(-limit // warps)
    return -(-limit // blocks) * 32


class Launch(tuple):
    """``(kernel, grid, block, shared bytes, poses per tile)`` of a GPA launch."""

    __slots__ = ()

    def __new__(cls, kernel, grid, block, shared, tile):
        return super().__new__(cls, (kernel, grid, block, shared, tile))

    kernel = property(lambda self: self[0])
    grid = property(lambda self: self[1])
    block = property(lambda self: self[2])
    shared = property(lambda self: self[3])
    tile = property(lambda self: self[4])


def gpa_plan(n, joints, itemsize, contiguous, multiprocessors, features=0,
             max_threads=None, tile_bytes=None):  # fmt: skip
    """How to launch GPA on `n` poses: a :class:`Launch`.

    ``gpa_tiled`` when source and outputs are all C-contiguous (`contiguous`)
    and a tile holds enough poses, else ``gpa_strided``; ``..._ext`` (the name
    without its template arguments) when `features` asks for more than the
    default pass. `max_threads` maps that name to the kernel's
    ``max_threads_per_block`` (1024 for every kernel when None), `tile_bytes`
    is the shared memory a block may use (``CUDA_TILE_BYTES`` when None; the
    caller clamps it to the device's opt-in limit). A tiled block keeps all its
    threads although only `tile` of them compute: its shared memory, not its
    threads, limits the blocks an SM holds (``docs/cuda_resources.inc``), so
    the idle threads cost no occupancy and speed up the tile copies.
    """
    limit = max_threads or (lambda kernel: 1024)
    project = bool(features & FEATURE_PROJECT)
    suffix = "_ext" if features else ""
    if contiguous:
        kernel = "gpa_tiled" + suffix
        threads = block_size(limit(kernel))
        poses = tile_poses(joints, itemsize, threads, tile_bytes, project)
        if poses:
            grid = grid_size(-(-n // poses), 1, multiprocessors)
            values = tile_pitch(3 * joints)
            if project:
                values += tile_pitch(2 * joints)
            shared = poses * values * itemsize
            return Launch(kernel, grid, threads, shared, poses)
    kernel = "gpa_strided" + suffix
    threads = block_size(limit(kernel))
    return Launch(kernel, grid_size(n, threads, multiprocessors), threads, 0, 0)


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


def _strided(array, strides):
    """An array argument followed by its strides (in elements) as int64."""
    return (array, *(_I64(s) for s in strides))


def _gpa_common(n, joints, root, records, camera, camera_strides, poseda):
    """The arguments every GPA kernel takes after its pose arrays, in order."""
    return (
        _I64(n),
        _I32(joints),
        _I32(root),
        records,
        *_strided(camera, camera_strides),
        _I32(poseda),
    )


def _pose_pair(predicted, predicted_strides, target, target_strides, n, joints,
               joints_stride):  # fmt: skip
    """The leading arguments of both metrics kernels, in order."""
    return (
        *_strided(predicted, predicted_strides),
        *_strided(target, target_strides),
        _I64(n),
        joints,
        _I64(joints_stride),
        _I32(joints.shape[0]),
    )


def prepare_args(target, target_strides, m, joints, root, camera, camera_strides,
                 with_camera, records, status):  # fmt: skip
    """``GPA_PREPARE_PARAMS``; strides are in elements."""
    return (
        *_strided(target, target_strides),
        _I64(m),
        _I32(joints),
        _I32(root),
        *_strided(camera, camera_strides),
        _I32(with_camera),
        records,
        status,
    )


def tiled_args(source, out, n, joints, root, records, camera, camera_strides, poseda,
               pairing, status, poses_per_tile):  # fmt: skip
    """``GPA_TILED_PARAMS``; `pairing` is the tuple of :func:`pairing_args`."""
    common = _gpa_common(n, joints, root, records, camera, camera_strides, poseda)
    return (source, out, *common, *pairing, status, _I32(poses_per_tile))


def strided_args(source, source_strides, out, out_strides, n, joints, root, records,
                 camera, camera_strides, poseda, pairing, status):  # fmt: skip
    """``GPA_STRIDED_PARAMS``; strides are in elements."""
    return (
        *_strided(source, source_strides),
        *_strided(out, out_strides),
        *_gpa_common(n, joints, root, records, camera, camera_strides, poseda),
        *pairing,
        status,
    )


def pair_args(out, count, pairing):
    """``GPA_PAIR_PARAMS``."""
    return (out, _I64(count), *pairing)


def widen_args(records, records_strides, m, camera, camera_strides, wide, status):
    """``GPA_WIDEN_PARAMS``; strides are in elements, `wide` is C-contiguous."""
    return (
        *_strided(records, records_strides),
        _I64(m),
        *_strided(camera, camera_strides),
        wide,
        status,
    )


def extension_args(record_stride, coefficients, coefficients_strides, max_iterations,
                   tolerance):  # fmt: skip
    """``GPA_EXTENSION_PARAMS``: record row stride, distortion rows, depth budget.

    `coefficients` is ``NULL`` (pinhole projection, or no projection) or the
    ``(rows, 5+)`` distortion coefficients with their element strides.
    """
    return (
        _I64(record_stride),
        *_strided(coefficients, coefficients_strides),
        _I32(max_iterations),
        _F64(tolerance),
    )


def tiled_ext_args(source, out, out2d, n, joints, root, records, camera,
                   camera_strides, poseda, extension, pairing, status,
                   poses_per_tile):  # fmt: skip
    """``GPA_TILED_EXT_PARAMS``; `extension` is the tuple of :func:`extension_args`.

    `out2d` is the C-contiguous ``(n, joints, 2)`` output, or ``NULL``.
    """
    return (
        source,
        out,
        out2d,
        *_gpa_common(n, joints, root, records, camera, camera_strides, poseda),
        *extension,
        *pairing,
        status,
        _I32(poses_per_tile),
    )


def strided_ext_args(source, source_strides, out, out_strides, out2d, out2d_strides,
                     n, joints, root, records, camera, camera_strides, poseda,
                     extension, pairing, status):  # fmt: skip
    """``GPA_STRIDED_EXT_PARAMS``; strides are in elements.

    `out2d` is the ``(n, joints, 2)`` output with its strides, or ``NULL``
    with ``(0, 0, 0)``.
    """
    return (
        *_strided(source, source_strides),
        *_strided(out, out_strides),
        *_strided(out2d, out2d_strides),
        *_gpa_common(n, joints, root, records, camera, camera_strides, poseda),
        *extension,
        *pairing,
        status,
    )


def project_args(points, points_strides, count, camera, camera_strides, per, out,
                 out_strides, status):  # fmt: skip
    """``GPA_PROJECT_PARAMS``: `count` points, camera row ``p // per`` for point p."""
    return (
        *_strided(points, points_strides),
        _I64(count),
        *_strided(camera, camera_strides),
        _I32(camera.shape[1]),
        _I64(per),
        _F64(1.0 / per),
        *_strided(out, out_strides),
        status,
    )


def clip_args(source, source_strides, n, frames, joints, origin, origin_strides,
              anchor, anchor_strides, out, out_strides, status):  # fmt: skip
    """``GPA_CLIP_PARAMS``: `n` clips of `frames` frames of `joints` joints."""
    return (
        *_strided(source, source_strides),
        _I64(n),
        _I32(frames),
        _I32(joints),
        _F64(1.0 / (frames * joints)),
        _F64(1.0 / joints),
        *_strided(origin, origin_strides),
        *_strided(anchor, anchor_strides),
        *_strided(out, out_strides),
        status,
    )


def joint_errors_args(predicted, predicted_strides, target, target_strides, n,
                      joints, joints_stride, root, errors, errors_strides,
                      status):  # fmt: skip
    """``GPA_JOINT_ERRORS_PARAMS`` (``kernels/metrics.cu``).

    The alignment is the kernel's template argument (:func:`kernel_name`).
    """
    return (
        *_pose_pair(predicted, predicted_strides, target, target_strides, n, joints,
                    joints_stride),
        _I32(root),
        *_strided(errors, errors_strides),
        status,
    )  # fmt: skip


def procrustes_fit_args(predicted, predicted_strides, target, target_strides, n,
                        joints, joints_stride, scale, rotation, translation,
                        status):  # fmt: skip
    """``GPA_PROCRUSTES_FIT_PARAMS``; the outputs are C-contiguous float64."""
    return (
        *_pose_pair(predicted, predicted_strides, target, target_strides, n, joints,
                    joints_stride),
        scale,
        rotation,
        translation,
        status,
    )  # fmt: skip


# --- status -------------------------------------------------------------------------


def decode_status(raw, n):
    """Turn a kernel status buffer into the ``(N_CATEGORIES, 2)`` status form.

    Parameters
    ----------
    raw : (STATUS_SIZE,) uint64 ndarray, on the host
        Per category the count of flagged items and ``max(n - i)`` over them.
    n : int
        Items the kernel covered.

    Returns
    -------
    (N_CATEGORIES, 2) int64 ndarray or None
        ``[count, first index]`` per category, or None when nothing was flagged.
    """
    counts = raw[0::2].astype(np.int64)
    if not counts.any():
        return None
    status = np.zeros((N_CATEGORIES, 2), dtype=np.int64)
    status[:, 0] = counts
    status[:, 1] = np.where(counts > 0, n - raw[1::2].astype(np.int64), 0)
    return status
