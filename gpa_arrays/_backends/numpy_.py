"""The NumPy reference backend: readable, vectorised, and the test oracle.

Every other backend implements the same functions, with the same names,
argument order and calling convention (declared in :mod:`._interface`: each
function that checks its input takes ``status=``, and :func:`read_status` reads
statuses), and is tested against this module. The arithmetic is written in
the exact order of the published formulation (see ``docs/concepts``) so that the
compiled backends, which follow the same order without fast-math or fused
multiply-add contraction, agree with it bit for bit on finite data.

Record layout
-------------
A prepared target is one row of a ``(M, RECORD_WIDTH)`` array of the output dtype:

====  ==========================================================================
slot  value
====  ==========================================================================
0     ``u = (t_root_x - cx) / fx``: the target root unprojected by its camera
1     ``v = (t_root_y - cy) / fy``
2     ``d = 2 * s`` with ``s = (w + h) / 2`` the target's 2D box scale
3, 4  ``fx, fy`` of the target's camera
5, 6  ``cx, cy`` of the target's camera
7     unused (keeps a float32 record at 32 bytes, a float64 record at one line)
====  ==========================================================================

The ``mode="poseda"`` path pairs target boxes with the *source* index's camera,
so its records hold the raw root instead: slots 0, 1 are ``t_root_x, t_root_y``
and slot 2 is ``d``.

Targets with 9-value cameras also get a *wide* record, ``(M, 2 *
RECORD_WIDTH)``, used only by ``return_2d=True``: slots 0-7 are the record
above, slots 8-12 ``k1, k2, k3, p1, p2``, the rest zero. The kernels receive it
as two views, ``wide[:, :8]`` (the records) and ``wide[:, 8:]`` (the
coefficients), so one gathered row holds both; see :func:`prepare_wide_records`
for why.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import _geometry as G
from .. import _pairing as P
from .._status import (
    POINT_BEHIND,
    POINT_CAMERA,
    POINT_NONFINITE,
    POSE_BEHIND,
    POSE_DEGENERATE,
    POSE_INDEX,
    POSE_NO_DEPTH,
    POSE_NONFINITE,
    POSE_PRECISION,
    TARGET_CAMERA,
    TARGET_DEGENERATE,
    TARGET_DISTORTION,
    TARGET_NONFINITE,
    new_status,
    precision_factor,
)
from ._interface import NAMES
from .numpy_stats import pose_statistics as pose_statistics
from .numpy_stats import wasserstein_sorted as wasserstein_sorted

__all__ = list(NAMES)

#: ``align`` codes of :func:`joint_errors`.
ALIGN_NONE = 0
ALIGN_SCALE = 1
ALIGN_PROCRUSTES = 2

RECORD_WIDTH = 8


def _quiet(function):
    """Run `function` without floating-point warnings.

    Bad values are reported through the status array instead, once, with the
    argument's name.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            return function(*args, **kwargs)

    return wrapper


def _first_and_count(mask, status, category):
    count = int(np.count_nonzero(mask))
    if count:
        status[category, 0] = count
        status[category, 1] = int(np.argmax(mask))


def _found(status, enabled):
    """`status` when counting was asked for and something was flagged, else None."""
    return status if enabled and status.any() else None


def read_status(*pending, wait=False):
    """Host statuses of a call's statuses: on the host, the statuses themselves.

    The host half of the device backend's ``read_status``, so that callers read
    statuses the same way on every backend. `wait` has nothing to wait for.

    Returns
    -------
    list of ((N_CATEGORIES, 2) int64 ndarray or None)
        One per argument.
    """
    return list(pending)


def pair_indices(spec):
    """Evaluate a pairing for every source pose.

    Parameters
    ----------
    spec : PairingSpec

    Returns
    -------
    (spec.count,) int64 ndarray
        Target index of each of the call's source poses (global indices
        ``spec.offset ..``). For an array pairing, entries outside ``[0, m)``
        are returned as they are; the caller reports them.
    """
    first, last = spec.offset, spec.offset + spec.count
    if spec.kind == P.KIND_ARRAY:
        return spec.index.astype(np.int64, copy=True)
    if spec.kind == P.KIND_IDENTITY:
        return np.arange(first, last, dtype=np.int64)
    keys = np.empty(P.ROUNDS + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        P.round_keys(np.uint64(spec.seed), np.uint64(spec.step), keys)
    i = np.arange(first, last, dtype=np.uint64)
    if spec.kind == P.KIND_RANDOM:
        return P.random_index(i, keys, np.uint64(spec.m)).astype(np.int64)
    a, b, k = np.uint64(spec.a), np.uint64(spec.b), np.uint64(spec.k)
    x = P.feistel(i, keys, a, b)
    walk = np.flatnonzero(x >= k)
    while walk.size:
        x[walk] = P.feistel(x[walk], keys, a, b)
        walk = walk[x[walk] >= k]
    if spec.k > spec.m:
        x %= np.uint64(spec.m)
    return x.astype(np.int64)


def _box_and_root(target, root, status):
    """Per-target ``d = 2 * ((w + h) / 2)`` and root; flags bad targets."""
    x = target[..., 0]
    y = target[..., 1]
    w = x.max(axis=1) - x.min(axis=1)
    h = y.max(axis=1) - y.min(axis=1)
    s = (w + h) / 2
    d = 2 * s
    nonfinite = ~np.isfinite(target).all(axis=(1, 2))
    _first_and_count(nonfinite, status, TARGET_NONFINITE)
    _first_and_count(~nonfinite & ~(d > 0), status, TARGET_DEGENERATE)
    # A non-finite target poisons its record (NaN box), so that with
    # check=False every pose paired with it comes out NaN on every backend,
    # whatever its min/max made of the non-finite values.
    d = np.where(nonfinite, np.nan, d)
    return d, target[:, root, 0], target[:, root, 1]


@_quiet
def prepare_records(target, camera, root, *, status=True):
    """Compact per-target records for ``mode="paired"``.

    Parameters
    ----------
    target : (M, Jt, 2) float ndarray
        Normalised 2D target poses, already of the output dtype.
    camera : (M, C) float ndarray, C >= 4
        ``[fx, fy, cx, cy, ...]`` per target, same dtype (may be a stride-0
        broadcast of one row).
    root : int
        Target root joint, in ``[0, Jt)``.

    Returns
    -------
    records : (M, RECORD_WIDTH) ndarray
    status : (3, 2) int64 ndarray or None
        ``None`` when every target is fine; otherwise ``[count, first index]``
        of targets that are non-finite, have a degenerate box, or have an
        invalid camera.
    """
    found = new_status()
    d, rx, ry = _box_and_root(target, root, found)
    fx, fy, cx, cy = (camera[:, c] for c in range(4))
    _first_and_count(_bad_camera(camera), found, TARGET_CAMERA)
    records = np.zeros((target.shape[0], RECORD_WIDTH), dtype=target.dtype)
    records[:, 0] = (rx - cx) / fx
    records[:, 1] = (ry - cy) / fy
    records[:, 2] = d
    records[:, 3] = fx
    records[:, 4] = fy
    records[:, 5] = cx
    records[:, 6] = cy
    return records, _found(found, status)


@_quiet
def prepare_poseda_records(target, camera, root, *, status=True):
    """Per-target records for ``mode="poseda"`` (raw root, no camera).

    Parameters are those of :func:`prepare_records`; `camera` holds one row per
    *source* pose and is only validated here.
    """
    found = new_status()
    d, rx, ry = _box_and_root(target, root, found)
    _first_and_count(_bad_camera(camera), found, TARGET_CAMERA)
    records = np.zeros((target.shape[0], RECORD_WIDTH), dtype=target.dtype)
    records[:, 0] = rx
    records[:, 1] = ry
    records[:, 2] = d
    return records, _found(found, status)


def prepare_wide_records(records, camera, *, status=True):
    """Records with the distortion coefficients of 9-value camera rows.

    Parameters
    ----------
    records : (M, RECORD_WIDTH) ndarray
        From :func:`prepare_records`.
    camera : (M, 9) float ndarray
        ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` per target, of the records'
        dtype (may be a stride-0 broadcast of one row).

    Returns
    -------
    wide : (M, 2 * RECORD_WIDTH) ndarray
        ``records`` in slots 0-7, ``k1, k2, k3, p1, p2, 0, 0, 0`` in slots 8-15.
    status : (N_CATEGORIES, 2) int64 ndarray or None
        ``[count, first]`` of rows with a non-finite coefficient
        (``TARGET_DISTORTION``), or ``None``.

    Notes
    -----
    A plain copy, shared by the CPU backends. The coefficients share a row
    with the record rather than living in an array of their own because the
    fused ``return_2d`` kernel gathers one random row per pose: measured with
    ``benchmarks/bench_gpa_2d.py`` (N = M = 1e6, J = 17, float32, one thread,
    on the shared 2-core machine), 75 ms with one 64-byte row against 132 ms
    with two 32-byte rows from two arrays (55 ms with sequential pairing,
    where the layout does not matter). The default path keeps its own
    contiguous ``(M, RECORD_WIDTH)`` records, so it pays nothing for this.
    """
    found = new_status()
    m = records.shape[0]
    wide = np.zeros((m, 2 * RECORD_WIDTH), dtype=records.dtype)
    wide[:, :RECORD_WIDTH] = records
    wide[:, RECORD_WIDTH : RECORD_WIDTH + 5] = camera[:, 4:9]
    with np.errstate(all="ignore"):
        bad = ~np.isfinite(camera[:, 4:9]).all(axis=1)
    _first_and_count(bad, found, TARGET_DISTORTION)
    return wide, _found(found, status)


def _bad_camera(camera):
    fx, fy, cx, cy = (camera[:, c] for c in range(4))
    good = (fx > 0) & (fy > 0) & (fx < np.inf) & (fy < np.inf)
    return ~(good & np.isfinite(cx) & np.isfinite(cy))


def _resolve_targets(spec, status):
    """Target index per source; out-of-range explicit indices are flagged."""
    j = pair_indices(spec)
    if spec.kind == P.KIND_ARRAY:
        bad = (j < 0) | (j >= spec.m)
        _first_and_count(bad, status, POSE_INDEX)
        j = np.where(bad, 0, j)
        return j, bad
    return j, None


def _place(source, root, z, u, v, extent, out, status, bad_index, projection=None):
    """Write ``(source - source_root) + (z*u, z*v, z)`` and flag bad poses.

    `extent` is the source's ``(dx, dy)`` (:func:`_extent`). `projection` is
    ``None`` or ``(out2d, camera, distortion)`` with one camera row (and
    distortion row, or ``None``) per pose: the aligned pose is then also
    projected into ``out2d``. A pose's flags are checked in the kernels' order:
    non-finite 3D output, depth not positive, non-finite 2D output, a joint at or
    behind the camera plane (with or without a projection), a placement too far
    out for the output precision (:func:`gpa_arrays._status.precision_factor`);
    the first that applies is counted.
    """
    px = z * u
    py = z * v
    rel = source - source[:, root : root + 1, :]
    out[..., 0] = rel[..., 0] + px[:, None]
    out[..., 1] = rel[..., 1] + py[:, None]
    out[..., 2] = rel[..., 2] + z[:, None]
    if bad_index is not None:
        out[bad_index] = np.nan
    nonfinite = ~np.isfinite(out).all(axis=(1, 2))
    if bad_index is not None:
        nonfinite &= ~bad_index
    degenerate = ~nonfinite & ~(z > 0)
    if bad_index is not None:
        degenerate &= ~bad_index
    fine = ~nonfinite & ~degenerate
    if bad_index is not None:
        fine &= ~bad_index
    if projection is not None:
        out2d, camera, distortion = projection
        _project_poses(out, camera, distortion, out2d)
        if bad_index is not None:
            out2d[bad_index] = np.nan
        nonfinite_2d = fine & ~np.isfinite(out2d).all(axis=(1, 2))
        nonfinite |= nonfinite_2d
        fine &= ~nonfinite_2d
    # a joint at or behind the plane of the camera the pose was placed for
    behind = fine & ~(out[..., 2] > 0).all(axis=1)
    _first_and_count(behind, status, POSE_BEHIND)
    # per pose, in the output dtype, as every kernel evaluates it
    factor = z.dtype.type(precision_factor(z.dtype))
    far = np.maximum(np.maximum(np.abs(px), np.abs(py)), z)
    lost = fine & ~behind & (far > factor * np.maximum(*extent))
    _first_and_count(lost, status, POSE_PRECISION)
    _first_and_count(nonfinite, status, POSE_NONFINITE)
    _first_and_count(degenerate, status, POSE_DEGENERATE)


def _project_poses(poses, camera, distortion, out2d):
    """Project (N, J, 3) poses, one camera row (and distortion row) per pose."""
    one = poses.dtype.type(1)
    x, y, z = poses[..., 0], poses[..., 1], poses[..., 2]
    f = [camera[:, c, None] for c in range(4)]
    if distortion is None:
        u, v = G.project_linear(x, y, z, *f, one)
    else:
        k = [distortion[:, c, None] for c in range(5)]
        u, v = G.project_distorted(x, y, z, *f, *k, one)
    out2d[..., 0] = u
    out2d[..., 1] = v


def _perspective_depth(source, root, z0, u, v, fx, fy, d):
    """Root depth at which the perspective box scale equals the target's.

    The vectorised twin of the Numba kernel's per-pose loop (same float64
    operations in the same order, see :mod:`gpa_arrays._geometry`).

    Returns
    -------
    z : (N,) float64 ndarray
        The depth; for unsolved poses, whatever the last iterate was.
    solved : (N,) bool ndarray
        Poses that met the tolerance within the budget. Poses whose weak depth
        `z0` is not positive and finite are not attempted (and not solved).
    """
    f64 = np.float64
    rel = source.astype(f64) - source[:, root : root + 1, :].astype(f64)
    u, v, fx, fy, d = (a.astype(f64) for a in (u, v, fx, fy, d))
    z0 = z0.astype(f64)
    n, joints = rel.shape[0], rel.shape[1]
    lo = np.zeros(n)
    for k in range(joints):
        lo = np.maximum(lo, -rel[:, k, 2])
    z = G.select(z0 > lo, z0, lo + lo)
    hi = np.full(n, np.inf)
    attempt = (z0 > 0) & (z0 < np.inf)
    solved = np.zeros(n, dtype=bool)
    todo = np.flatnonzero(attempt)
    tol = G.PERSPECTIVE_TOLERANCE
    for _ in range(G.PERSPECTIVE_MAX_ITERATIONS):
        if todo.size == 0:
            break
        t, slope = _box_and_slope(
            rel[todo], z[todo], u[todo], v[todo], fx[todo], fy[todo]
        )
        dt = d[todo]
        done = np.abs(t - dt) <= tol * dt
        solved[todo[done]] = True
        todo, t, slope, dt = todo[~done], t[~done], slope[~done], dt[~done]
        z[todo], lo[todo], hi[todo] = G.depth_update(
            z[todo], t, slope, dt, lo[todo], hi[todo]
        )
    return z, solved


def _box_and_slope(rel, z, u, v, fx, fy):
    zero = np.zeros_like(z)
    x_max = x_min = y_max = y_min = zero
    gx_max = gx_min = gy_max = gy_min = zero
    for k in range(rel.shape[1]):
        c = rel[:, k, 2]
        inv_q = 1.0 / (z + c)
        p, g = G.joint_offset(rel[:, k, 0], c, u, inv_q)
        x_max, gx_max = G.track_max(p, g, x_max, gx_max)
        x_min, gx_min = G.track_min(p, g, x_min, gx_min)
        p, g = G.joint_offset(rel[:, k, 1], c, v, inv_q)
        y_max, gy_max = G.track_max(p, g, y_max, gy_max)
        y_min, gy_min = G.track_min(p, g, y_min, gy_min)
    return G.box_and_slope(
        fx, fy, x_max, x_min, y_max, y_min, gx_max, gx_min, gy_max, gy_min
    )


def _extent(source):
    x = source[..., 0]
    y = source[..., 1]
    return x.max(axis=1) - x.min(axis=1), y.max(axis=1) - y.min(axis=1)


@_quiet
def gpa_records(source, records, out, root, spec, out2d=None, distortion=None,
                perspective=False, *, status=True):  # fmt: skip
    """GPA against prepared records (``mode="paired"``).

    Parameters
    ----------
    source : (N, J, 3) float ndarray
        Camera-space source poses, metres.
    records : (M, RECORD_WIDTH) ndarray
        From :func:`prepare_records`, same dtype as `source`.
    out : (N, J, 3) ndarray
        Written in full; may be `source` itself.
    root : int
        Source root joint.
    spec : PairingSpec
    out2d : (N, J, 2) ndarray, optional
        When given, also write each aligned pose projected through its paired
        target's camera (``return_2d``).
    distortion : (M, 5 or more) ndarray, optional
        ``k1, k2, k3, p1, p2`` per target (the view ``wide[:, 8:]`` of
        :func:`prepare_wide_records`, whose ``wide[:, :8]`` is then passed as
        `records`): project with the H36M distortion model instead of the
        pinhole model. Only read with `out2d`.
    perspective : bool
        Solve for the depth at which the perspective projection has the
        target's box scale (``depth="perspective"``) instead of the weak
        perspective depth.

    Returns
    -------
    status : (N_CATEGORIES, 2) int64 ndarray or None
        ``None`` when every pose is fine; otherwise ``[count, first pose]`` of
        poses with non-finite output, with a degenerate (zero x and y extent)
        source, with an out-of-range explicit target index, without a
        perspective depth, with a joint at or behind the camera plane, and
        placed too far out for the output precision.
    """
    found = new_status()
    j, bad_index = _resolve_targets(spec, found)
    rec = records[j]
    u, v, d, fx, fy = (rec[:, c] for c in range(5))
    dx, dy = _extent(source)
    z = (fx * dx + fy * dy) / d
    if perspective:
        z = _solve_depth(source, root, z, u, v, fx, fy, d, found, bad_index)
    projection = None
    if out2d is not None:
        projection = (out2d, rec[:, 3:7], None if distortion is None else distortion[j])
    _place(source, root, z, u, v, (dx, dy), out, found, bad_index, projection)
    return _found(found, status)


def _solve_depth(source, root, z, u, v, fx, fy, d, status, bad_index):
    """Perspective depth where solvable, the weak depth `z` elsewhere (flagged)."""
    depth, solved = _perspective_depth(source, root, z, u, v, fx, fy, d)
    attempted = (z > 0) & (z < np.inf)
    failed = attempted & ~solved
    if bad_index is not None:
        failed &= ~bad_index
    _first_and_count(failed, status, POSE_NO_DEPTH)
    return np.where(solved, depth.astype(z.dtype), z)


@_quiet
def gpa_poseda(source, records, camera, out, root, spec, out2d=None, *, status=True):
    """The published arithmetic (``mode="poseda"``).

    Depth uses the focal length of camera row 0 for every pose; the unprojection
    of pose ``i`` uses camera row ``i`` (the source index), not the row of its
    paired target.

    Parameters
    ----------
    source, out, root, spec
        As in :func:`gpa_records`.
    records : (M, RECORD_WIDTH) ndarray
        From :func:`prepare_poseda_records`.
    camera : (N, C) ndarray, C >= 4
        Camera rows, indexed by source pose.
    out2d : (N, J, 2) ndarray, optional
        When given, also write pose ``i`` projected through camera row ``i``
        (the row that unprojected it, so its root lands on the paired target's
        root), with the H36M distortion model when ``C == 9``.

    Returns
    -------
    status : (N_CATEGORIES, 2) int64 ndarray or None
        As in :func:`gpa_records`.
    """
    found = new_status()
    j, bad_index = _resolve_targets(spec, found)
    rec = records[j]
    rx, ry, d = rec[:, 0], rec[:, 1], rec[:, 2]
    dx, dy = _extent(source)
    z = (camera[0, 0] * dx + camera[0, 1] * dy) / d
    u = (rx - camera[:, 2]) / camera[:, 0]
    v = (ry - camera[:, 3]) / camera[:, 1]
    projection = None
    if out2d is not None:
        distortion = camera[:, 4:9] if camera.shape[1] == 9 else None
        projection = (out2d, camera[:, :4], distortion)
    _place(source, root, z, u, v, (dx, dy), out, found, bad_index, projection)
    return _found(found, status)


@_quiet
def gpa_clip(source, origin, anchor, out, *, status=True):
    """Move every frame of each clip by its reference frame's translation.

    ``out[i, t, q] = (source[i, t, q] - origin[i]) + anchor[i]``: the same two
    roundings as the per-pose placement (:func:`gpa_records` writes
    ``(source - root) + new_root``), so a one-frame clip gives the per-pose
    result bit for bit and the root-relative motion of every frame is kept
    exactly up to those two roundings.

    Parameters
    ----------
    source : (N, T, J, 3) float ndarray
        Clips of camera-space poses, metres; any strides.
    origin : (N, 3) ndarray of the same dtype
        Each clip's source root at its reference frame. A copy, not a view of
        `source`, so that `out` may be `source`.
    anchor : (N, 3) ndarray of the same dtype
        Each clip's aligned root at its reference frame (from :func:`gpa_records`
        on the reference frames).
    out : (N, T, J, 3) ndarray of the same dtype
        Written in full; may be `source` itself.

    Returns
    -------
    status : (N_CATEGORIES, 2) int64 ndarray or None
        ``[count, first clip]`` of clips with a non-finite output value
        (``POSE_NONFINITE``), or ``None``.
    """
    np.subtract(source, origin[:, None, None, :], out=out)
    np.add(out, anchor[:, None, None, :], out=out)
    found = new_status()
    _first_and_count(~np.isfinite(out).all(axis=(1, 2, 3)), found, POSE_NONFINITE)
    return _found(found, status)


@_quiet
def project_points(points, camera, per, out, *, status=True):
    """Project camera-space points, ``per`` consecutive points per camera row.

    Parameters
    ----------
    points : (P, 3) float ndarray
        Camera-space points, any strides.
    camera : (G, C) ndarray of the same dtype, C = 4 or 9
        ``[fx, fy, cx, cy]`` (pinhole) or ``[fx, fy, cx, cy, k1, k2, k3, p1,
        p2]`` (H36M distortion model); ``P == G * per``.
    per : int
        Points per camera row, ``>= 1``.
    out : (P, 2) ndarray of the same dtype
        Written in full.

    Returns
    -------
    status : (N_CATEGORIES, 2) int64 ndarray or None
        ``[count, first point]`` of points with a non-finite coordinate or
        projection (``POINT_NONFINITE``) and of points with ``z <= 0``
        (``POINT_BEHIND``); ``[count, first row]`` of camera rows with a focal
        length that is not positive and finite or another non-finite value
        (``POINT_CAMERA``); or ``None``.
    """
    g = camera.shape[0]
    pts = points.reshape(g, per, 3)
    one = points.dtype.type(1)
    x, y, z = pts[..., 0], pts[..., 1], pts[..., 2]
    f = [camera[:, c, None] for c in range(4)]
    if camera.shape[1] == 9:
        k = [camera[:, c, None] for c in range(4, 9)]
        u, v = G.project_distorted(x, y, z, *f, *k, one)
    else:
        u, v = G.project_linear(x, y, z, *f, one)
    res = out.reshape(g, per, 2)
    res[..., 0] = u
    res[..., 1] = v
    found = new_status()
    nonfinite = ~(np.isfinite(pts).all(axis=2) & np.isfinite(u) & np.isfinite(v))
    behind = ~nonfinite & ~(z > 0)
    _first_and_count(nonfinite.ravel(), found, POINT_NONFINITE)
    _first_and_count(behind.ravel(), found, POINT_BEHIND)
    good = (camera[:, 0] > 0) & (camera[:, 1] > 0) & np.isfinite(camera).all(axis=1)
    _first_and_count(~good, found, POINT_CAMERA)
    return _found(found, status)


# --- metrics --------------------------------------------------------------------------


def _pose_flags(predicted, target, status):
    """Flag poses with a non-finite coordinate; returns the mask."""
    nonfinite = ~(
        np.isfinite(predicted).all(axis=(1, 2)) & np.isfinite(target).all(axis=(1, 2))
    )
    _first_and_count(nonfinite, status, POSE_NONFINITE)
    return nonfinite


def _similarity(y, x):
    """Per-pose similarity ``x ~ a R y + t`` by SVD (reflections removed).

    Parameters
    ----------
    y, x : (N, K, 3) float64 ndarrays
        Predicted and target joints.

    Returns
    -------
    a : (N,) scale, R : (N, 3, 3) rotation, t : (N, 3) translation,
    norm : (N,) ``sum |y - mean y|^2`` (0 for a degenerate prediction).
    """
    mu_y = y.mean(axis=1, keepdims=True)
    mu_x = x.mean(axis=1, keepdims=True)
    y0 = y - mu_y
    x0 = x - mu_x
    # H_ab = sum_k y0_a x0_b; the rotation maximising tr(R H) is V D U^T
    h = np.einsum("nka,nkb->nab", y0, x0)
    u, sigma, vt = np.linalg.svd(h)
    v = np.swapaxes(vt, 1, 2)
    ut = np.swapaxes(u, 1, 2)
    d = np.sign(np.linalg.det(v @ ut))
    d[d == 0] = 1
    v[:, :, 2] *= d[:, None]
    rotation = v @ ut
    norm = (y0 * y0).sum(axis=(1, 2))
    trace = sigma[:, 0] + sigma[:, 1] + d * sigma[:, 2]
    scale = trace / norm
    translation = mu_x[:, 0] - scale[:, None] * np.einsum(
        "nab,nb->na", rotation, mu_y[:, 0]
    )
    return scale, rotation, translation, norm


def _fit_finite(p, t, nonfinite, status):
    """:func:`_similarity` of the finite poses, NaN for the others.

    Returns ``(scale, rotation, translation, degenerate)``, the last a mask of
    the finite poses whose prediction has no extent (flagged
    ``POSE_DEGENERATE``; their fit is whatever the division by zero gave).
    """
    n = p.shape[0]
    scale = np.full(n, np.nan)
    rotation = np.full((n, 3, 3), np.nan)
    translation = np.full((n, 3), np.nan)
    finite = ~nonfinite
    degenerate = np.zeros_like(finite)
    if finite.any():
        fit = _similarity(p[finite], t[finite])
        scale[finite], rotation[finite], translation[finite], norm = fit
        degenerate[finite] = ~(norm > 0)
        _first_and_count(degenerate, status, POSE_DEGENERATE)
    return scale, rotation, translation, degenerate


@_quiet
def joint_errors(predicted, target, joints, root, align, *, status=True):
    """Per-joint Euclidean errors after an optional per-pose alignment.

    Parameters
    ----------
    predicted, target : (N, J, 3) float ndarrays
        Poses in any unit (errors come out in the same unit).
    joints : (K,) int64 ndarray
        The joints scored (and fitted, for the scale and Procrustes fits).
    root : int
        Joint subtracted from every joint of both poses first (before the
        subset is taken), or -1 for none.
    align : int
        ``ALIGN_NONE``; ``ALIGN_SCALE``: prediction scaled by
        ``sum(t . p) / sum(p . p)`` (N-MPJPE); ``ALIGN_PROCRUSTES``: per-pose
        similarity (scale, rotation, translation; reflections removed) fitted
        to the target (P-MPJPE).

    Returns
    -------
    errors : (N, K) float64 ndarray
    status : (N_CATEGORIES, 2) int64 ndarray or None
        ``[count, first pose]`` of poses with non-finite coordinates
        (``POSE_NONFINITE``) and, for the fits, of predictions whose selected
        joints coincide, so that no scale is defined (``POSE_DEGENERATE``).
    """
    found = new_status()
    p = predicted.astype(np.float64)
    t = target.astype(np.float64)
    if root >= 0:
        p = p - p[:, root : root + 1]
        t = t - t[:, root : root + 1]
    p = p[:, joints]
    t = t[:, joints]
    nonfinite = _pose_flags(p, t, found)
    if align == ALIGN_SCALE:
        norm = (p * p).sum(axis=(1, 2))
        scale = (t * p).sum(axis=(1, 2)) / norm
        p = scale[:, None, None] * p
        degenerate = ~nonfinite & ~(norm > 0)
        _first_and_count(degenerate, found, POSE_DEGENERATE)
    elif align == ALIGN_PROCRUSTES:
        scale, rotation, translation, _ = _fit_finite(p, t, nonfinite, found)
        p = scale[:, None, None] * np.einsum("nab,nkb->nka", rotation, p)
        p = p + translation[:, None, :]
    errors = np.sqrt(((p - t) ** 2).sum(axis=2))
    return errors, _found(found, status)


@_quiet
def procrustes_fit(predicted, target, joints, *, status=True):
    """Per-pose similarity transform fitted to the selected joints.

    Parameters
    ----------
    predicted, target : (N, J, 3) float ndarrays
    joints : (K,) int64 ndarray

    Returns
    -------
    scale : (N,) float64, rotation : (N, 3, 3) float64, translation : (N, 3)
        float64 ndarrays with ``target ~ scale * rotation @ predicted +
        translation`` (NaN for bad poses).
    status : (N_CATEGORIES, 2) int64 ndarray or None
        As in :func:`joint_errors`.
    """
    found = new_status()
    p = predicted[:, joints].astype(np.float64)
    t = target[:, joints].astype(np.float64)
    nonfinite = _pose_flags(p, t, found)
    scale, rotation, translation, degenerate = _fit_finite(p, t, nonfinite, found)
    bad = np.flatnonzero(degenerate)
    scale[bad] = np.nan
    rotation[bad] = np.nan
    translation[bad] = np.nan
    return scale, rotation, translation, _found(found, status)
