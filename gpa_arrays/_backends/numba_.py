"""Fused CPU kernels compiled by Numba.

Same functions, names, argument order and calling convention as :mod:`numpy_`,
the reference this module is tested against (the interface is declared in
:mod:`._interface`). Each public function makes one pass over its input:

* :func:`prepare_records` reads every target pose once and writes its compact
  record (box scale, unprojected root, focal lengths), validating as it goes.
* :func:`gpa_records` reads every source pose once, evaluates the counter-based
  pairing for a tile of ``PAIRING_BLOCK`` poses at a time (a loop the compiler
  vectorises), prefetches each pose's record ``PREFETCH_DISTANCE`` poses ahead
  (the random gather is the one access a hardware prefetcher cannot
  predict), writes the output, and
  counts non-finite or degenerate poses on the way. No temporary of size N is
  allocated. With ``out2d`` it also projects the aligned pose (``return_2d``),
  with ``perspective`` it solves each pose's depth in float64 first; both are
  compiled away when not asked for.
* :func:`project_points` projects camera-space points, one camera row per run
  of points (the inner loop vectorises).
* :func:`joint_errors` and :func:`procrustes_fit` score poses, fitting a
  per-pose similarity by Horn's quaternion method where asked (see the
  "metrics" section below).

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
DataLoader workers and multiprocessing pools fork, so :func:`use_parallel`
notices a fork that happened after this process started a parallel kernel and
runs the serial twin of each kernel in that child instead. The serial twins call
the same chunk functions, so results are identical.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload, register_jitable

from .. import _config
from .. import _geometry as G
from .. import _pairing as P
from .. import _status as S
from ._interface import NAMES
from ._numba_simd import pose_extent, pose_place, row_pointer, target_extent
from .numpy_ import ALIGN_PROCRUSTES, ALIGN_SCALE, RECORD_WIDTH

# plain copies and the host statuses need no kernel: the reference's serve
from .numpy_ import prepare_wide_records as prepare_wide_records
from .numpy_ import read_status as read_status

__all__ = list(NAMES)

_KW: dict[str, Any] = {
    "cache": True,
    "fastmath": _config.FASTMATH,
    "error_model": "numpy",
}
_jit = njit(nogil=True, **_KW)
_jit_parallel = njit(parallel=True, **_KW)
# Twins. Every kernel is a chunk function (``_*_chunk``: the per-item loop over
# ``[lo, hi)`` with its own status counters) called by two small drivers, a
# ``_jit_parallel`` one that splits the work into chunks over ``prange`` and a
# ``_jit`` one that runs a single chunk; the host launcher picks one with
# :func:`use_parallel`, the one fork guard. The drivers are written out per
# kernel rather than generated from one generic driver that takes the chunk
# function as an argument because Numba's on-disk cache does not hit for a
# jitted function that takes another jitted function as a first-class argument:
# such a driver would recompile at every process start.

# The serial drivers pass np.int64(0), never a literal 0, as the first index: a
# literal would compile the chunk function once more, for Literal[int](0)
# (measured: the GPA chunk and the pairing tile compiled two and three times).
# Numba does not inline calls between compiled functions by itself, and each call
# pays for reference counting of its array arguments. Per-pose helpers are
# therefore loop-free, take scalars or tuples, and are inlined at the IR level.
# The shared pairing arithmetic is registered here so that the very function
# objects the NumPy reference applies to arrays compile for scalars.
_INLINE = {"inline": "always", **_KW}
_fn: Any  # the loops below register functions of different signatures
for _fn in (
    P.mix32,
    P.mix64,
    P.feistel_round,
    P.feistel_rounds,
    P.mulhi64,
    P.random_index,
):
    register_jitable(**_INLINE)(_fn)
register_jitable(**_KW)(P.round_keys)
# The camera and depth arithmetic, shared with the NumPy reference the same way.
for _fn in (
    G.clamp_unit,
    G.project_linear,
    G.project_distorted,
    G.joint_offset,
    G.track_max,
    G.track_min,
    G.box_and_slope,
    G.depth_update,
):
    register_jitable(**_INLINE)(_fn)


# Not inlined at the IR level (a conditional expression's phi nodes upset
# Numba's inliner); LLVM inlines it anyway, and scalars cost no reference counts.
# (the ignore: _KW is a plain dict, the stubs ask for their TypedDict of options)
@overload(G.select, jit_options=_KW)  # type: ignore[arg-type]
def _select_scalar(condition, a, b):
    """``numpy.where`` of scalars is a 0-d array in Numba; a branch is a value."""

    def impl(condition, a, b):
        return a if condition else b

    return impl


def _cast_like(value, like):
    """`value` converted to the floating type of `like` (compiled code only)."""
    raise NotImplementedError  # pragma: no cover - replaced by the overload


@overload(_cast_like, inline="always")
def _cast_like_impl(value, like):
    if isinstance(like, types.Float) and like.bitwidth == 32:
        return lambda value, like: np.float32(value)
    return lambda value, like: np.float64(value)


def _precision_factor(like):
    """:func:`gpa_arrays._status.precision_factor` in the type of `like` (jit)."""
    raise NotImplementedError  # pragma: no cover - replaced by the overload


@overload(_precision_factor, inline="always")
def _precision_factor_impl(like):
    if isinstance(like, types.Float) and like.bitwidth == 32:
        factor32 = S.precision_factor(np.float32)
        return lambda like: np.float32(factor32)
    factor64 = S.precision_factor(np.float64)
    return lambda like: np.float64(factor64)


_PERMUTATION = P.KIND_PERMUTATION
_RANDOM = P.KIND_RANDOM
_IDENTITY = P.KIND_IDENTITY
_ARRAY = P.KIND_ARRAY
# Status categories as plain module globals, which Numba freezes as constants.
_NCAT = S.N_CATEGORIES
_P_NONFINITE = S.POSE_NONFINITE
_P_DEGENERATE = S.POSE_DEGENERATE
_P_INDEX = S.POSE_INDEX
_P_NO_DEPTH = S.POSE_NO_DEPTH
_P_BEHIND = S.POSE_BEHIND
_P_PRECISION = S.POSE_PRECISION
_ALIGN_SCALE = ALIGN_SCALE
_ALIGN_PROCRUSTES = ALIGN_PROCRUSTES
_Q_NONFINITE = S.POINT_NONFINITE
_Q_BEHIND = S.POINT_BEHIND
_Q_CAMERA = S.POINT_CAMERA
_T_NONFINITE = S.TARGET_NONFINITE
_T_DEGENERATE = S.TARGET_DEGENERATE
_T_CAMERA = S.TARGET_CAMERA
_U1 = np.uint64(1)
_EMPTY_INDEX = np.zeros(0, dtype=np.int64)


@intrinsic
def _prefetch_row(typingctx, array, row):
    """Hint the CPU to load ``array[row, 0]`` into cache (never faults)."""
    if not isinstance(array, types.Array) or not isinstance(row, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        array_type, row_type = signature.args
        pointer = row_pointer(context, builder, array_type, args[0], args[1], row_type)
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
    zero = np.int64(0)  # a literal 0 would compile the callee once more for it
    _fill_targets(
        out, zero, zero, n, kind, offset, keys, a, b, inv_b, k, m, inv_m, index
    )


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
        if not finite:  # poison the record, as the reference does
            records[t, 2] = np.nan
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
        target, camera, root, records, two, with_camera, joints, np.int64(0), m,
        status[0],
    )  # fmt: skip
    return _bad_count(status)


# --- the GPA kernel -------------------------------------------------------------------
#
# Poses are addressed through a flat (N, 3J) view of the C-contiguous source and
# output, and the joint count is a compile-time constant (the length of the
# `joints` tuple; an empty tuple means "read it from the shape"). Both are needed
# for LLVM to see that a pose is 3J consecutive values and vectorise the
# per-joint arithmetic: measured 20 ns/pose against 37 ns/pose for 3D indexing
# with a run-time joint count (benchmarks/bench_gpa.py, J = 17, float32).


@njit(**_INLINE)
def _perspective_depth(src, i, e, r0, z0, u, v, fx, fy, d, max_iter, tol):
    """Root depth of pose `i` whose perspective box scale is the target's.

    The per-pose loop whose vectorised twin is ``numpy_._perspective_depth``
    (same float64 operations in the same order; the arithmetic is shared, see
    :mod:`gpa_arrays._geometry`). Returns ``(z, solved)``, z in float64.
    """
    rx = np.float64(src[i, r0])
    ry = np.float64(src[i, r0 + 1])
    rz = np.float64(src[i, r0 + 2])
    lo = 0.0
    for q in range(0, e, 3):
        lo = np.maximum(lo, -(np.float64(src[i, q + 2]) - rz))
    z = G.select(z0 > lo, z0, lo + lo)
    hi = np.inf
    for _ in range(max_iter):
        x_max = x_min = y_max = y_min = 0.0
        gx_max = gx_min = gy_max = gy_min = 0.0
        for q in range(0, e, 3):
            c = np.float64(src[i, q + 2]) - rz
            inv_q = 1.0 / (z + c)
            p, g = G.joint_offset(np.float64(src[i, q]) - rx, c, u, inv_q)
            x_max, gx_max = G.track_max(p, g, x_max, gx_max)
            x_min, gx_min = G.track_min(p, g, x_min, gx_min)
            p, g = G.joint_offset(np.float64(src[i, q + 1]) - ry, c, v, inv_q)
            y_max, gy_max = G.track_max(p, g, y_max, gy_max)
            y_min, gy_min = G.track_min(p, g, y_min, gy_min)
        t, slope = G.box_and_slope(
            fx, fy, x_max, x_min, y_max, y_min, gx_max, gx_min, gy_max, gy_min
        )
        if abs(t - d) <= tol * d:
            return z, True
        z, lo, hi = G.depth_update(z, t, slope, d, lo, hi)
    return z, False


@njit(**_INLINE)
def _project_pose(dst, o2, i, n_values, fx, fy, cx, cy, coefficients):
    """Project aligned pose `i` (row of `dst`) into row `i` of `o2`.

    `coefficients` is ``None`` (pinhole) or ``(k1, k2, k3, p1, p2)``. Returns
    ``(all_finite, any_behind)``: whether every projected value is finite, and
    whether some joint has ``z <= 0`` (or NaN).
    """
    one = _cast_like(1.0, fx)
    finite = True
    behind = False
    for q in range(0, n_values, 3):
        x = dst[i, q]
        y = dst[i, q + 1]
        z = dst[i, q + 2]
        if coefficients is None:
            a, b = G.project_linear(x, y, z, fx, fy, cx, cy, one)
        else:
            k1, k2, k3, p1, p2 = coefficients
            a, b = G.project_distorted(x, y, z, fx, fy, cx, cy, k1, k2, k3, p1, p2, one)
        w = (q // 3) * 2
        o2[i, w] = a
        o2[i, w + 1] = b
        ha = a - a
        hb = b - b
        finite = finite & (ha == ha) & (hb == hb)
        behind = behind | (not z > 0)
    return finite, behind


@_jit
def _gpa_chunk(
    source, records, camera, out, root, poseda, kind, offset, keys, a, b, inv_b, k,
    m, inv_m, index, out2d, distortion, perspective, joints, block_size, distance,
    lo, hi, status,
):  # fmt: skip
    """Align poses ``[lo, hi)``; the whole per-pose path lives in this one loop.

    `out2d` (projection), `distortion` (its coefficients) and `perspective`
    (``(max_iterations, tolerance)`` of the depth solve) are ``None`` when not
    wanted; Numba then compiles their branches away (the default path measured
    as fast as before they existed).
    """
    n = source.shape[0]
    e_fixed = 3 * len(joints)
    e = e_fixed if e_fixed > 0 else 3 * source.shape[1]
    src = source.reshape((n, e))
    dst = out.reshape((n, e))
    if out2d is not None:
        o2 = out2d.reshape((n, 2 * (e // 3)))
    r0 = 3 * root
    mi = np.int64(m)
    last = max(mi - 1, 0)
    # The targets are computed a tile of `block_size` poses at a time (one
    # vectorised loop; a tile of 64 costs 4 ns per pose less than one of 16 in
    # per-tile overhead) into two halves of `buf`: the tile being aligned and
    # the next one. Pose i prefetches the record of pose i + `distance`, one
    # prefetch per pose: issuing a tile's prefetches in one burst measured 3x
    # slower (the outstanding-miss queues overflow and drop them).
    buf = np.empty(2 * block_size, dtype=np.int64)
    count = min(block_size, hi - lo)
    _fill_targets(
        buf, np.int64(0), lo, count, kind, offset, keys, a, b, inv_b, k, m, inv_m,
        index,
    )  # fmt: skip
    for t in range(min(count, distance)):
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
            if i + distance < hi:
                u = t + distance  # position of pose i + distance in `buf`
                slot = half + u if u < block_size else other + u - block_size
                ahead_row = min(max(buf[slot], 0), last)
                _prefetch_row(records, ahead_row)
                # nested, not joined with `and`: Numba compiles an `is None`
                # test of an argument away only when it stands alone
                if distortion is not None:  # noqa: SIM102
                    if out2d is not None and not poseda:
                        _prefetch_row(distortion, ahead_row)
            j = buf[half + t]
            if j < 0 or j >= mi:
                for q in range(e):
                    dst[i, q] = np.nan
                if out2d is not None:
                    for q in range(2 * (e // 3)):
                        o2[i, q] = np.nan
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
            if perspective is not None:  # noqa: SIM102 (see the prefetch above)
                # only poses with a usable weak depth are attempted (as numpy_)
                if z > 0 and z < np.inf:
                    depth, solved = _perspective_depth(
                        src, i, e, r0, np.float64(z), np.float64(u),
                        np.float64(v), np.float64(records[j, 3]),
                        np.float64(records[j, 4]), np.float64(records[j, 2]),
                        perspective[0], perspective[1],
                    )  # fmt: skip
                    if solved:
                        z = _cast_like(depth, z)
                    else:
                        _flag(status, _P_NO_DEPTH, i)
            px = z * u
            py = z * v
            rx = src[i, r0]
            ry = src[i, r0 + 1]
            rz = src[i, r0 + 2]
            # also whether every written depth is positive: a pose with a
            # joint at or behind the camera plane cannot be seen through it
            if e_fixed > 0:
                finite, front = pose_place(
                    src, dst, i, (rx, ry, rz), (px, py, z), joints
                )
            else:
                finite = True
                front = True
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
                    front = front & (oz > 0)
            behind = not front
            if out2d is not None:
                if poseda:  # the camera row that unprojected the pose
                    row = i
                    fx2, fy2 = camera[i, 0], camera[i, 1]
                    cx2, cy2 = camera[i, 2], camera[i, 3]
                else:
                    row = j
                    fx2, fy2 = records[j, 3], records[j, 4]
                    cx2, cy2 = records[j, 5], records[j, 6]
                if distortion is None:
                    coefficients = None
                else:
                    coefficients = (
                        distortion[row, 0], distortion[row, 1], distortion[row, 2],
                        distortion[row, 3], distortion[row, 4],
                    )  # fmt: skip
                finite_2d, _ = _project_pose(
                    dst, o2, i, e, fx2, fy2, cx2, cy2, coefficients
                )
                if finite and z > 0:
                    finite = finite_2d
            if not finite:
                _flag(status, _P_NONFINITE, i)
            elif not z > 0:
                _flag(status, _P_DEGENERATE, i)
            elif behind:
                _flag(status, _P_BEHIND, i)
            elif max(max(abs(px), abs(py)), z) > _precision_factor(z) * max(dx, dy):
                # too far out for the output dtype to hold the pose's shape
                _flag(status, _P_PRECISION, i)
        half = other


@_jit_parallel
def _gpa_parallel(
    source, records, camera, out, root, poseda, kind, offset, seed, step, a, b, inv_b,
    k, m, inv_m, index, out2d, distortion, perspective, joints, block_size, distance,
    status,
):  # fmt: skip
    keys = _key_tuple(seed, step)
    n = source.shape[0]
    nchunks = status.shape[0]
    per = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _gpa_chunk(
            source, records, camera, out, root, poseda, kind, offset, keys, a, b,
            inv_b, k, m, inv_m, index, out2d, distortion, perspective, joints,
            block_size, distance, c * per, min(n, c * per + per), status[c],
        )  # fmt: skip
    return _bad_count(status)


@_jit
def _gpa_serial(
    source, records, camera, out, root, poseda, kind, offset, seed, step, a, b, inv_b,
    k, m, inv_m, index, out2d, distortion, perspective, joints, block_size, distance,
    status,
):  # fmt: skip
    _gpa_chunk(
        source, records, camera, out, root, poseda, kind, offset,
        _key_tuple(seed, step), a, b, inv_b, k, m, inv_m, index, out2d, distortion,
        perspective, joints, block_size, distance, np.int64(0), source.shape[0],
        status[0],
    )  # fmt: skip
    return _bad_count(status)


# --- projection -------------------------------------------------------------------


@_jit
def _project_chunk(points, camera, per, out, lo, hi, status):
    """Project points ``[lo, hi)``; point ``p`` uses camera row ``p // per``.

    The inner loop runs over the points of one camera row and is free of
    branches (clamps are selects, the checks a reduction), so it vectorises;
    the rare bad points are located in a second pass.
    """
    one = _cast_like(1.0, points[0, 0])
    distorted = camera.shape[1] == 9
    p = lo
    while p < hi:
        g = p // per
        end = min(hi, (g + 1) * per)
        fx = camera[g, 0]
        fy = camera[g, 1]
        cx = camera[g, 2]
        cy = camera[g, 3]
        # a row is checked by the chunk that holds its first point
        if p == g * per:
            h = fx - fx
            for c in range(1, camera.shape[1]):
                h = h + (camera[g, c] - camera[g, c])
            if not (fx > 0 and fy > 0 and h == h):
                _flag(status, _Q_CAMERA, g)
        bad = False
        if distorted:
            k1 = camera[g, 4]
            k2 = camera[g, 5]
            k3 = camera[g, 6]
            p1 = camera[g, 7]
            p2 = camera[g, 8]
            for t in range(p, end):
                x = points[t, 0]
                y = points[t, 1]
                z = points[t, 2]
                a, b = G.project_distorted(
                    x, y, z, fx, fy, cx, cy, k1, k2, k3, p1, p2, one
                )
                out[t, 0] = a
                out[t, 1] = b
                h = (x - x) + (y - y) + (z - z) + (a - a) + (b - b)
                bad = bad | (h != h) | (not z > 0)
        else:
            for t in range(p, end):
                x = points[t, 0]
                y = points[t, 1]
                z = points[t, 2]
                a, b = G.project_linear(x, y, z, fx, fy, cx, cy, one)
                out[t, 0] = a
                out[t, 1] = b
                h = (x - x) + (y - y) + (z - z) + (a - a) + (b - b)
                bad = bad | (h != h) | (not z > 0)
        if bad:
            for t in range(p, end):
                z = points[t, 2]
                h = (points[t, 0] - points[t, 0]) + (points[t, 1] - points[t, 1])
                h = h + (z - z) + (out[t, 0] - out[t, 0]) + (out[t, 1] - out[t, 1])
                if h != h:
                    _flag(status, _Q_NONFINITE, t)
                elif not z > 0:
                    _flag(status, _Q_BEHIND, t)
        p = end


@_jit_parallel
def _project_parallel(points, camera, per, out, status):
    n = points.shape[0]
    nchunks = status.shape[0]
    size = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _project_chunk(
            points, camera, per, out, c * size, min(n, c * size + size), status[c]
        )
    return _bad_count(status)


@_jit
def _project_serial(points, camera, per, out, status):
    _project_chunk(points, camera, per, out, np.int64(0), points.shape[0], status[0])
    return _bad_count(status)


# --- clips ----------------------------------------------------------------------------


@_jit
def _clip_chunk(source, origin, anchor, out, lo, hi, status):
    """Clips ``[lo, hi)`` of :func:`gpa_clip`; the origin is read before any write."""
    frames = source.shape[1]
    joints = source.shape[2]
    for i in range(lo, hi):
        ox = origin[i, 0]
        oy = origin[i, 1]
        oz = origin[i, 2]
        ax = anchor[i, 0]
        ay = anchor[i, 1]
        az = anchor[i, 2]
        # NaN-propagating sum of x - x: zero unless a value is not finite
        h = ox - ox
        for t in range(frames):
            for q in range(joints):
                x = (source[i, t, q, 0] - ox) + ax
                y = (source[i, t, q, 1] - oy) + ay
                z = (source[i, t, q, 2] - oz) + az
                out[i, t, q, 0] = x
                out[i, t, q, 1] = y
                out[i, t, q, 2] = z
                h = h + ((x - x) + (y - y) + (z - z))
        if h != h:
            _flag(status, _P_NONFINITE, i)


@_jit_parallel
def _clip_parallel(source, origin, anchor, out, status):
    n = source.shape[0]
    nchunks = status.shape[0]
    size = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _clip_chunk(source, origin, anchor, out, c * size, min(n, c * size + size),
                    status[c])  # fmt: skip
    return _bad_count(status)


@_jit
def _clip_serial(source, origin, anchor, out, status):
    _clip_chunk(source, origin, anchor, out, np.int64(0), source.shape[0], status[0])
    return _bad_count(status)


# --- metrics: per-pose similarity fit ---------------------------------------------
#
# The rotation that best maps the centred prediction l onto the centred target r
# is found with Horn's closed form (Horn, "Closed-form solution of absolute
# orientation using unit quaternions", JOSA A 4(4), 1987): it is the unit
# quaternion that is the eigenvector of the largest eigenvalue of a symmetric
# traceless 4x4 matrix N built from S = sum_k l_k r_k^T, and that eigenvalue is
# max over rotations of sum_k r_k . (R l_k). Searching quaternions (rotations
# only) removes reflections by construction, which the SVD route does with the
# sign of det. The largest eigenvalue is the largest root of N's characteristic
# polynomial lambda^4 + c2 lambda^2 + c1 lambda + c0, with c2 = -2 |S|^2,
# c1 = -8 det S and c0 = det N; Newton's method from the upper bound
# (|l|^2 + |r|^2) / 2 converges to it monotonically (the quaternion
# characteristic polynomial method of Theobald, Acta Cryst. A61, 2005). The
# eigenvector is the best-conditioned column of adj(N - lambda I), whose
# diagonal is proportional to the squared quaternion entries. When the largest
# eigenvalue is (nearly) repeated those cofactors vanish and the optimal
# rotation is (nearly) not unique; the pose then falls back to cyclic Jacobi
# sweeps on N, which always return an eigenvector of the largest eigenvalue.

#: Newton iterations on the characteristic polynomial (typically 5 to 12).
_QCP_ITERATIONS = 60
#: Relative size of the largest diagonal cofactor, against the cube of the
#: bound, below which the eigenvector is computed by Jacobi sweeps instead.
#: Above it the cofactor column's relative error is below about 1e-10.
_QCP_MIN_COFACTOR = 1e-6
#: Jacobi sweeps; six reach machine precision for any 4x4 symmetric matrix.
_JACOBI_SWEEPS = 12


@njit(**_INLINE)
def _det3(a, b, c, d, e, f, g, h, i):
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


@njit(**_INLINE)
def _others(j):
    """The three indices of 0..3 other than `j`, in order."""
    return (1 if j == 0 else 0), (2 if j <= 1 else 1), (3 if j <= 2 else 2)


@njit(**_INLINE)
def _cofactor(a, row, col):
    r0, r1, r2 = _others(row)
    c0, c1, c2 = _others(col)
    m = _det3(
        a[r0, c0], a[r0, c1], a[r0, c2],
        a[r1, c0], a[r1, c1], a[r1, c2],
        a[r2, c0], a[r2, c1], a[r2, c2],
    )  # fmt: skip
    return m if (row + col) % 2 == 0 else -m


@_jit
def _jacobi_top_eigenvector(a, v):
    """Eigenvector of the largest eigenvalue of symmetric 4x4 `a` (destroyed).

    Cyclic Jacobi rotations (Golub and Van Loan, Matrix Computations, 8.5),
    accumulated in `v`. Returns the column index of `v` to use.
    """
    for r in range(4):
        for c in range(4):
            v[r, c] = 1.0 if r == c else 0.0
    for _ in range(_JACOBI_SWEEPS):
        off = 0.0
        total = 0.0
        for p in range(4):
            total += a[p, p] * a[p, p]
            for q in range(p + 1, 4):
                off += a[p, q] * a[p, q]
        if off <= 1e-32 * total:
            break
        for p in range(3):
            for q in range(p + 1, 4):
                apq = a[p, q]
                if apq == 0.0:
                    continue
                theta = (a[q, q] - a[p, p]) / (2.0 * apq)
                if abs(theta) > 1e150:
                    t = 0.5 / theta
                else:
                    t = 1.0 / (abs(theta) + np.sqrt(theta * theta + 1.0))
                    if theta < 0.0:
                        t = -t
                c = 1.0 / np.sqrt(t * t + 1.0)
                s = t * c
                for r in range(4):
                    if r != p and r != q:
                        arp = a[r, p]
                        arq = a[r, q]
                        a[r, p] = c * arp - s * arq
                        a[p, r] = a[r, p]
                        a[r, q] = s * arp + c * arq
                        a[q, r] = a[r, q]
                a[p, p] -= t * apq
                a[q, q] += t * apq
                a[p, q] = 0.0
                a[q, p] = 0.0
                for r in range(4):
                    vrp = v[r, p]
                    vrq = v[r, q]
                    v[r, p] = c * vrp - s * vrq
                    v[r, q] = s * vrp + c * vrq
    best = 0
    for p in range(1, 4):
        if a[p, p] > a[best, best]:
            best = p
    return best


@_jit
def _horn_quaternion(s, bound, a, v):
    """Unit quaternion of the rotation maximising ``sum_k r_k . R l_k``.

    Parameters
    ----------
    s : (3, 3) float64 array, ``S[a, b] = sum_k l_k[a] r_k[b]``
    bound : float, ``(|l|^2 + |r|^2) / 2`` (an upper bound of the eigenvalue)
    a, v : (4, 4) float64 scratch arrays

    Returns ``(q0, q1, q2, q3)``, not necessarily normalised.
    """
    sxx, sxy, sxz = s[0, 0], s[0, 1], s[0, 2]
    syx, syy, syz = s[1, 0], s[1, 1], s[1, 2]
    szx, szy, szz = s[2, 0], s[2, 1], s[2, 2]
    a[0, 0] = sxx + syy + szz
    a[0, 1] = a[1, 0] = syz - szy
    a[0, 2] = a[2, 0] = szx - sxz
    a[0, 3] = a[3, 0] = sxy - syx
    a[1, 1] = sxx - syy - szz
    a[1, 2] = a[2, 1] = sxy + syx
    a[1, 3] = a[3, 1] = szx + sxz
    a[2, 2] = -sxx + syy - szz
    a[2, 3] = a[3, 2] = syz + szy
    a[3, 3] = -sxx - syy + szz
    squares = 0.0
    for r in range(3):
        for c in range(3):
            squares += s[r, c] * s[r, c]
    c2 = -2.0 * squares
    c1 = -8.0 * _det3(sxx, sxy, sxz, syx, syy, syz, szx, szy, szz)
    c0 = 0.0
    for col in range(4):
        c0 += a[0, col] * _cofactor(a, 0, col)
    lam = bound
    for _ in range(_QCP_ITERATIONS):
        lam2 = lam * lam
        f = (lam2 + c2) * lam2 + c1 * lam + c0
        df = (4.0 * lam2 + 2.0 * c2) * lam + c1
        if not df > 0.0:  # at (or, by rounding, below) a repeated root
            break
        step = f / df
        lam -= step
        if abs(step) <= 1e-15 * bound:
            break
    for r in range(4):
        a[r, r] -= lam
    best = 0
    best_value = abs(_cofactor(a, 0, 0))
    for j in range(1, 4):
        value = abs(_cofactor(a, j, j))
        if value > best_value:
            best = j
            best_value = value
    if best_value > _QCP_MIN_COFACTOR * bound * bound * bound:
        return (
            _cofactor(a, best, 0),
            _cofactor(a, best, 1),
            _cofactor(a, best, 2),
            _cofactor(a, best, 3),
        )
    for r in range(4):
        a[r, r] += lam
    col = _jacobi_top_eigenvector(a, v)
    return v[0, col], v[1, col], v[2, col], v[3, col]


@_jit
def _fit_pose(pred, tgt, i, sel, root, work, s, a, v):
    """Similarity fit of pose `i`: ``tgt ~ scale * R (pred - mu_p) + mu_t``.

    Writes ``scale, R (row-major 9), mu_t (3), mu_p (3)`` to ``work[:16]`` and
    returns 0, or 1 (non-finite coordinate) or 2 (the selected predicted
    joints coincide: no scale). Coordinates are taken relative to joint
    `root` first when ``root >= 0`` (which changes nothing but the checks).
    """
    n_sel = sel.shape[0]
    rp0 = rp1 = rp2 = rt0 = rt1 = rt2 = 0.0
    if root >= 0:
        rp0, rp1, rp2 = pred[i, root, 0], pred[i, root, 1], pred[i, root, 2]
        rt0, rt1, rt2 = tgt[i, root, 0], tgt[i, root, 1], tgt[i, root, 2]
    mp0 = mp1 = mp2 = mt0 = mt1 = mt2 = 0.0
    check = 0.0
    for k in range(n_sel):
        jk = sel[k]
        p0 = np.float64(pred[i, jk, 0]) - rp0
        p1 = np.float64(pred[i, jk, 1]) - rp1
        p2 = np.float64(pred[i, jk, 2]) - rp2
        t0 = np.float64(tgt[i, jk, 0]) - rt0
        t1 = np.float64(tgt[i, jk, 1]) - rt1
        t2 = np.float64(tgt[i, jk, 2]) - rt2
        check += (p0 - p0) + (p1 - p1) + (p2 - p2) + (t0 - t0) + (t1 - t1) + (t2 - t2)
        mp0 += p0
        mp1 += p1
        mp2 += p2
        mt0 += t0
        mt1 += t1
        mt2 += t2
    if check != check:
        return 1
    mp0 /= n_sel
    mp1 /= n_sel
    mp2 /= n_sel
    mt0 /= n_sel
    mt1 /= n_sel
    mt2 /= n_sel
    for r in range(3):
        for c in range(3):
            s[r, c] = 0.0
    gp = 0.0
    gt = 0.0
    for k in range(n_sel):
        jk = sel[k]
        l0 = (np.float64(pred[i, jk, 0]) - rp0) - mp0
        l1 = (np.float64(pred[i, jk, 1]) - rp1) - mp1
        l2 = (np.float64(pred[i, jk, 2]) - rp2) - mp2
        r0 = (np.float64(tgt[i, jk, 0]) - rt0) - mt0
        r1 = (np.float64(tgt[i, jk, 1]) - rt1) - mt1
        r2 = (np.float64(tgt[i, jk, 2]) - rt2) - mt2
        s[0, 0] += l0 * r0
        s[0, 1] += l0 * r1
        s[0, 2] += l0 * r2
        s[1, 0] += l1 * r0
        s[1, 1] += l1 * r1
        s[1, 2] += l1 * r2
        s[2, 0] += l2 * r0
        s[2, 1] += l2 * r1
        s[2, 2] += l2 * r2
        gp += l0 * l0 + l1 * l1 + l2 * l2
        gt += r0 * r0 + r1 * r1 + r2 * r2
    if not gp > 0.0:
        return 2
    q0, q1, q2, q3 = _horn_quaternion(s, np.sqrt(gp * gt), a, v)
    norm = q0 * q0 + q1 * q1 + q2 * q2 + q3 * q3
    w = 2.0 / norm
    # rotation matrix of q / |q| (Horn 1987, eq. 4)
    r00 = 1.0 - w * (q2 * q2 + q3 * q3)
    r01 = w * (q1 * q2 - q0 * q3)
    r02 = w * (q1 * q3 + q0 * q2)
    r10 = w * (q1 * q2 + q0 * q3)
    r11 = 1.0 - w * (q1 * q1 + q3 * q3)
    r12 = w * (q2 * q3 - q0 * q1)
    r20 = w * (q1 * q3 - q0 * q2)
    r21 = w * (q2 * q3 + q0 * q1)
    r22 = 1.0 - w * (q1 * q1 + q2 * q2)
    # the attained objective sum_k r_k . R l_k = sum_ab R[a, b] S[b, a]
    lam = (
        r00 * s[0, 0] + r01 * s[1, 0] + r02 * s[2, 0]
        + r10 * s[0, 1] + r11 * s[1, 1] + r12 * s[2, 1]
        + r20 * s[0, 2] + r21 * s[1, 2] + r22 * s[2, 2]
    )  # fmt: skip
    work[0] = lam / gp
    work[1] = r00
    work[2] = r01
    work[3] = r02
    work[4] = r10
    work[5] = r11
    work[6] = r12
    work[7] = r20
    work[8] = r21
    work[9] = r22
    work[10] = mt0
    work[11] = mt1
    work[12] = mt2
    work[13] = mp0
    work[14] = mp1
    work[15] = mp2
    return 0


@_jit
def _errors_chunk(pred, tgt, sel, root, align, errors, lo, hi, status):
    n_sel = sel.shape[0]
    work = np.empty(16)
    s = np.empty((3, 3))
    a = np.empty((4, 4))
    v = np.empty((4, 4))
    for i in range(lo, hi):
        rp0 = rp1 = rp2 = rt0 = rt1 = rt2 = 0.0
        if root >= 0:
            rp0, rp1, rp2 = pred[i, root, 0], pred[i, root, 1], pred[i, root, 2]
            rt0, rt1, rt2 = tgt[i, root, 0], tgt[i, root, 1], tgt[i, root, 2]
        if align == _ALIGN_PROCRUSTES:
            code = _fit_pose(pred, tgt, i, sel, root, work, s, a, v)
            if code != 0:
                _flag(status, _P_NONFINITE if code == 1 else _P_DEGENERATE, i)
                for k in range(n_sel):
                    errors[i, k] = np.nan
                continue
            scale = work[0]
            for k in range(n_sel):
                jk = sel[k]
                l0 = (np.float64(pred[i, jk, 0]) - rp0) - work[13]
                l1 = (np.float64(pred[i, jk, 1]) - rp1) - work[14]
                l2 = (np.float64(pred[i, jk, 2]) - rp2) - work[15]
                d0 = scale * (work[1] * l0 + work[2] * l1 + work[3] * l2) - (
                    (np.float64(tgt[i, jk, 0]) - rt0) - work[10]
                )
                d1 = scale * (work[4] * l0 + work[5] * l1 + work[6] * l2) - (
                    (np.float64(tgt[i, jk, 1]) - rt1) - work[11]
                )
                d2 = scale * (work[7] * l0 + work[8] * l1 + work[9] * l2) - (
                    (np.float64(tgt[i, jk, 2]) - rt2) - work[12]
                )
                errors[i, k] = np.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
            continue
        check = 0.0
        tp = 0.0
        pp = 0.0
        for k in range(n_sel):
            jk = sel[k]
            p0 = np.float64(pred[i, jk, 0]) - rp0
            p1 = np.float64(pred[i, jk, 1]) - rp1
            p2 = np.float64(pred[i, jk, 2]) - rp2
            t0 = np.float64(tgt[i, jk, 0]) - rt0
            t1 = np.float64(tgt[i, jk, 1]) - rt1
            t2 = np.float64(tgt[i, jk, 2]) - rt2
            check += (p0 - p0) + (p1 - p1) + (p2 - p2) + (t0 - t0) + (t1 - t1)
            check += t2 - t2
            tp += t0 * p0 + t1 * p1 + t2 * p2
            pp += p0 * p0 + p1 * p1 + p2 * p2
        if check != check:
            _flag(status, _P_NONFINITE, i)
            for k in range(n_sel):
                errors[i, k] = np.nan
            continue
        scale = 1.0
        if align == _ALIGN_SCALE:
            if not pp > 0.0:
                _flag(status, _P_DEGENERATE, i)
                for k in range(n_sel):
                    errors[i, k] = np.nan
                continue
            scale = tp / pp
        for k in range(n_sel):
            jk = sel[k]
            d0 = scale * (np.float64(pred[i, jk, 0]) - rp0) - (
                np.float64(tgt[i, jk, 0]) - rt0
            )
            d1 = scale * (np.float64(pred[i, jk, 1]) - rp1) - (
                np.float64(tgt[i, jk, 1]) - rt1
            )
            d2 = scale * (np.float64(pred[i, jk, 2]) - rp2) - (
                np.float64(tgt[i, jk, 2]) - rt2
            )
            errors[i, k] = np.sqrt(d0 * d0 + d1 * d1 + d2 * d2)


@_jit_parallel
def _errors_parallel(pred, tgt, sel, root, align, errors, status):
    n = pred.shape[0]
    nchunks = status.shape[0]
    per = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _errors_chunk(
            pred, tgt, sel, root, align, errors, c * per, min(n, c * per + per),
            status[c],
        )  # fmt: skip
    return _bad_count(status)


@_jit
def _errors_serial(pred, tgt, sel, root, align, errors, status):
    _errors_chunk(
        pred, tgt, sel, root, align, errors, np.int64(0), pred.shape[0], status[0]
    )
    return _bad_count(status)


@_jit
def _fit_chunk(pred, tgt, sel, scale, rotation, translation, lo, hi, status):
    work = np.empty(16)
    s = np.empty((3, 3))
    a = np.empty((4, 4))
    v = np.empty((4, 4))
    for i in range(lo, hi):
        code = _fit_pose(pred, tgt, i, sel, -1, work, s, a, v)
        if code != 0:
            _flag(status, _P_NONFINITE if code == 1 else _P_DEGENERATE, i)
            scale[i] = np.nan
            for r in range(3):
                translation[i, r] = np.nan
                for c in range(3):
                    rotation[i, r, c] = np.nan
            continue
        scale[i] = work[0]
        for r in range(3):
            for c in range(3):
                rotation[i, r, c] = work[1 + 3 * r + c]
        # t = mu_t - scale * R mu_p
        for r in range(3):
            rmu = (
                work[1 + 3 * r] * work[13]
                + work[2 + 3 * r] * work[14]
                + work[3 + 3 * r] * work[15]
            )
            translation[i, r] = work[10 + r] - work[0] * rmu


@_jit_parallel
def _fit_parallel(pred, tgt, sel, scale, rotation, translation, status):
    n = pred.shape[0]
    nchunks = status.shape[0]
    per = (n + nchunks - 1) // nchunks
    for c in prange(nchunks):
        _fit_chunk(
            pred, tgt, sel, scale, rotation, translation, c * per,
            min(n, c * per + per), status[c],
        )  # fmt: skip
    return _bad_count(status)


@_jit
def _fit_serial(pred, tgt, sel, scale, rotation, translation, status):
    _fit_chunk(
        pred, tgt, sel, scale, rotation, translation, np.int64(0), pred.shape[0],
        status[0],
    )  # fmt: skip
    return _bad_count(status)


# --- statistics --------------------------------------------------------------------
#
# ``pose_statistics`` makes one pass over the poses instead of the reference's
# five (four reductions and a gather over strided views); on finite poses its
# results are bit-identical (min, max, one subtraction per axis, one addition,
# one halving, in the same order), and a pose with a non-finite coordinate gets
# a NaN scale (the reference gets NaN or inf), which the caller rejects either
# way. ``wasserstein_sorted`` replaces the reference's concatenate, merge-sort,
# cumulative sum and gathers by one sequential merge of the two sorted samples;
# it sums the same terms in a different order, so it agrees to rounding (a few
# ulps of the sum), not bit for bit.


@njit(**_KW)
def _pose_row(poses, root, out, i):
    j = poses.shape[1]
    xmin = poses[i, 0, 0]
    xmax = xmin
    ymin = poses[i, 0, 1]
    ymax = ymin
    # x - x is 0 for finite x and NaN otherwise: a branch-free finiteness
    # check that lets the min/max loop stay select instructions
    bad = (xmin - xmin) + (ymin - ymin)
    for k in range(1, j):
        x = poses[i, k, 0]
        y = poses[i, k, 1]
        xmin = min(xmin, x)
        xmax = max(xmax, x)
        ymin = min(ymin, y)
        ymax = max(ymax, y)
        bad += (x - x) + (y - y)
    out[i, 0] = ((xmax - xmin) + (ymax - ymin)) / 2 + bad
    out[i, 1] = poses[i, root, 0]
    out[i, 2] = poses[i, root, 1]


# twins (see the note at ``_jit_parallel``)
@njit(parallel=True, **_KW)
def _pose_statistics_parallel(poses, root, out):
    for i in prange(poses.shape[0]):
        _pose_row(poses, root, out, i)


@njit(**_KW)
def _pose_statistics_serial(poses, root, out):
    for i in range(poses.shape[0]):
        _pose_row(poses, root, out, i)


@njit(**_KW)
def _merge_w1(a, b):
    n, m = a.shape[0], b.shape[0]
    i = 0
    k = 0
    prev = min(a[0], b[0])
    total = 0.0
    while i < n or k < m:
        # the next value of the merged order; the CDFs on [prev, value) have
        # counted i values of `a` and k of `b`
        if k >= m or (i < n and a[i] <= b[k]):
            value = a[i]
            step_a = True
        else:
            value = b[k]
            step_a = False
        total += abs(i * m - k * n) * (value - prev)
        prev = value
        if step_a:
            i += 1
        else:
            k += 1
    return total / (n * m)


# --- host side --------------------------------------------------------------------

_serial_only = False  # set in a child forked from a process with a live OpenMP pool
_clock = time.perf_counter


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


def use_parallel(n):
    """Whether to launch the parallel twin of a kernel for `n` poses.

    False for small inputs (waking the workers costs more than the work), in
    a child forked after its parent started a GNU OpenMP pool, which the child
    cannot use, and, below ``PARALLEL_WATCH_POSES``, while a recent parallel
    launch of that size stalled (see :class:`_Watch`).
    """
    if n < _config.PARALLEL_MIN_POSES or _serial_only or _threads() < 2:
        return False
    return n >= _config.PARALLEL_WATCH_POSES or _watch.allows()


class _Watch:
    """Falls back to serial launches while parallel ones stall.

    On a machine whose cores are busy with other work (a training loop's data
    loader workers, other jobs), a parallel region waits until the operating
    system schedules every worker thread: measured on the 2-core development
    machine at a load average of 8, a parallel GPA launch of 1024 to 65,536
    poses took 1 to 20 ms, against 0.03 to 6.6 ms serially. Below
    ``PARALLEL_WATCH_POSES`` each parallel GPA launch is timed. One that took
    more than ``STALL`` seconds and more than four times what the serial twin
    would have (at the serial time per pose measured in this process) sends the
    next ``BACKOFF`` launches of that range to the serial twin, after which
    parallel is tried again. ``STALL`` keeps an idle machine's rare preemption
    from counting: idle, 1024-pose launches took 21 us (median), 73 us at the
    99.9th percentile and over 0.5 ms once in 20,000. The first parallel
    launch of a process (8 ms: it starts the thread pool) is not judged. Both
    twins compute identical results, so this changes only the speed.
    """

    BACKOFF = 256
    STALL = 5e-4
    #: Serial nanoseconds per pose assumed before any serial launch was timed.
    DEFAULT_NS = 50.0

    def __init__(self):
        self.backoff = 0
        self.serial_ns = self.DEFAULT_NS
        self.pool_started = False

    def allows(self):
        if self.backoff > 0:
            self.backoff -= 1
            return False
        return True

    def record(self, parallel, n, seconds):
        """Learn from a GPA launch of `n` poses that took `seconds`."""
        if n < 256 or n >= _config.PARALLEL_WATCH_POSES:
            return
        if not parallel:  # a running mean of the serial cost per pose
            self.serial_ns += 0.125 * (seconds * 1e9 / n - self.serial_ns)
        elif not self.pool_started:
            self.pool_started = True
        elif seconds > max(self.STALL, 4e-9 * n * self.serial_ns):
            self.backoff = self.BACKOFF


_watch = _Watch()


def _threads():
    """Numba's thread count (a function, so that tests can pretend to more)."""
    return numba.get_num_threads()


def _chunks(n):
    threads = _threads()
    return int(max(1, min(4 * threads, n // _config.MIN_POSES_PER_CHUNK)))


def _statuses(nchunks):
    return np.zeros((nchunks, _NCAT, 2), dtype=np.int64)


def _merged(statuses, wanted):
    """Per-chunk ``[count, first]`` counters merged into one status, or None.

    None unless `wanted` (something was counted and the caller asked for the
    status).
    """
    if not wanted:
        return None
    if statuses.shape[0] == 1:
        return statuses[0]
    status = S.new_status()
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
    parallel = use_parallel(spec.count)
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


def _prepare(target, camera, root, with_camera, status):
    m = target.shape[0]
    records = np.empty((m, RECORD_WIDTH), dtype=target.dtype)
    if m == 0:
        return records, None
    target = np.ascontiguousarray(target)
    parallel = use_parallel(m)
    statuses = _statuses(_chunks(m) if parallel else 1)
    run = _prepare_parallel if parallel else _prepare_serial
    two = target.dtype.type(2)
    joints = _joints(target.shape[1])
    bad = run(target, camera, root, records, two, with_camera, joints, statuses)
    return records, _merged(statuses, bad and status)


def prepare_records(target, camera, root, *, status=True):
    """Compact per-target records (see :func:`numpy_.prepare_records`)."""
    return _prepare(target, camera, root, True, status)


def prepare_poseda_records(target, camera, root, *, status=True):
    """Records for ``mode="poseda"`` (see :func:`numpy_.prepare_poseda_records`)."""
    return _prepare(target, camera, root, False, status)


def _run_gpa(source, records, camera, out, root, poseda, spec, out2d, distortion,
             perspective, status):  # fmt: skip
    n = source.shape[0]
    if n == 0:
        return None
    if not (poseda or source.flags.c_contiguous) and n > _config.STAGE_POSES:
        # a strided or broadcast source is read a block at a time, so that a
        # 0-stride view of one pose never becomes an N-pose copy (poseda reads
        # camera row 0 of the whole call, so it is copied whole instead)
        return _run_gpa_staged(
            source, records, out, root, spec, out2d, distortion, perspective, status
        )
    # The kernels address poses through flat views, which need C order; other
    # layouts are copied in (source) or staged and copied out (outputs).
    if not source.flags.c_contiguous:
        source = np.ascontiguousarray(source)
    target = out if out.flags.c_contiguous else np.empty_like(source)
    target_2d = out2d
    if out2d is not None and not out2d.flags.c_contiguous:
        target_2d = np.empty(out2d.shape, dtype=out2d.dtype)
    parallel = use_parallel(n)
    statuses = _statuses(_chunks(n) if parallel else 1)
    run = _gpa_parallel if parallel else _gpa_serial
    joints = _joints(source.shape[1])
    solve = None
    if perspective:
        solve = (G.PERSPECTIVE_MAX_ITERATIONS, G.PERSPECTIVE_TOLERANCE)
    start = _clock()
    bad = run(
        source, records, camera, target, root, poseda, *_spec_args(spec), target_2d,
        distortion, solve, joints, _config.PAIRING_BLOCK,
        min(_config.PREFETCH_DISTANCE, _config.PAIRING_BLOCK), statuses,
    )  # fmt: skip
    if solve is None and out2d is None:  # the plain path is what the watch knows
        _watch.record(parallel, n, _clock() - start)
    if target is not out:
        out[...] = target
    if target_2d is not out2d:
        out2d[...] = target_2d
    return _merged(statuses, bad and status)


def _run_gpa_staged(source, records, out, root, spec, out2d, distortion, perspective,
                    status):  # fmt: skip
    """:func:`_run_gpa` over blocks of ``STAGE_POSES`` poses of a strided source.

    Each block is copied into one reused C-order buffer and aligned as the
    chunk ``[lo, hi)`` of the call's pairing, so the result is the whole call's
    bit for bit; the blocks' statuses are merged with their offsets.
    """
    n, block = source.shape[0], _config.STAGE_POSES
    buffer = np.empty((block, *source.shape[1:]), dtype=source.dtype)
    merged = None
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        staged = buffer[: hi - lo]
        staged[...] = source[lo:hi]
        index = None if spec.index is None else spec.index[lo:hi]
        part = spec.chunk(spec.offset + lo, hi - lo, index)
        found = _run_gpa(
            staged, records, records, out[lo:hi], root, False, part,
            None if out2d is None else out2d[lo:hi], distortion, perspective, status,
        )  # fmt: skip
        merged = _merge_offset(merged, found, lo)
    return merged


def _merge_offset(status, found, offset):
    """`status` with a block's `found` (first indices local to it) merged in."""
    if found is None:
        return status
    found = found.copy()
    found[:, 1] += offset
    if status is None:
        return found
    fresh = (status[:, 0] == 0) & (found[:, 0] > 0)
    status[fresh, 1] = found[fresh, 1]
    status[:, 0] += found[:, 0]
    return status


def gpa_records(source, records, out, root, spec, out2d=None, distortion=None,
                perspective=False, *, status=True):  # fmt: skip
    """GPA against prepared records (see :func:`numpy_.gpa_records`)."""
    # the camera argument is unused in paired mode; any 2D array of the dtype
    # keeps the compiled signature stable
    if out2d is None:
        distortion = None
    return _run_gpa(
        source, records, records, out, root, False, spec, out2d, distortion,
        perspective, status,
    )  # fmt: skip


def gpa_poseda(source, records, camera, out, root, spec, out2d=None, *, status=True):
    """The published arithmetic (see :func:`numpy_.gpa_poseda`)."""
    distortion = None
    if out2d is not None and camera.shape[1] == 9:
        distortion = camera[:, 4:9]
    return _run_gpa(
        source, records, camera, out, root, True, spec, out2d, distortion, False,
        status,
    )  # fmt: skip


def gpa_clip(source, origin, anchor, out, *, status=True):
    """Apply each clip's reference-frame translation (see :func:`numpy_.gpa_clip`)."""
    n = source.shape[0]
    if n == 0:
        return None
    # a clip of T frames is T poses' work
    work = n * source.shape[1]
    parallel = use_parallel(work)
    statuses = _statuses(min(n, _chunks(work)) if parallel else 1)
    run = _clip_parallel if parallel else _clip_serial
    bad = run(source, origin, anchor, out, statuses)
    return _merged(statuses, bad and status)


def project_points(points, camera, per, out, *, status=True):
    """Project camera-space points (see :func:`numpy_.project_points`)."""
    n = points.shape[0]
    if n == 0:
        return None
    points = np.ascontiguousarray(points)
    camera = np.ascontiguousarray(camera)
    target = out if out.flags.c_contiguous else np.empty(out.shape, out.dtype)
    parallel = use_parallel(n // 16)  # a point is about a sixteenth of a pose
    statuses = _statuses(_chunks(n // 16) if parallel else 1)
    run = _project_parallel if parallel else _project_serial
    bad = run(points, camera, per, target, statuses)
    if target is not out:
        out[...] = target
    return _merged(statuses, bad and status)


def joint_errors(predicted, target, joints, root, align, *, status=True):
    """Per-joint errors after alignment (see :func:`numpy_.joint_errors`)."""
    n = predicted.shape[0]
    errors = np.empty((n, joints.shape[0]))
    if n == 0:
        return errors, None
    predicted = np.ascontiguousarray(predicted)
    target = np.ascontiguousarray(target)
    joints = np.ascontiguousarray(joints, dtype=np.int64)
    parallel = use_parallel(n)
    statuses = _statuses(_chunks(n) if parallel else 1)
    run = _errors_parallel if parallel else _errors_serial
    bad = run(predicted, target, joints, root, align, errors, statuses)
    return errors, _merged(statuses, bad and status)


def procrustes_fit(predicted, target, joints, *, status=True):
    """Per-pose similarity fit (see :func:`numpy_.procrustes_fit`)."""
    n = predicted.shape[0]
    scale = np.empty(n)
    rotation = np.empty((n, 3, 3))
    translation = np.empty((n, 3))
    if n == 0:
        return scale, rotation, translation, None
    predicted = np.ascontiguousarray(predicted)
    target = np.ascontiguousarray(target)
    joints = np.ascontiguousarray(joints, dtype=np.int64)
    parallel = use_parallel(n)
    statuses = _statuses(_chunks(n) if parallel else 1)
    run = _fit_parallel if parallel else _fit_serial
    bad = run(predicted, target, joints, scale, rotation, translation, statuses)
    return scale, rotation, translation, _merged(statuses, bad and status)


def pose_statistics(poses, root):
    """``(N, 3)`` rows ``[scale, root_x, root_y]`` (see ``numpy_stats``)."""
    n = poses.shape[0]
    out = np.empty((n, 3), dtype=poses.dtype)
    if n:
        kernel = (
            _pose_statistics_parallel if use_parallel(n) else _pose_statistics_serial
        )
        kernel(poses, root, out)
    return out


def wasserstein_sorted(a, b):
    """W1 of two sorted samples; see :func:`numpy_stats.wasserstein_sorted`."""
    return float(_merge_w1(a, b))
