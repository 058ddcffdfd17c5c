"""The CUDA backend on the host: its kernels built as C++, its launchers unchanged.

``kernels/gpa.cu`` compiles with a host compiler through ``kernels/host_shim.h``
(blocks run one after another, the threads of a block are real threads meeting
at a barrier in ``__syncthreads``). :func:`cupy_backend_on_host` then loads the
real ``gpa_arrays/_backends/cupy_.py`` against a stand-in for the few CuPy
functions it calls (NumPy arrays, the host kernels as the RawModule), so the
tests run the backend's own launch plans, argument tuples, status buffers and
status reads. What remains for a GPU: CuPy itself (NVRTC loading, launches,
DLPack on the device) and the device's arithmetic, whose PTX the NVRTC tests
inspect.
"""

import ctypes
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from gpa_arrays._backends import _cuda

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
        # address of element 0; null for an empty array, as CuPy and torch
        # pass one (an empty device allocation has data pointer 0)
        return ctypes.c_void_p(value.ctypes.data if value.size else None)
    return _CTYPES[value.dtype](value)


#: Device limits of the stand-in (an H100's): the opt-in shared memory per
#: block and the most threads a block may have.
SHARED_OPTIN = 227 * 1024
MAX_THREADS = 1024


class LaunchError(RuntimeError):
    """What the driver reports for a launch or attribute a device refuses."""


class _DeviceArray(np.ndarray):
    """A NumPy array that answers ``.data.ptr`` like a CuPy array."""

    @property
    def data(self):
        return types.SimpleNamespace(ptr=self.ctypes.data)


def _device(array):
    return np.asarray(array).view(_DeviceArray)


class _Stream:
    def __init__(self, counter):
        self.ptr = 0
        self._counter = counter

    def synchronize(self):
        self._counter["synchronize"] += 1


class _Kernel:
    """A kernel of the host library, called the way CuPy calls a RawKernel.

    `max_threads_per_block` is what the driver would derive from the kernel's
    registers; a launch above it, or above the dynamic shared memory the kernel
    opted in to, fails as on a device (CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES), and
    so does an opt-in above the device's limit.
    """

    def __init__(self, library, name, counter, max_threads_per_block=MAX_THREADS):
        # "gpa_tiled_ext<float, 3>" -> launch_gpa_tiled_ext_float_3
        symbol = "launch_" + "_".join(re.findall(r"\w+", name))
        self.function = getattr(library, symbol)
        self.function.restype = None
        self.name = name
        self.max_threads_per_block = max_threads_per_block
        self._shared = 48 * 1024
        self._counter = counter

    @property
    def max_dynamic_shared_size_bytes(self):
        return self._shared

    @max_dynamic_shared_size_bytes.setter
    def max_dynamic_shared_size_bytes(self, value):
        if value > SHARED_OPTIN:
            raise LaunchError(f"{self.name}: {value} bytes of shared memory refused")
        self._shared = value

    def __call__(self, grid, block, args, shared_mem=0):
        (grid,) = grid
        (block,) = block
        if block > self.max_threads_per_block or shared_mem > self._shared:
            raise LaunchError(
                f"{self.name}: out of resources ({block} threads, {shared_mem} bytes)"
            )
        self._counter["launches"].append((self.name, grid, block, shared_mem))
        self.function(
            ctypes.c_uint(grid),
            ctypes.c_uint(block),
            ctypes.c_ulonglong(shared_mem),
            *(_c_argument(a) for a in args),
        )


def fake_cupy(library, multiprocessors=1, max_threads=None):
    """The parts of CuPy that ``cupy_`` uses, on the host, with the host kernels.

    Arrays are NumPy arrays, the "device" is the host, a RawModule's kernels are
    the host-built ones, and ``counter`` records launches, compiled modules,
    uploads (``asarray``) and synchronisations. `max_threads` maps a kernel
    name expression to its ``max_threads_per_block`` (default 1024).
    """
    max_threads = max_threads or {}
    counter = {"launches": [], "modules": [], "synchronize": 0}
    stream = _Stream(counter)

    class RawModule:
        def __init__(self, code, options, name_expressions):
            counter["modules"].append((code, options, tuple(name_expressions)))
            self.names = set(name_expressions)

        def get_function(self, name):
            assert name in self.names, name
            return _Kernel(library, name, counter, max_threads.get(name, MAX_THREADS))

    def memoize(for_each_device=False):
        assert for_each_device
        return functools.cache

    runtime = types.SimpleNamespace(
        memcpyDeviceToHost=2,
        memcpyAsync=lambda dst, src, size, kind, stream_ptr: ctypes.memmove(
            dst, src, size
        ),
    )
    cuda = types.SimpleNamespace(
        is_available=lambda: True,
        Device=lambda: types.SimpleNamespace(
            id=0,
            attributes={
                "MultiProcessorCount": multiprocessors,
                "MaxSharedMemoryPerBlockOptin": SHARED_OPTIN,
            },
            synchronize=lambda: stream.synchronize(),
        ),
        alloc_pinned_memory=bytearray,
        get_current_stream=lambda: stream,
        runtime=runtime,
    )
    return types.SimpleNamespace(
        RawModule=RawModule,
        memoize=memoize,
        cuda=cuda,
        ndarray=_DeviceArray,
        zeros=lambda shape, dtype: _device(np.zeros(shape, dtype)),
        empty=lambda shape, dtype: _device(np.empty(shape, dtype)),
        empty_like=lambda a, order="K": _device(np.empty_like(a, order=order)),
        ascontiguousarray=lambda a: _device(np.ascontiguousarray(a)),
        asarray=lambda a, dtype=None: _device(np.asarray(a, dtype)),
        counter=counter,
    )


def cupy_backend_on_host(library, multiprocessors=1, max_threads=None):
    """A fresh copy of ``gpa_arrays._backends.cupy_`` running on the host kernels.

    The module's own code runs unchanged; only ``import cupy`` inside it sees
    :func:`fake_cupy`. Its ``cupy.counter`` records what it did.
    """
    fake = fake_cupy(library, multiprocessors, max_threads)
    path = Path(_cuda.__file__).parent / "cupy_.py"
    spec = importlib.util.spec_from_file_location(
        "gpa_arrays._backends._cupy_on_host", path
    )
    module = importlib.util.module_from_spec(spec)
    real = sys.modules.get("cupy")
    sys.modules["cupy"] = fake
    try:
        spec.loader.exec_module(module)
    finally:
        if real is None:
            del sys.modules["cupy"]
        else:
            sys.modules["cupy"] = real
    assert module.cupy is fake and module.unusable_reason() is None
    return module
