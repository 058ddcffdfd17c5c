"""The CUDA kernels built as host C++ and launched the way the CuPy backend does.

``kernels/gpa.cu`` compiles with a host compiler through ``kernels/host_shim.h``
(blocks run one after another, the threads of a block are real threads meeting
at a barrier in ``__syncthreads``). :class:`HostKernels` mirrors
``gpa_arrays._backends.cupy_`` on NumPy arrays: the same launch plan, the same
argument tuples (``gpa_arrays._backends._cuda``), the same status decoding, so
the tests exercise everything of the CUDA backend except CuPy itself and the
device's own arithmetic flags.
"""

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gpa_arrays import _config
from gpa_arrays import _pairing as P
from gpa_arrays._backends import _cuda
from gpa_arrays._backends.numpy_ import RECORD_WIDTH

KERNEL_DIR = Path(_cuda.__file__).parent / "kernels"
DRIVER = Path(__file__).parent / "cuda_host" / "driver.cpp"

#: Set in CI: a missing toolchain fails the tests instead of skipping them.
STRICT = os.environ.get("GPA_ARRAYS_STRICT_TOOLCHAIN") == "1"

CXXFLAGS = [
    "-std=c++20",
    "-O2",
    # the reference rounds every operation: no contraction into fused
    # multiply-adds (GCC contracts by default outside ISO mode)
    "-ffp-contract=off",
    "-fno-fast-math",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-fPIC",
    "-shared",
    "-pthread",
]


def missing(what):
    """Skip, or fail under GPA_ARRAYS_STRICT_TOOLCHAIN=1."""
    if STRICT:
        pytest.fail(f"{what} (GPA_ARRAYS_STRICT_TOOLCHAIN=1 makes this an error)")
    pytest.skip(what)


def compiler():
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def build(directory):
    """Compile the driver into `directory`; return the loaded library."""
    cxx = compiler()
    if cxx is None:
        missing("no C++ compiler (g++, c++, clang++ or $CXX) for the host kernels")
    library = Path(directory) / "gpa_host_kernels.so"
    command = [cxx, *CXXFLAGS, f"-I{KERNEL_DIR}", str(DRIVER), "-o", str(library)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise AssertionError(
            "host build of the CUDA kernels failed:\n"
            + " ".join(command)
            + "\n"
            + result.stderr
        )
    return ctypes.CDLL(str(library))


_CTYPES = {
    np.dtype(np.int32): ctypes.c_int32,
    np.dtype(np.int64): ctypes.c_int64,
    np.dtype(np.uint64): ctypes.c_uint64,
    np.dtype(np.float64): ctypes.c_double,
}


def _c_argument(value):
    if isinstance(value, np.ndarray):
        return ctypes.c_void_p(value.ctypes.data)  # address of element 0
    return _CTYPES[value.dtype](value)


def _element_strides(array):
    strides = _cuda.element_strides(array)
    if strides is None:
        array = np.ascontiguousarray(array)
        strides = _cuda.element_strides(array)
    return array, strides


class HostKernels:
    """``cupy_``'s launchers, on NumPy arrays, running the host-built kernels.

    Parameters
    ----------
    library : ctypes.CDLL
        From :func:`build`.
    multiprocessors : int
        The multiprocessor count the launch geometry assumes.
    """

    DEVICE = True

    def __init__(self, library, multiprocessors=1):
        self.library = library
        self.multiprocessors = multiprocessors
        self.launches = []
        self.status_reads = 0

    def _launch(self, kernel, dtype, grid, args, shared=0):
        name = kernel if kernel in _cuda.PLAIN else f"{kernel}_{_cuda.CTYPES[dtype]}"
        function = getattr(self.library, f"launch_{name}")
        function.restype = None
        threads = _config.CUDA_THREADS_PER_BLOCK
        self.launches.append((kernel, grid, threads, shared))
        function(
            ctypes.c_uint(grid),
            ctypes.c_uint(threads),
            ctypes.c_ulonglong(shared),
            *(_c_argument(a) for a in args),
        )

    def _status(self, enabled, n):
        if not enabled:
            return _cuda.NULL, None
        buffer = np.zeros(_cuda.STATUS_SIZE, dtype=np.uint64)
        return buffer, (buffer, n)

    def read_status(self, *pending):
        # cupy_.read_status synchronises only when something is pending
        self.status_reads += any(p is not None for p in pending)
        return [None if p is None else _cuda.decode_status(*p) for p in pending]

    def _pairing(self, spec):
        if spec.kind == P.KIND_ARRAY:
            index, strides = _element_strides(spec.index)
            return _cuda.pairing_args(spec, index, strides[0]), index
        return _cuda.pairing_args(spec), None

    def pair_indices(self, spec):
        if spec.kind == P.KIND_ARRAY:
            return spec.index.astype(np.int64, copy=True)
        out = np.empty(spec.count, dtype=np.int64)
        if spec.count:
            grid = _cuda.grid_size(
                spec.count, _config.CUDA_THREADS_PER_BLOCK, self.multiprocessors
            )
            pairing, _ = self._pairing(spec)
            self._launch(
                "gpa_pair", None, grid, _cuda.pair_args(out, spec.count, pairing)
            )
        return out

    def _prepare(self, target, camera, root, with_camera, status):
        m, joints = target.shape[0], target.shape[1]
        records = np.empty((m, RECORD_WIDTH), dtype=target.dtype)
        if m == 0:
            return records, None
        target, target_strides = _element_strides(target)
        camera, camera_strides = _element_strides(camera)
        buffer, pending = self._status(status, m)
        grid = _cuda.grid_size(m, _config.CUDA_THREADS_PER_BLOCK, self.multiprocessors)
        args = _cuda.prepare_args(
            target, target_strides, m, joints, root, camera, camera_strides,
            with_camera, records, buffer,
        )  # fmt: skip
        self._launch("gpa_prepare", target.dtype, grid, args)
        return records, pending

    def prepare_records(self, target, camera, root, *, status=True):
        return self._prepare(target, camera, root, 1, status)

    def prepare_poseda_records(self, target, camera, root, *, status=True):
        return self._prepare(target, camera, root, 0, status)

    def _run_gpa(self, source, records, camera, camera_strides, out, root, poseda,
                 spec, status):  # fmt: skip
        n, joints = source.shape[0], source.shape[1]
        if n == 0:
            return None
        dtype = source.dtype
        pairing, _index = self._pairing(spec)
        buffer, pending = self._status(status, n)
        contiguous = source.flags.c_contiguous and out.flags.c_contiguous
        kernel, grid, shared, poses = _cuda.gpa_plan(
            n, joints, dtype.itemsize, contiguous, self.multiprocessors
        )
        if kernel == "gpa_tiled":
            args = _cuda.tiled_args(
                source, out, n, joints, root, records, camera, camera_strides,
                poseda, pairing, buffer, poses,
            )  # fmt: skip
            self._launch(kernel, dtype, grid, args, shared)
            return pending
        source, source_strides = _element_strides(source)
        target = out
        out_strides = _cuda.element_strides(out)
        if out_strides is None:
            target = np.empty_like(source, order="C")
            out_strides = _cuda.element_strides(target)
        args = _cuda.strided_args(
            source, source_strides, target, out_strides, n, joints, root, records,
            camera, camera_strides, poseda, pairing, buffer,
        )  # fmt: skip
        self._launch(kernel, dtype, grid, args)
        if target is not out:
            out[...] = target
        return pending

    def gpa_records(self, source, records, out, root, spec, *, status=True):
        return self._run_gpa(
            source, records, records, (0, 1), out, root, 0, spec, status
        )

    def gpa_poseda(self, source, records, camera, out, root, spec, *, status=True):
        camera, camera_strides = _element_strides(camera)
        return self._run_gpa(
            source, records, camera, camera_strides, out, root, 1, spec, status
        )
