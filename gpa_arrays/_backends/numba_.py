"""Fused CPU kernels compiled by Numba.

Same functions, names and argument order as :mod:`numpy_`, the reference this
module is tested against. Each public function makes one pass over its input:

* :func:`prepare_records` reads every target pose once and writes its compact
  record (box scale, unprojected root, focal lengths), validating as it goes.
* :func:`gpa_records` reads every source pose once, evaluates the counter-based
  pairing for a block of ``PAIRING_BLOCK`` poses at a time (a loop the compiler
  vectorises), prefetches the records of the next block (the random gather is
  the one access a hardware prefetcher cannot predict), writes the output, and
  counts non-finite or degenerate poses on the way. No temporary of size N is
  allocated.

Work is split into contiguous chunks of poses; a chunk is the unit a worker
thread takes and carries its own ``[count, first]`` error counters, merged on the
host. Kernels are compiled lazily, cached on disk (``cache=True``), never with
fast-math (:data:`gpa_arrays._config.FASTMATH`), and with NumPy's error model so
that a division by zero yields ``inf`` (which the checks then report) instead of
raising inside a kernel.

Fork safety
-----------
Numba's default threading layer on Linux is GNU OpenMP, whose thread pool does
not survive ``fork()``: a child that launches a parallel region after its parent
did is killed ("fork() called from a process already using GNU OpenMP"). PyTorch
DataLoader workers and multiprocessing pools fork, so :func:`_use_parallel`
notices a fork that happened after this process started a parallel kernel and
runs the serial twin of each kernel in that child instead. The serial twins call
the same chunk functions, so results are identical.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

from .. import _config
from .. import _pairing as P
from .._status import (
    N_CATEGORIES,
    POSE_DEGENERATE,
    POSE_INDEX,
    POSE_NONFINITE,
    TARGET_CAMERA,
    TARGET_DEGENERATE,
    TARGET_NONFINITE,
    new_status,
)
from ._numba_simd import pose_extent, pose_place, target_extent
from .numpy_ import RECORD_WIDTH

__all__ = [
    "gpa_poseda",
    "gpa_records",
    "pair_indices",
    "prepare_poseda_records",
    "prepare_records",
]

_KW = {"cache": True, "fastmath": _config.FASTMATH, "error_model": "numpy"}
_jit = njit(nogil=True, **_KW)
_jit_parallel = njit(parallel=True, **_KW)

# Numba does not inline calls between compiled functions by itself, and each call
# pays for reference counting of its array arguments. Per-pose helpers are
# therefore loop-free, take scalars or tuples, and are inlined at the IR level.
# The shared pairing arithmetic is registered here so that the very function
# objects the NumPy reference applies to arrays compile for scalars.
_INLINE = {"inline": "always", **_KW}
for _fn in (P.mix64, P.feistel_round, P.feistel_rounds, P.mulhi64, P.random_index):
    register_jitable(**_INLINE)(_fn)
register_jitable(**_KW)(P.round_keys)

_PERMUTATION = P.KIND_PERMUTATION
_RANDOM = P.KIND_RANDOM
_IDENTITY = P.KIND_IDENTITY
_ARRAY = P.KIND_ARRAY
_NCAT = N_CATEGORIES
_P_NONFINITE = POSE_NONFINITE
_P_DEGENERATE = POSE_DEGENERATE
_P_INDEX = POSE_INDEX
_T_NONFINITE = TARGET_NONFINITE
_T_DEGENERATE = TARGET_DEGENERATE
_T_CAMERA = TARGET_CAMERA
_U1 = np.uint64(1)
_EMPTY_INDEX = np.zeros(0, dtype=np.int64)


@intrinsic
def _prefetch_row(typingctx, array, row):
    """Hint the CPU to load ``array[row, 0]`` into cache (never faults)."""
    if not isinstance(array, types.Array) or not isinstance(row, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        array_type, row_type = signature.args
        ary = context.make_array(array_type)(context, builder, args[0])
        index = context.cast(builder, args[1], row_type, types.intp)
        zero = context.get_constant(types.intp, 0)
        pointer = cgutils.get_item_pointer2(
            context,
            builder,
            ary.data,
            cgutils.unpack_tuple(builder, ary.shape),
            cgutils.unpack_tuple(builder, ary.strides),
            array_type.layout,
            [index] + [zero] * (array_type.ndim - 1),
            wraparound=False,
        )
        i8p = builder.bitcast(pointer, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read access, high temporal locality, data cache
        flags = [ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)]
        builder.call(fn, [i8p, *flags])
        return context.get_dummy_value()

    return types.void(array, row), codegen


# --- pairing ---------------------------------------------------------------------


@njit(**_INLINE)
def _divmod_exact(x, d, inv_d):
    """``(x // d, x % d)`` for uint64 ``x < 2**48`` without a division.

    The float64 quotient ``x * (1/d)`` is within 1/16 of the true one for these
    ranges, so after truncation it is off by at most one; one correction each
    way makes the result exact. Unlike the hardware divide this vectorises
    (measured 5 ns against 21 ns per pose for the whole Feistel pass).
    """
    q = np.uint64(np.float64(x) * inv_d)
    r = x - q * d
    high = np.uint64(r > x)  # q one too large: r wrapped around
    q = q - high
    r = r + d * high
    low = np.uint64(r >= d)  # q one too small
    return q + low, r - d * low


@_jit
def _divmod_exact_array(x, d):
    """Elementwise :func:`_divmod_exact` of a uint64 array (tests the trick)."""
    q = np.empty_like(x)
    r = np.empty_like(x)
    d = np.uint64(d)
    inv_d = 1.0 / np.float64(d)
    for t in range(x.shape[0]):
        q[t], r[t] = _divmod_exact(x[t], d, inv_d)
    return q, r


@njit(**_INLINE)
def _permute(x, keys, a, b, inv_b):
    """One Feistel pass (same values as :func:`gpa_arrays._pairing.feistel`)."""
    left, right = _divmod_exact(x, b, inv_b)
    left, right = P.feistel_rounds(left, right, keys, a, b)
    return left * b + right


@_jit
def _key_tuple(seed, step):
    """The round keys of (seed, step) as a tuple (a value, not an array).

    `seed` and `step` arrive as int64 (the host passes the uint64 bit pattern:
    Python ints cost a third of NumPy scalars to dispatch) and are reinterpreted.
    """
    keys = np.empty(P.ROUNDS + 1, dtype=np.uint64)
    P.round_keys(np.uint64(seed), np.uint64(step), keys)
    return (keys[0], keys[1], keys[2], keys[3], keys[4], keys[5], keys[6])


@_jit
def _fill_targets(
    buf, off, start, count, kind, offset, keys, a, b, inv_b, k, m, inv_m, index
):
    """Write the targets of local sources ``start .. start+count-1`` to ``buf[off:]``.

    Local pose ``t`` is global pose ``offset + t``: the pairing is a function of
    the global index, the explicit `index` array is local.

    One tight loop per pairing kind so that each vectorises; the rare points
    that need cycle walking and the fold onto ``[0, m)`` follow in their own
    passes over the (cache-resident) block. Sizes arrive as int64.
    """
    a = np.uint64(a)
    b = np.uint64(b)
    k = np.uint64(k)
    m = np.uint64(m)
    if kind == _ARRAY:
        for t in range(count):
            buf[off + t] = index[start + t]
    elif kind == _IDENTITY:
        for t in range(count):
            buf[off + t] = offset + start + t
    elif kind == _RANDOM:
        first = offset + start
        for t in range(count):
            buf[off + t] = np.int64(P.random_index(np.uint64(first + t), keys, m))
    else:
        first = offset + start
        for t in range(count):
            x = _permute(np.uint64(first + t), keys, a, b, inv_b)
            buf[off + t] = np.int64(x)
        for t in range(count):
            x = np.uint64(buf[off + t])
            if x >= k:
                while x >= k:
                    x = _permute(x, keys, a, b, inv_b)
                buf[off + t] = np.int64(x)
        if k > m:
            for t in range(count):
                _, r = _divmod_exact(np.uint64(buf[off + t]), m, inv_m)
                buf[off + t] = np.int64(r)


@_jit_parallel
def _pair_parallel(
    out, kind, offset, seed, step, a, b, inv_b, k, m, inv_m, index, nchunks
):
    keys = _key_tuple(seed, step)
    n = out.shape[0]
    per = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        lo = c * per
        count = min(n, lo + per) - lo
        _fill_targets(
            out, lo, lo, count, kind, offset, keys, a, b, inv_b, k, m, inv_m, index
        )


@_jit
def _pair_serial(
    out, kind, offset, seed, step, a, b, inv_b, k, m, inv_m, index, nchunks
):
    keys = _key_tuple(seed, step)
    n = out.shape[0]
    _fill_targets(out, 0, 0, n, kind, offset, keys, a, b, inv_b, k, m, inv_m, index)


# --- target preparation ----------------------------------------------------------


@_jit
def _bad_count(status):
    """Total of the per-chunk counters, so the host inspects them only if needed."""
    total = 0
    for c in range(status.shape[0]):
        for category in range(status.shape[1]):
            total += status[c, category, 0]
    return total


@_jit
def _flag(status, category, index):
    if status[category, 0] == 0:
        status[category, 1] = index
    status[category, 0] += 1


@_jit
def _prepare_chunk(
    target, camera, root, records, two, with_camera, joints, lo, hi, status
):
    m = target.shape[0]
    e_fixed = 2 * len(joints)  # compile-time joint count, or 0: read the shape
    e = e_fixed if e_fixed > 0 else 2 * target.shape[1]
    flat = target.reshape((m, e))
    for t in range(lo, hi):
        if e_fixed > 0:
            xmin, xmax, ymin, ymax, finite = target_extent(flat, t, joints)
        else:
            xmin = flat[t, 0]
            xmax = xmin
            ymin = flat[t, 1]
            ymax = ymin
            # x - x is 0 for finite x and NaN otherwise; the sum stays 0 or NaN
            fin = xmin - xmin
            for q in range(0, e, 2):
                x = flat[t, q]
                y = flat[t, q + 1]
                fin += (x - x) + (y - y)
                xmin = min(xmin, x)
                xmax = max(xmax, x)
                ymin = min(ymin, y)
                ymax = max(ymax, y)
            finite = fin == fin
        s = ((xmax - xmin) + (ymax - ymin)) / two
        d = two * s
        rx = flat[t, 2 * root]
        ry = flat[t, 2 * root + 1]
        fx = camera[t, 0]
        fy = camera[t, 1]
        cx = camera[t, 2]
        cy = camera[t, 3]
        if not finite:
            _flag(status, _T_NONFINITE, t)
        elif not d > 0:
            _flag(status, _T_DEGENERATE, t)
        centre = (cx - cx) + (cy - cy)
        if not (fx > 0 and fy > 0 and fx - fx == fy - fy and centre == centre):
            _flag(status, _T_CAMERA, t)
        if with_camera:
            records[t, 0] = (rx - cx) / fx
            records[t, 1] = (ry - cy) / fy
            records[t, 3] = fx
            records[t, 4] = fy
            records[t, 5] = cx
            records[t, 6] = cy
        else:
            records[t, 0] = rx
            records[t, 1] = ry
            records[t, 3] = 0
            records[t, 4] = 0
            records[t, 5] = 0
            records[t, 6] = 0
        records[t, 2] = d
        records[t, 7] = 0


@_jit_parallel
def _prepare_parallel(target, camera, root, records, two, with_camera, joints, status):
    m = target.shape[0]
    nchunks = status.shape[0]
    per = (m + nchunks - 1) // nchunks
    for c in prange(nchunks):
        lo = c * per
        hi = min(m, lo + per)
        _prepare_chunk(
            target, camera, root, records, two, with_camera, joints, lo, hi, status[c]
        )
    return _bad_count(status)


@_jit
def _prepare_serial(target, camera, root, records, two, with_camera, joints, status):
    m = target.shape[0]
    _prepare_chunk(
        target, camera, root, records, two, with_camera, joints, 0, m, status[0]
    )
    return _bad_count(status)


# --- the GPA kernel -------------------------------------------------------------------
#
# Poses are addressed through a flat (N, 3J) view of the C-contiguous source and
# output, and the joint count is a compile-time constant (the length of the
# `joints` tuple; an empty tuple means "read it from the shape"). Both are needed
# for LLVM to see that a pose is 3J consecutive values and vectorise the
# per-joint arithmetic: measured 20 ns/pose against 37 ns/pose for 3D indexing
# with a run-time joint count (benchmarks/bench_gpa.py, J = 17, float32).


@_jit
def _gpa_chunk(
    source, records, camera, out, root, poseda, kind, offset, keys, a, b, inv_b, k,
    m, inv_m, index, joints, block_size, lo, hi, status,
):  # fmt: skip
    """Align poses ``[lo, hi)``; the whole per-pose path lives in this one loop."""
    n = source.shape[0]
    e_fixed = 3 * len(joints)
    e = e_fixed if e_fixed > 0 else 3 * source.shape[1]
    src = source.reshape((n, e))
    dst = out.reshape((n, e))
    r0 = 3 * root
    mi = np.int64(m)
    last = max(mi - 1, 0)
    # Two halves: the targets of the block being aligned, and those of the next
    # block. Pose t of a block prefetches the record of pose t of the next one:
    # one prefetch per pose, a block ahead. Issuing a block's prefetches in one
    # burst measured 3x slower: the outstanding-miss queues overflow and drop
    # them.
    buf = np.empty(2 * block_size, dtype=np.int64)
    count = min(block_size, hi - lo)
    _fill_targets(
        buf, 0, lo, count, kind, offset, keys, a, b, inv_b, k, m, inv_m, index
    )
    for t in range(count):
        _prefetch_row(records, min(max(buf[t], 0), last))
    # row 0's focal lengths, read by the poseda arithmetic only (there the camera
    # array has one row per source pose; in paired mode it is a stand-in)
    fx0 = camera[0, 0]
    fy0 = camera[0, 1]
    half = 0
    for block in range(lo, hi, block_size):
        following = block + block_size
        other = block_size - half
        ahead = min(block_size, hi - following) if following < hi else 0
        if ahead > 0:
            _fill_targets(
                buf, other, following, ahead, kind, offset, keys, a, b, inv_b, k, m,
                inv_m, index,
            )  # fmt: skip
        for i in range(block, min(hi, following)):
            t = i - block
            if t < ahead:
                _prefetch_row(records, min(max(buf[other + t], 0), last))
            j = buf[half + t]
            if j < 0 or j >= mi:
                for q in range(e):
                    dst[i, q] = np.nan
                _flag(status, _P_INDEX, i)
                continue
            # 2D extent of the source pose
            if e_fixed > 0:
                xmin, xmax, ymin, ymax, _ = pose_extent(src, i, joints)
            else:
                xmin = src[i, 0]
                xmax = xmin
                ymin = src[i, 1]
                ymax = ymin
                for q in range(3, e, 3):
                    xmin = min(xmin, src[i, q])
                    xmax = max(xmax, src[i, q])
                    ymin = min(ymin, src[i, q + 1])
                    ymax = max(ymax, src[i, q + 1])
            dx = xmax - xmin
            dy = ymax - ymin
            if poseda:
                z = (fx0 * dx + fy0 * dy) / records[j, 2]
                u = (records[j, 0] - camera[i, 2]) / camera[i, 0]
                v = (records[j, 1] - camera[i, 3]) / camera[i, 1]
            else:
                z = (records[j, 3] * dx + records[j, 4] * dy) / records[j, 2]
                u = records[j, 0]
                v = records[j, 1]
            px = z * u
            py = z * v
            rx = src[i, r0]
            ry = src[i, r0 + 1]
            rz = src[i, r0 + 2]
            if e_fixed > 0:
                finite = pose_place(src, dst, i, (rx, ry, rz), (px, py, z), joints)
            else:
                finite = True
                for q in range(0, e, 3):
                    ox = (src[i, q] - rx) + px
                    oy = (src[i, q + 1] - ry) + py
                    oz = (src[i, q + 2] - rz) + z
                    dst[i, q] = ox
                    dst[i, q + 1] = oy
                    dst[i, q + 2] = oz
                    # v - v is 0 for finite v and NaN otherwise (NaN != NaN);
                    # staying in the array's dtype keeps the test exact
                    hx = ox - ox
                    hy = oy - oy
                    hz = oz - oz
                    finite = finite & (hx == hx) & (hy == hy) & (hz == hz)
            if not finite:
                _flag(status, _P_NONFINITE, i)
            elif not z > 0:
                _flag(status, _P_DEGENERATE, i)
        half = other


@_jit_parallel
def _gpa_parallel(
    source, records, camera, out, root, poseda, kind, offset, seed, step, a, b, inv_b,
    k, m, inv_m, index, joints, block_size, status,
):  # fmt: skip
    keys = _key_tuple(seed, step)
    n = source.shape[0]
    nchunks = status.shape[0]
    per = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _gpa_chunk(
            source, records, camera, out, root, poseda, kind, offset, keys, a, b,
            inv_b, k, m, inv_m, index, joints, block_size, c * per,
            min(n, c * per + per), status[c],
        )  # fmt: skip
    return _bad_count(status)


@_jit
def _gpa_serial(
    source, records, camera, out, root, poseda, kind, offset, seed, step, a, b, inv_b,
    k, m, inv_m, index, joints, block_size, status,
):  # fmt: skip
    _gpa_chunk(
        source, records, camera, out, root, poseda, kind, offset,
        _key_tuple(seed, step), a, b, inv_b, k, m, inv_m, index, joints, block_size,
        0, source.shape[0], status[0],
    )  # fmt: skip
    return _bad_count(status)


# --- host side --------------------------------------------------------------------

_serial_only = False  # set in a child forked from a process with a live OpenMP pool


def _fork_unsafe_layer():
    """Whether this process holds a thread pool that a forked child cannot use."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run in this process yet
        return False
    return layer == "omp"


def _after_fork_in_child():
    global _serial_only
    _serial_only = _serial_only or _fork_unsafe_layer()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _use_parallel(n):
    """Whether to launch the parallel twin of a kernel for `n` poses.

    False for small inputs (waking the workers costs more than the work) and in
    a child forked after its parent started a GNU OpenMP pool, which the child
    cannot use.
    """
    return (
        n >= _config.PARALLEL_MIN_POSES
        and not _serial_only
        and numba.get_num_threads() > 1
    )


def _chunks(n):
    threads = numba.get_num_threads()
    return int(max(1, min(4 * threads, n // _config.MIN_POSES_PER_CHUNK)))


def _statuses(nchunks):
    return np.zeros((nchunks, _NCAT, 2), dtype=np.int64)


def _merge(statuses):
    """Merge per-chunk ``[count, first]`` counters into one (3, 2) status."""
    if statuses.shape[0] == 1:
        return statuses[0]
    status = new_status()
    counts = statuses[:, :, 0]
    status[:, 0] = counts.sum(axis=0)
    for category in range(_NCAT):
        hit = np.flatnonzero(counts[:, category])
        if hit.size:
            status[category, 1] = statuses[hit[0], category, 1]
    return status


def _as_int64(value):
    """The int64 with the bit pattern of uint64 `value`."""
    return value - 2**64 if value >= 2**63 else value


def _spec_args(spec):
    """Kernel arguments of a pairing.

    ``kind, offset, seed, step, a, b, 1/b, k, m, 1/m, index``.
    """
    return (
        spec.kind,
        spec.offset,
        _as_int64(spec.seed),
        _as_int64(spec.step),
        spec.a,
        spec.b,
        1.0 / spec.b,
        spec.k,
        spec.m,
        1.0 / max(spec.m, 1),
        _EMPTY_INDEX if spec.index is None else spec.index,
    )


def pair_indices(spec):
    """Evaluate a pairing for every source pose (see :func:`numpy_.pair_indices`)."""
    out = np.empty(spec.count, dtype=np.int64)
    if spec.count == 0:
        return out
    if spec.kind == P.KIND_ARRAY:
        out[:] = spec.index
        return out
    parallel = _use_parallel(spec.count)
    run = _pair_parallel if parallel else _pair_serial
    run(out, *_spec_args(spec), _chunks(spec.count) if parallel else 1)
    return out


def _joints(count):
    """The compile-time joint-count token: a tuple of that length, or ``()``.

    Kernels read ``len(joints)`` as a constant: a non-empty token selects the
    specialised (unrolled, vectorised) code for exactly that many joints, the
    empty one the generic code that reads the count from the array's shape.
    """
    key = (count, _config.MAX_SPECIALIZED_JOINTS)
    token = _JOINT_TOKENS.get(key)
    if token is None:
        token = (0,) * count if count <= _config.MAX_SPECIALIZED_JOINTS else ()
        _JOINT_TOKENS[key] = token
    return token


_JOINT_TOKENS: dict = {}


def _prepare(target, camera, root, with_camera):
    m = target.shape[0]
    records = np.empty((m, RECORD_WIDTH), dtype=target.dtype)
    if m == 0:
        return records, None
    target = np.ascontiguousarray(target)
    parallel = _use_parallel(m)
    statuses = _statuses(_chunks(m) if parallel else 1)
    run = _prepare_parallel if parallel else _prepare_serial
    two = target.dtype.type(2)
    joints = _joints(target.shape[1])
    bad = run(target, camera, root, records, two, with_camera, joints, statuses)
    return records, (_merge(statuses) if bad else None)


def prepare_records(target, camera, root):
    """Compact per-target records (see :func:`numpy_.prepare_records`)."""
    return _prepare(target, camera, root, True)


def prepare_poseda_records(target, camera, root):
    """Records for ``mode="poseda"`` (see :func:`numpy_.prepare_poseda_records`)."""
    return _prepare(target, camera, root, False)


def _run_gpa(source, records, camera, out, root, poseda, spec):
    n = source.shape[0]
    if n == 0:
        return None
    # The kernels address poses through flat views, which need C order; other
    # layouts are copied in (source) or staged and copied out (out).
    if not source.flags.c_contiguous:
        source = np.ascontiguousarray(source)
    target = out if out.flags.c_contiguous else np.empty_like(source)
    parallel = _use_parallel(n)
    statuses = _statuses(_chunks(n) if parallel else 1)
    run = _gpa_parallel if parallel else _gpa_serial
    joints = _joints(source.shape[1])
    bad = run(
        source, records, camera, target, root, poseda, *_spec_args(spec), joints,
        _config.PAIRING_BLOCK, statuses,
    )  # fmt: skip
    if target is not out:
        out[...] = target
    return _merge(statuses) if bad else None


def gpa_records(source, records, out, root, spec):
    """GPA against prepared records (see :func:`numpy_.gpa_records`)."""
    # the camera argument is unused in paired mode; any 2D array of the dtype
    # keeps the compiled signature stable
    return _run_gpa(source, records, records, out, root, False, spec)


def gpa_poseda(source, records, camera, out, root, spec):
    """The published arithmetic (see :func:`numpy_.gpa_poseda`)."""
    return _run_gpa(source, records, camera, out, root, True, spec)
