"""CUDA kernels through CuPy: launchers for ``kernels/gpa.cu``.

Same functions, names and argument order as :mod:`numpy_` (the reference the
kernels are tested against) and :mod:`numba_`, on CuPy arrays of one device.
What needs no GPU (source text, options, kernel names, launch geometry,
argument packing, status decoding) lives in :mod:`._cuda`.

Compilation
    NVRTC through :class:`cupy.RawModule`, once per device (memoised), for
    float32 and float64 (templates instantiated by generated name
    expressions), with ``--fmad=false``: results are bit-identical to NumPy.
    CuPy caches the binary on disk, so later processes skip the compile.

Launches
    On the current CuPy stream (the public API makes torch's current stream
    the CuPy stream for torch tensors); ``CUDA_THREADS_PER_BLOCK`` threads per
    block, grid-stride loops, 64-bit indexing. A call with prepared targets
    allocates its output (by the caller) and, when checks are on, one 48-byte
    status buffer; nothing else, and it never waits for the device by itself.
    (A one-shot call also allocates its ``(M, 8)`` records, and inputs of
    another dtype than the result are converted first, as on the host.)

Layouts
    C-contiguous source and output take the tiled kernel (coalesced copies
    through shared memory); any other strides take the strided kernel, which
    indexes the caller's memory in place, so strided inputs are never copied.
    Only arrays whose strides are not whole elements (rare byte-level views)
    are copied to a contiguous temporary first.

Checks and their cost
    With checks on, each kernel counts problems into a zeroed status buffer
    (one ``cudaMemsetAsync``) using atomics only for flagged items, and
    :func:`read_status` copies all buffers of a call to pinned host memory and
    synchronises the stream once: one round trip per call, the unavoidable
    price of raising in the call that caused the problem. With
    ``check=False`` no buffer is allocated and nothing is read: the call
    returns as soon as the kernels are queued. Explicit pairing arrays are
    range-checked whatever ``check`` says (the one case where ``check=False``
    still synchronises).
"""

from __future__ import annotations

import threading

import cupy
import numpy as np

from .. import _config
from .. import _pairing as P
from . import _cuda
from .numpy_ import RECORD_WIDTH

__all__ = [
    "DEVICE",
    "gpa_poseda",
    "gpa_records",
    "pair_indices",
    "prepare_poseda_records",
    "prepare_records",
    "read_status",
    "unusable_reason",
]

#: Marks a device backend: functions take ``status=`` and return pending statuses.
DEVICE = True

# Dynamic shared memory above this needs an explicit opt-in per kernel.
_DEFAULT_SHARED_LIMIT = 48 * 1024


def unusable_reason():
    """None when a CUDA device is usable; otherwise why not."""
    try:
        usable = cupy.cuda.is_available()
    except Exception as exc:  # pragma: no cover - broken driver installs
        return f"{type(exc).__name__}: {exc}"
    if not usable:
        return "no CUDA device is visible (cupy.cuda.is_available() is False)"
    return None


@cupy.memoize(for_each_device=True)
def _module():
    return cupy.RawModule(
        code=_cuda.source(),
        options=_cuda.OPTIONS,
        name_expressions=_cuda.name_expressions(),
    )


@cupy.memoize(for_each_device=True)
def _function(name):
    return _module().get_function(name)


@cupy.memoize(for_each_device=True)
def _multiprocessors():
    return cupy.cuda.Device().attributes["MultiProcessorCount"]


# --- status -------------------------------------------------------------------------


class PendingStatus:
    """A kernel's status buffer on the device, not yet read."""

    __slots__ = ("buffer", "n")

    def __init__(self, buffer, n):
        self.buffer = buffer
        self.n = n


def _status_buffer(enabled, n):
    """``(kernel argument, PendingStatus or None)``."""
    if not enabled:
        return _cuda.NULL, None
    buffer = cupy.zeros(_cuda.STATUS_SIZE, dtype=np.uint64)
    return buffer, PendingStatus(buffer, n)


_pinned = threading.local()


def _pinned_rows(rows):
    """A per-thread, per-device pinned host buffer of ``(rows, STATUS_SIZE)``."""
    cache = getattr(_pinned, "buffers", None)
    if cache is None:
        cache = _pinned.buffers = {}
    key = cupy.cuda.Device().id
    held = cache.get(key)
    if held is None or held[1].shape[0] < rows:
        shape = (max(rows, 2), _cuda.STATUS_SIZE)
        memory = cupy.cuda.alloc_pinned_memory(shape[0] * shape[1] * 8)
        array = np.ndarray(shape, dtype=np.uint64, buffer=memory)  # as cupyx does
        held = cache[key] = (memory, array)
    return held[1][:rows]


def read_status(*pending):
    """Host statuses of pending device statuses, in one round trip.

    Parameters
    ----------
    *pending : PendingStatus or None

    Returns
    -------
    list of ((3, 2) int64 ndarray or None)
        One per argument; None where nothing was flagged or nothing was counted.
    """
    live = [p for p in pending if p is not None]
    if not live:
        return [None] * len(pending)
    host = _pinned_rows(len(live))
    stream = cupy.cuda.get_current_stream()
    nbytes = _cuda.STATUS_SIZE * 8
    for row, status in enumerate(live):
        cupy.cuda.runtime.memcpyAsync(
            host[row].ctypes.data,
            status.buffer.data.ptr,
            nbytes,
            cupy.cuda.runtime.memcpyDeviceToHost,
            stream.ptr,
        )
    stream.synchronize()
    decoded = iter([_cuda.decode_status(host[row], s.n) for row, s in enumerate(live)])
    return [None if p is None else next(decoded) for p in pending]


# --- layouts ------------------------------------------------------------------------


def _element_strides(array):
    """``(array, strides in elements)``, copying only byte-strided arrays."""
    strides = _cuda.element_strides(array)
    if strides is None:
        array = cupy.ascontiguousarray(array)
        strides = _cuda.element_strides(array)
    return array, strides


def _launch(kernel, dtype, grid, args, shared=0):
    function = _function(_cuda.kernel_name(kernel, dtype))
    if shared > _DEFAULT_SHARED_LIMIT:
        function.max_dynamic_shared_size_bytes = shared
    function((grid,), (_config.CUDA_THREADS_PER_BLOCK,), args, shared_mem=shared)


# --- pairing ------------------------------------------------------------------------


def _pairing(spec):
    if spec.kind == P.KIND_ARRAY:
        index, strides = _element_strides(spec.index)
        return _cuda.pairing_args(spec, index, strides[0])
    return _cuda.pairing_args(spec)


def pair_indices(spec):
    """Evaluate a pairing for every source pose (see :func:`numpy_.pair_indices`).

    Returns
    -------
    (spec.count,) int64 cupy.ndarray, on the current device.
    """
    if spec.kind == P.KIND_ARRAY:
        return spec.index.astype(np.int64, copy=True)
    out = cupy.empty(spec.count, dtype=np.int64)
    if spec.count:
        threads = _config.CUDA_THREADS_PER_BLOCK
        grid = _cuda.grid_size(spec.count, threads, _multiprocessors())
        _launch(
            "gpa_pair", None, grid, _cuda.pair_args(out, spec.count, _pairing(spec))
        )
    return out


# --- target preparation -------------------------------------------------------------


def _prepare(target, camera, root, with_camera, status):
    m, joints = target.shape[0], target.shape[1]
    records = cupy.empty((m, RECORD_WIDTH), dtype=target.dtype)
    if m == 0:
        return records, None
    target, target_strides = _element_strides(target)
    camera, camera_strides = _element_strides(camera)
    buffer, pending = _status_buffer(status, m)
    grid = _cuda.grid_size(m, _config.CUDA_THREADS_PER_BLOCK, _multiprocessors())
    args = _cuda.prepare_args(
        target, target_strides, m, joints, root, camera, camera_strides, with_camera,
        records, buffer,
    )  # fmt: skip
    _launch("gpa_prepare", target.dtype, grid, args)
    return records, pending


def prepare_records(target, camera, root, *, status=True):
    """Compact per-target records (see :func:`numpy_.prepare_records`).

    Returns ``(records, PendingStatus or None)``; `records` is a CuPy array.
    """
    return _prepare(target, camera, root, True, status)


def prepare_poseda_records(target, camera, root, *, status=True):
    """Records for ``mode="poseda"`` (see :func:`numpy_.prepare_poseda_records`)."""
    return _prepare(target, camera, root, False, status)


# --- the GPA kernels ----------------------------------------------------------------


def _run_gpa(source, records, camera, camera_strides, out, root, poseda, spec,
             status):  # fmt: skip
    n, joints = source.shape[0], source.shape[1]
    if n == 0:
        return None
    dtype = source.dtype
    pairing = _pairing(spec)
    buffer, pending = _status_buffer(status, n)
    contiguous = source.flags.c_contiguous and out.flags.c_contiguous
    kernel, grid, shared, poses = _cuda.gpa_plan(
        n, joints, dtype.itemsize, contiguous, _multiprocessors()
    )
    if kernel == "gpa_tiled":
        args = _cuda.tiled_args(
            source, out, n, joints, root, records, camera, camera_strides, poseda,
            pairing, buffer, poses,
        )  # fmt: skip
        _launch(kernel, dtype, grid, args, shared)
        return pending
    source, source_strides = _element_strides(source)
    target = out
    out_strides = _cuda.element_strides(out)
    if out_strides is None:
        target = cupy.empty_like(source, order="C")
        out_strides = _cuda.element_strides(target)
    args = _cuda.strided_args(
        source, source_strides, target, out_strides, n, joints, root, records,
        camera, camera_strides, poseda, pairing, buffer,
    )  # fmt: skip
    _launch(kernel, dtype, grid, args)
    if target is not out:
        out[...] = target
    return pending


def gpa_records(source, records, out, root, spec, *, status=True):
    """GPA against prepared records (see :func:`numpy_.gpa_records`).

    Returns a PendingStatus, or None with ``status=False`` or no poses.
    """
    # paired mode reads no camera: the records stand in (never dereferenced
    # beyond row 0, which exists whenever there are poses)
    return _run_gpa(source, records, records, (0, 1), out, root, 0, spec, status)


def gpa_poseda(source, records, camera, out, root, spec, *, status=True):
    """The published arithmetic (see :func:`numpy_.gpa_poseda`)."""
    camera, camera_strides = _element_strides(camera)
    return _run_gpa(source, records, camera, camera_strides, out, root, 1, spec, status)
