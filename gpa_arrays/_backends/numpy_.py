"""The NumPy reference backend: readable, vectorised, and the test oracle.

Every other backend implements the same functions, with the same names and
argument order, and is tested against this module. The arithmetic is written in
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
"""

from __future__ import annotations

import functools

import numpy as np

from .. import _pairing as P
from .._status import (
    POSE_DEGENERATE,
    POSE_INDEX,
    POSE_NONFINITE,
    TARGET_CAMERA,
    TARGET_DEGENERATE,
    TARGET_NONFINITE,
    new_status,
)

__all__ = ["gpa_poseda", "gpa_records", "pair_indices", "prepare_records"]

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
    return d, target[:, root, 0], target[:, root, 1]


@_quiet
def prepare_records(target, camera, root):
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
    status = new_status()
    d, rx, ry = _box_and_root(target, root, status)
    fx, fy, cx, cy = (camera[:, c] for c in range(4))
    _first_and_count(_bad_camera(camera), status, TARGET_CAMERA)
    records = np.zeros((target.shape[0], RECORD_WIDTH), dtype=target.dtype)
    records[:, 0] = (rx - cx) / fx
    records[:, 1] = (ry - cy) / fy
    records[:, 2] = d
    records[:, 3] = fx
    records[:, 4] = fy
    records[:, 5] = cx
    records[:, 6] = cy
    return records, (status if status.any() else None)


@_quiet
def prepare_poseda_records(target, camera, root):
    """Per-target records for ``mode="poseda"`` (raw root, no camera).

    Parameters are those of :func:`prepare_records`; `camera` holds one row per
    *source* pose and is only validated here.
    """
    status = new_status()
    d, rx, ry = _box_and_root(target, root, status)
    _first_and_count(_bad_camera(camera), status, TARGET_CAMERA)
    records = np.zeros((target.shape[0], RECORD_WIDTH), dtype=target.dtype)
    records[:, 0] = rx
    records[:, 1] = ry
    records[:, 2] = d
    return records, (status if status.any() else None)


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


def _place(source, root, z, u, v, out, status, bad_index):
    """Write ``(source - source_root) + (z*u, z*v, z)`` and flag bad poses."""
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
    _first_and_count(nonfinite, status, POSE_NONFINITE)
    degenerate = ~nonfinite & ~(z > 0)
    if bad_index is not None:
        degenerate &= ~bad_index
    _first_and_count(degenerate, status, POSE_DEGENERATE)


def _extent(source):
    x = source[..., 0]
    y = source[..., 1]
    return x.max(axis=1) - x.min(axis=1), y.max(axis=1) - y.min(axis=1)


@_quiet
def gpa_records(source, records, out, root, spec):
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

    Returns
    -------
    status : (3, 2) int64 ndarray or None
        ``None`` when every pose is fine; otherwise ``[count, first pose]`` of
        poses with non-finite output, with a degenerate (zero x and y extent)
        source, and with an out-of-range explicit target index.
    """
    status = new_status()
    j, bad_index = _resolve_targets(spec, status)
    rec = records[j]
    u, v, d, fx, fy = (rec[:, c] for c in range(5))
    dx, dy = _extent(source)
    z = (fx * dx + fy * dy) / d
    _place(source, root, z, u, v, out, status, bad_index)
    return status if status.any() else None


@_quiet
def gpa_poseda(source, records, camera, out, root, spec):
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

    Returns
    -------
    status : (3, 2) int64 ndarray or None
        As in :func:`gpa_records`.
    """
    status = new_status()
    j, bad_index = _resolve_targets(spec, status)
    rec = records[j]
    rx, ry, d = rec[:, 0], rec[:, 1], rec[:, 2]
    dx, dy = _extent(source)
    z = (camera[0, 0] * dx + camera[0, 1] * dy) / d
    u = (rx - camera[:, 2]) / camera[:, 0]
    v = (ry - camera[:, 3]) / camera[:, 1]
    _place(source, root, z, u, v, out, status, bad_index)
    return status if status.any() else None
