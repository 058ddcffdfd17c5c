"""CUDA kernels through CuPy: launchers for ``kernels/gpa.cu`` and ``metrics.cu``.

Same functions, names, argument order and calling convention as :mod:`numpy_`
(the reference the kernels are tested against) and :mod:`numba_`, on CuPy arrays
of one device (the interface is declared in :mod:`._interface`).
What needs no GPU (source text, options, kernel names, launch geometry,
argument packing, status decoding) lives in :mod:`._cuda`.

Compilation
    NVRTC through :class:`cupy.RawModule`, once per device and module
    (memoised; :data:`._cuda.MODULES`: the default GPA path, one module per
    feature set of ``return_2d`` and ``depth="perspective"``, the metrics),
    for float32 and float64 (templates instantiated by generated name
    expressions), with ``--fmad=false``: results are bit-identical to NumPy
    (projection, placement) and to Numba (the float64 depth solve and Horn's
    Procrustes, which NumPy computes by another algorithm). CuPy caches the
    binary on disk, so later processes skip the compile.

Launches
    On the current CuPy stream (the public API makes torch's current stream
    the CuPy stream for torch tensors); at most ``CUDA_THREADS_PER_BLOCK``
    threads per block, fitted to each kernel's registers
    (:func:`._cuda.block_size`), tiles within the device's opt-in shared
    memory; grid-stride loops, 64-bit indexing. A call with prepared targets
    allocates its output (by the caller) and, when checks are on, one 80-byte
    status buffer; nothing else, and it never waits for the device by itself.
    (A one-shot call also allocates its ``(M, 8)`` records, and ``(M, 16)``
    wide records for ``return_2d`` through 9-value cameras; inputs of another
    dtype than the result are converted first, as on the host. The metrics
    upload their joint subset, ``K`` int64 values, unless it is on the device
    already.)

Layouts
    C-contiguous source and outputs take the tiled kernel (coalesced copies
    through shared memory, the 2D output of ``return_2d`` staged beside the
    poses); any other strides take the strided kernel, which indexes the
    caller's memory in place, so strided inputs are never copied. Only arrays
    whose strides are not whole elements (rare byte-level views) are copied to
    a contiguous temporary first. Projection and metrics take any strides.

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

import functools
import threading

import cupy
import numpy as np

from .. import _config
from .. import _geometry as G
from .. import _pairing as P
from . import _cuda
from ._interface import NAMES
from .numpy_ import RECORD_WIDTH

# The NumPy reference's statistics use only their array's own module, so they
# run on CuPy arrays as they are.
from .numpy_stats import pose_statistics as pose_statistics
from .numpy_stats import wasserstein_sorted as wasserstein_sorted

__all__ = [*NAMES, "DEVICE", "unusable_reason"]

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
def _module(key):
    main, names = _cuda.MODULES[key]
    return cupy.RawModule(
        code=_cuda.source(main), options=_cuda.OPTIONS, name_expressions=names
    )


@cupy.memoize(for_each_device=True)
def _function(key, name):
    return _module(key).get_function(name)


@cupy.memoize(for_each_device=True)
def _multiprocessors():
    return cupy.cuda.Device().attributes["MultiProcessorCount"]


@cupy.memoize(for_each_device=True)
def _shared_optin():
    return cupy.cuda.Device().attributes["MaxSharedMemoryPerBlockOptin"]


def _tile_bytes():
    """``CUDA_TILE_BYTES``, at most what a block of this device may opt in to."""
    return min(_config.CUDA_TILE_BYTES, _shared_optin())


def _max_threads(kernel, dtype=None, features=0):
    """The ``max_threads_per_block`` the driver allows `kernel` (its registers)."""
    key = _cuda.module_of(kernel, features)
    name = _cuda.kernel_name(kernel, dtype, features)
    return _function(key, name).max_threads_per_block


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


def read_status(*pending, wait=False):
    """Host statuses of pending device statuses, in one round trip.

    Parameters
    ----------
    *pending : PendingStatus or None
    wait : bool
        Wait for the current stream even when there is nothing to read: for
        results that outlive the call (prepared targets), which another stream
        may read next.

    Returns
    -------
    list of ((N_CATEGORIES, 2) int64 ndarray or None)
        One per argument; None where nothing was flagged or nothing was counted.
    """
    live = [p for p in pending if p is not None]
    if not live:
        if wait:
            cupy.cuda.get_current_stream().synchronize()
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


def _as(dtype, array):
    """`array` in `dtype`: a kernel reads every input as its one type T.

    The public functions convert first (targets and cameras to the source's
    dtype, both metric arrays to one); this keeps a launch from reading an
    array of another width even when called otherwise.
    """
    return array if array is None or array.dtype == dtype else array.astype(dtype)


def _check_outputs(dtype, *outputs):
    for out in outputs:
        if out is not None and out.dtype != dtype:
            raise TypeError(f"out: expected dtype {dtype}, got {out.dtype}")


def _launch(kernel, dtype, grid, block, args, shared=0, features=0):
    key = _cuda.module_of(kernel, features)
    function = _function(key, _cuda.kernel_name(kernel, dtype, features))
    if shared > _DEFAULT_SHARED_LIMIT:
        function.max_dynamic_shared_size_bytes = shared
    function((grid,), (block,), args, shared_mem=shared)


def _launch_items(kernel, dtype, items, args, features=0):
    """Launch a one-item-per-thread kernel over `items` items."""
    block = _cuda.block_size(_max_threads(kernel, dtype, features))
    grid = _cuda.grid_size(items, block, _multiprocessors())
    _launch(kernel, dtype, grid, block, args, 0, features)


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
        args = _cuda.pair_args(out, spec.count, _pairing(spec))
        _launch_items("gpa_pair", None, spec.count, args)
    return out


# --- target preparation -------------------------------------------------------------


def _per_target(kernel, rows, camera, status, pack):
    """Launch `kernel`, one thread per target, over `rows` and their `camera` rows.

    ``pack(rows, row_strides, camera, camera_strides, status_buffer)`` gives
    the kernel's arguments (strides in elements). Returns the pending status.
    """
    m = rows.shape[0]
    rows, row_strides = _element_strides(rows)
    camera, camera_strides = _element_strides(camera)
    buffer, pending = _status_buffer(status, m)
    args = pack(rows, row_strides, camera, camera_strides, buffer)
    _launch_items(kernel, rows.dtype, m, args)
    return pending


def _prepare(target, camera, root, with_camera, status):
    camera = _as(target.dtype, camera)
    m, joints = target.shape[0], target.shape[1]
    records = cupy.empty((m, RECORD_WIDTH), dtype=target.dtype)
    if m == 0:
        return records, None

    def pack(target, target_strides, camera, camera_strides, buffer):
        return _cuda.prepare_args(
            target, target_strides, m, joints, root, camera, camera_strides,
            with_camera, records, buffer,
        )  # fmt: skip

    return records, _per_target("gpa_prepare", target, camera, status, pack)


def prepare_records(target, camera, root, *, status=True):
    """Compact per-target records (see :func:`numpy_.prepare_records`).

    Returns ``(records, PendingStatus or None)``; `records` is a CuPy array.
    """
    return _prepare(target, camera, root, True, status)


def prepare_poseda_records(target, camera, root, *, status=True):
    """Records for ``mode="poseda"`` (see :func:`numpy_.prepare_poseda_records`)."""
    return _prepare(target, camera, root, False, status)


def prepare_wide_records(records, camera, *, status=True):
    """Records with distortion coefficients (see :func:`numpy_.prepare_wide_records`).

    Returns ``(wide, PendingStatus or None)``; `wide` is a ``(M, 16)`` CuPy
    array, the pending status counts ``TARGET_DISTORTION``.
    """
    m = records.shape[0]
    camera = _as(records.dtype, camera)
    wide = cupy.empty((m, 2 * RECORD_WIDTH), dtype=records.dtype)
    if m == 0:
        return wide, None

    def pack(records, records_strides, camera, camera_strides, buffer):
        return _cuda.widen_args(
            records, records_strides, m, camera, camera_strides, wide, buffer
        )

    return wide, _per_target("gpa_widen", records, camera, status, pack)


# --- the GPA kernels ----------------------------------------------------------------


def _run_gpa(source, records, camera, camera_strides, out, root, poseda, spec,
             status, out2d=None, coefficients=None, perspective=False):  # fmt: skip
    n, joints = source.shape[0], source.shape[1]
    if n == 0:
        return None
    dtype = source.dtype
    features = (_cuda.FEATURE_PROJECT if out2d is not None else 0) | (
        _cuda.FEATURE_PERSPECTIVE if perspective else 0
    )
    records, record_strides = _element_strides(records)
    if record_strides[1] != 1 or (not features and record_strides[0] != RECORD_WIDTH):
        # the kernels read a record's values consecutively (never reached from
        # the public API, whose records come from the preparation kernels)
        records = cupy.ascontiguousarray(records)
        record_strides = (RECORD_WIDTH, 1)
    pairing = _pairing(spec)
    buffer, pending = _status_buffer(status, n)
    contiguous = (
        source.flags.c_contiguous
        and out.flags.c_contiguous
        and (out2d is None or out2d.flags.c_contiguous)
    )
    plan = _cuda.gpa_plan(
        n, joints, dtype.itemsize, contiguous, _multiprocessors(), features,
        lambda name: _max_threads(name, dtype, features), _tile_bytes(),
    )  # fmt: skip
    kernel, grid, block, shared, poses = plan
    extension = ()
    if features:
        if coefficients is None:
            coefficients, coefficient_strides = _cuda.NULL, (0, 0)
        else:
            coefficients, coefficient_strides = _element_strides(coefficients)
        extension = _cuda.extension_args(
            record_strides[0], coefficients, coefficient_strides,
            G.PERSPECTIVE_MAX_ITERATIONS, G.PERSPECTIVE_TOLERANCE,
        )  # fmt: skip
    if kernel == "gpa_tiled":
        args = _cuda.tiled_args(
            source, out, n, joints, root, records, camera, camera_strides, poseda,
            pairing, buffer, poses,
        )  # fmt: skip
        _launch(kernel, dtype, grid, block, args, shared)
        return pending
    if kernel == "gpa_tiled_ext":
        args = _cuda.tiled_ext_args(
            source, out, _cuda.NULL if out2d is None else out2d, n, joints, root,
            records, camera, camera_strides, poseda, extension, pairing, buffer,
            poses,
        )  # fmt: skip
        _launch(kernel, dtype, grid, block, args, shared, features)
        return pending
    source, source_strides = _element_strides(source)
    target, out_strides = _staged(out, source.shape)
    if out2d is None:
        target_2d, out2d_strides = _cuda.NULL, (0, 0, 0)
    else:
        target_2d, out2d_strides = _staged(out2d, out2d.shape)
    if kernel == "gpa_strided":
        args = _cuda.strided_args(
            source, source_strides, target, out_strides, n, joints, root, records,
            camera, camera_strides, poseda, pairing, buffer,
        )  # fmt: skip
    else:
        args = _cuda.strided_ext_args(
            source, source_strides, target, out_strides, target_2d, out2d_strides,
            n, joints, root, records, camera, camera_strides, poseda, extension,
            pairing, buffer,
        )  # fmt: skip
    _launch(kernel, dtype, grid, block, args, 0, features)
    if target is not out:
        out[...] = target
    if out2d is not None and target_2d is not out2d:
        out2d[...] = target_2d
    return pending


def _staged(out, shape):
    """``(array the kernel writes, its element strides)`` for output `out`.

    `out` itself, or a C-order temporary (copied back after the launch) when
    its strides are not whole elements.
    """
    strides = _cuda.element_strides(out)
    if strides is not None:
        return out, strides
    target = cupy.empty(shape, dtype=out.dtype)
    return target, _cuda.element_strides(target)


def _launch_into(kernel, dtype, count, out, status, pack):
    """Launch one-item-per-thread `kernel` over `count` items that write `out`.

    ``pack(target, target_strides, status_buffer)`` gives the kernel's
    arguments (the ``_cuda.*_args`` packers take these three last); `target`
    is `out`, or a temporary copied into `out` after the launch when its
    strides are not whole elements (:func:`_staged`). Returns the pending
    status.
    """
    target, out_strides = _staged(out, out.shape)
    buffer, pending = _status_buffer(status, count)
    _launch_items(kernel, dtype, count, pack(target, out_strides, buffer))
    if target is not out:
        out[...] = target
    return pending


def gpa_records(source, records, out, root, spec, out2d=None, distortion=None,
                perspective=False, *, status=True):  # fmt: skip
    """GPA against prepared records (see :func:`numpy_.gpa_records`).

    `records` may be the view ``wide[:, :8]`` of wide records (then
    `distortion` is ``wide[:, 8:]``). Returns a PendingStatus, or None with
    ``status=False`` or no poses.
    """
    if out2d is None:
        distortion = None
    records, distortion = _as(source.dtype, records), _as(source.dtype, distortion)
    _check_outputs(source.dtype, out, out2d)
    # paired mode reads no camera: the records stand in, never dereferenced
    # (with no targets they are empty: a null pointer on a device)
    return _run_gpa(
        source, records, records, (0, 1), out, root, 0, spec, status, out2d,
        distortion, perspective,
    )  # fmt: skip


def gpa_poseda(source, records, camera, out, root, spec, out2d=None, *, status=True):
    """The published arithmetic (see :func:`numpy_.gpa_poseda`)."""
    records, camera = _as(source.dtype, records), _as(source.dtype, camera)
    _check_outputs(source.dtype, out, out2d)
    coefficients = None
    if out2d is not None and camera.shape[1] == 9:
        coefficients = camera[:, 4:9]
    camera, camera_strides = _element_strides(camera)
    return _run_gpa(
        source, records, camera, camera_strides, out, root, 1, spec, status, out2d,
        coefficients,
    )  # fmt: skip


# --- clips --------------------------------------------------------------------------


def gpa_clip(source, origin, anchor, out, *, status=True):
    """Apply each clip's reference-frame translation (see :func:`numpy_.gpa_clip`).

    Returns a PendingStatus that counts *joints* (the kernel runs one thread
    per joint), or None with ``status=False`` or no clips; the caller recounts
    by clip when anything was flagged.
    """
    n, frames, joints = source.shape[0], source.shape[1], source.shape[2]
    count = n * frames * joints
    if count == 0:
        return None
    source, source_strides = _element_strides(source)
    origin, anchor = _as(source.dtype, origin), _as(source.dtype, anchor)
    _check_outputs(source.dtype, out)
    origin, origin_strides = _element_strides(origin)
    anchor, anchor_strides = _element_strides(anchor)
    pack = functools.partial(
        _cuda.clip_args, source, source_strides, n, frames, joints, origin,
        origin_strides, anchor, anchor_strides,
    )  # fmt: skip
    return _launch_into("gpa_clip", source.dtype, count, out, status, pack)


# --- projection ---------------------------------------------------------------------


def project_points(points, camera, per, out, *, status=True):
    """Project camera-space points (see :func:`numpy_.project_points`).

    Returns a PendingStatus, or None with ``status=False`` or no points.
    """
    count = points.shape[0]
    if count == 0:
        return None
    camera = _as(points.dtype, camera)
    _check_outputs(points.dtype, out)
    points, points_strides = _element_strides(points)
    camera, camera_strides = _element_strides(camera)
    pack = functools.partial(
        _cuda.project_args, points, points_strides, count, camera, camera_strides, per
    )
    return _launch_into("gpa_project", points.dtype, count, out, status, pack)


# --- metrics --------------------------------------------------------------------------

_joint_cache = threading.local()


def _device_joints(joints):
    """`joints` as an int64 device array: uploaded once per subset and device.

    A cached subset is read by later calls on any stream, so its upload is
    waited for once (a stream that did not queue the copy could otherwise read
    it before it lands), and a full cache is dropped only after the device has
    finished: freed memory goes back to the pool of the stream that allocated
    it, which may reuse it while another stream still reads it.
    """
    if isinstance(joints, cupy.ndarray):
        return joints.astype(np.int64, copy=False)
    key = (cupy.cuda.Device().id, np.asarray(joints, dtype=np.int64).tobytes())
    cache = getattr(_joint_cache, "arrays", None)
    if cache is None or len(cache) > 64:
        if cache:
            cupy.cuda.Device().synchronize()
        cache = _joint_cache.arrays = {}
    held = cache.get(key)
    if held is None:
        held = cupy.asarray(np.asarray(joints, dtype=np.int64))
        cupy.cuda.get_current_stream().synchronize()
        cache[key] = held
    return held


def _pose_arrays(predicted, target, joints):
    # one dtype for both pose arrays (the kernel is chosen by the prediction's
    # and reads the target as the same type): the wider of the two, as the
    # public functions convert them
    dtype = np.promote_types(predicted.dtype, target.dtype)
    predicted = predicted.astype(dtype, copy=False)
    target = target.astype(dtype, copy=False)
    predicted, predicted_strides = _element_strides(predicted)
    target, target_strides = _element_strides(target)
    joints = _device_joints(joints)
    joints, joints_strides = _element_strides(joints)
    return predicted, predicted_strides, target, target_strides, joints, joints_strides


def joint_errors(predicted, target, joints, root, align, *, status=True):
    """Per-joint errors after alignment (see :func:`numpy_.joint_errors`).

    Returns ``(errors, PendingStatus or None)``; `errors` is a ``(N, K)``
    float64 CuPy array.
    """
    n = predicted.shape[0]
    errors = cupy.empty((n, joints.shape[0]), dtype=np.float64)
    if n == 0:
        return errors, None
    p, p_strides, t, t_strides, sel, sel_strides = _pose_arrays(
        predicted, target, joints
    )
    buffer, pending = _status_buffer(status, n)
    args = _cuda.joint_errors_args(
        p, p_strides, t, t_strides, n, sel, sel_strides[0], root, errors,
        _cuda.element_strides(errors), buffer,
    )  # fmt: skip
    _launch_items("gpa_joint_errors", p.dtype, n, args, align)
    return errors, pending


def procrustes_fit(predicted, target, joints, *, status=True):
    """Per-pose similarity fit (see :func:`numpy_.procrustes_fit`).

    Returns ``(scale, rotation, translation, PendingStatus or None)``, float64
    CuPy arrays of shapes ``(N,)``, ``(N, 3, 3)``, ``(N, 3)``.
    """
    n = predicted.shape[0]
    scale = cupy.empty(n, dtype=np.float64)
    rotation = cupy.empty((n, 3, 3), dtype=np.float64)
    translation = cupy.empty((n, 3), dtype=np.float64)
    if n == 0:
        return scale, rotation, translation, None
    p, p_strides, t, t_strides, sel, sel_strides = _pose_arrays(
        predicted, target, joints
    )
    buffer, pending = _status_buffer(status, n)
    args = _cuda.procrustes_fit_args(
        p, p_strides, t, t_strides, n, sel, sel_strides[0], scale, rotation,
        translation, buffer,
    )  # fmt: skip
    _launch_items("gpa_procrustes_fit", p.dtype, n, args)
    return scale, rotation, translation, pending
