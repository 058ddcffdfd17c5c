"""Error bookkeeping shared by every backend: status arrays and one formatter.

A kernel never raises: it counts what it found in a small ``(N_CATEGORIES, 2)``
int64 status array, ``[count, first index]`` per category, and the host turns
that into one exception naming the argument, the count and the first offender.
What each slot of each kernel family means, and the words that report it, are
one table per family (:data:`POSE`, :data:`TARGET`, :data:`POINT`,
:data:`METRIC`); :func:`raise_for_status` is the only place that formats them,
so every backend, every entry point and every chunk of a chunked call reports
the same words, with indices global to the caller's data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

# Pose kernels (gpa_records, gpa_poseda, gpa_clip).
POSE_NONFINITE = 0
POSE_DEGENERATE = 1
POSE_INDEX = 2
#: ``depth="perspective"``: no depth gives the target's box scale (the pose was
#: placed at its weak-perspective depth instead).
POSE_NO_DEPTH = 3
#: A joint of the aligned pose lies at or behind the camera plane (z <= 0):
#: it cannot be seen through the camera the pose was placed for.
POSE_BEHIND = 4
#: The aligned pose lies so far from the camera that the output dtype cannot
#: hold its shape: see :func:`precision_factor` for the criterion.
POSE_PRECISION = 5

# Target preparation.
TARGET_NONFINITE = 0
TARGET_DEGENERATE = 1
TARGET_CAMERA = 2
#: 9-value camera rows with a non-finite distortion coefficient.
TARGET_DISTORTION = 3

# Point kernels (projection).
POINT_NONFINITE = 0
POINT_BEHIND = 1
#: A camera row whose focal length is not positive and finite, or with another
#: non-finite value; the index is the camera row's.
POINT_CAMERA = 2

# Metric kernels (joint errors, Procrustes).
METRIC_NONFINITE = 0
METRIC_DEGENERATE = 1

N_CATEGORIES = 6

#: A placed pose may lose at most this fraction of its size to the rounding of
#: its output coordinates (see :func:`precision_factor`).
PRECISION_TOLERANCE = 1e-3


def precision_factor(dtype) -> float:
    """``PRECISION_TOLERANCE / eps``: how far out a pose may be placed, in poses.

    The criterion of :data:`POSE_PRECISION`. Output coordinates are
    ``(source - source_root) + (z u, z v, z)``; near the placed root
    ``(z u, z v, z)`` their representable values are up to ``R * eps`` apart,
    ``R = max(|z u|, |z v|, z)`` and ``eps`` the machine epsilon of the output
    dtype, so the root-relative shape is kept only to about that. A pose is
    flagged when that spacing is no longer small against the pose::

        R * eps > PRECISION_TOLERANCE * max(dx, dy)

    with ``dx, dy`` the source pose's x and y extents (the values the depth
    formula already computed), evaluated as ``R > K * max(dx, dy)`` in the
    output dtype with ``K = dtype(PRECISION_TOLERANCE / eps)``: one multiply
    and a compare per pose, the same bits on every backend. float32: a 1 m
    pose placed more than 8.4 km away (its shape then drifts by about a
    millimetre or more); float64: beyond 4.5e12 m.

    Parameters
    ----------
    dtype : float32 or float64 dtype

    Returns
    -------
    float
        ``K`` before its rounding to `dtype` (exact: eps is a power of two).
    """
    return PRECISION_TOLERANCE / float(np.finfo(dtype).eps)


class Category(NamedTuple):
    """How one slot of a status array is reported.

    The message reads ``"{argument}: {count} of {total} {subject} {predicate};
    first at {position} {where}"``, where `subject` is the singular or the
    plural half of `subjects` (``"pose{block} has|poses{block} have"``) as the
    count says, ``{block}`` marking where the block of a chunked call is named.
    `predicate` may hold ``{m}`` (the number of targets), filled from the
    call's context.
    """

    slot: int
    argument: str
    subjects: str
    predicate: str
    position: str = "index"
    #: Reported whatever ``check`` says (an index outside the records would be
    #: read out of bounds, not merely give a bad pose).
    always: bool = False


# The predicates, named so that each table below reads one category per row.
_OUTSIDE = "outside [0, {m})"
_NONFINITE_OUTPUT = (
    "non-finite output (non-finite coordinates in the input, or overflow)"
)
_NO_EXTENT = (
    "zero extent in both x and y, which puts it at depth 0 (on the camera centre)"
)
_NO_DEPTH = (
    "no depth in front of the camera at which the perspective projection has the "
    "paired target's box scale (the target box is larger than the pose can appear); "
    "pass check=False to place such poses at their weak-perspective depth instead"
)
_BEHIND_PLACED = (
    "a joint at or behind the camera plane (z <= 0) of the camera it was placed "
    "for, so it cannot be seen through it (a close target box for a deep pose; "
    "depth='perspective' avoids it)"
)
_PRECISION = (
    "so far from the camera that rounding to the output dtype destroys the "
    "shape: max(|x|, |y|, z) of the placed root > 1e-3 / eps(dtype) * the "
    "larger of the source's x and y extents (a tiny target box or a huge focal "
    "length; compute in float64, or check the targets and cameras)"
)
_BOX = "a degenerate 2D box (width + height == 0, which makes the depth infinite)"
_FOCAL = "a focal length that is not finite and positive or a non-finite centre"
_DISTORTION = "a non-finite distortion coefficient (columns 4 to 8: k1, k2, k3, p1, p2)"
_CAMERA_ROW = (
    "a focal length that is not positive and finite or a non-finite centre or "
    "distortion coefficient"
)
_BEHIND = "at or behind the camera plane (z <= 0), where the projection is undefined"
_COINCIDE = "all scored joints at one point, so the alignment scale is undefined"

# {block} marks where a chunked call names its block ("1 of 10 pose (block [20,
# 30) of 40) has ...").
_POSES = "pose{block} has|poses{block} have"
_TARGETS = "target{block} has|targets{block} have"
_ROWS = "row{block} has|rows{block} have"

POSE: tuple[Category, ...] = (
    Category(POSE_INDEX, "pairing", "target index{block}|target indices{block}",
             _OUTSIDE, "position", always=True),
    Category(POSE_NONFINITE, "source_3d", "pose{block} gives|poses{block} give",
             _NONFINITE_OUTPUT),
    Category(POSE_DEGENERATE, "source_3d", _POSES, _NO_EXTENT),
    Category(POSE_NO_DEPTH, "depth", _POSES, _NO_DEPTH),
    Category(POSE_BEHIND, "source_3d",
             "aligned pose{block} has|aligned poses{block} have", _BEHIND_PLACED),
    Category(POSE_PRECISION, "target_2d, camera",
             "aligned pose{block} lies|aligned poses{block} lie", _PRECISION),
)  # fmt: skip
TARGET: tuple[Category, ...] = (
    Category(TARGET_NONFINITE, "target_2d", _TARGETS, "non-finite coordinates"),
    Category(TARGET_DEGENERATE, "target_2d", _TARGETS, _BOX),
    Category(TARGET_CAMERA, "camera", _ROWS, _FOCAL, "row"),
    Category(TARGET_DISTORTION, "camera", _ROWS, _DISTORTION, "row"),
)  # fmt: skip
POINT: tuple[Category, ...] = (
    Category(POINT_CAMERA, "camera", _ROWS, _CAMERA_ROW),
    Category(POINT_NONFINITE, "points_3d", "point{block} has|points{block} have",
             "a non-finite coordinate or projection"),
    Category(POINT_BEHIND, "points_3d", "point{block} lies|points{block} lie",
             _BEHIND),
)  # fmt: skip
METRIC: tuple[Category, ...] = (
    Category(METRIC_NONFINITE, "predicted, target", _POSES,
             "a non-finite coordinate in the scored joints"),
    Category(METRIC_DEGENERATE, "predicted", _POSES, _COINCIDE),
)  # fmt: skip
#: :mod:`gpa_arrays.stats`: per-pose statistics, and 1-D samples.
STATS = (Category(0, "poses", _POSES, "a non-finite coordinate or statistic"),)
#: 3D poses that cannot be projected (:func:`gpa_arrays.stats.pose_statistics`).
STATS_BEHIND = Category(0, "poses", _POSES, f"a joint {_BEHIND}")
SAMPLE = Category(0, "values", "value{block} is|values{block} are", "non-finite")


def new_status():
    """A zeroed ``(N_CATEGORIES, 2)`` int64 status array.

    Every kernel kind uses the same shape; categories it does not report stay 0.
    """
    return np.zeros((N_CATEGORIES, 2), dtype=np.int64)


def _block(n, offset, total):
    """`` (block [a, b) of T)`` for a call that covers part of a data set."""
    if total is None or (offset == 0 and n == total):
        return ""
    return f" (block [{offset}, {offset + n}) of {total})"


def message(category, count, total, where, *, block="", context=None):
    """The sentence that reports `count` hits of `category` (see :class:`Category`).

    Parameters
    ----------
    category : Category
    count, total : int
        How many items were hit, of how many in the call (or block).
    where : str
        The first hit, as the caller's index (global, unravelled).
    block : str
        :func:`_block`'s note for a call over part of a data set.
    context : dict, optional
        Values for the predicate's fields.
    """
    singular, plural = category.subjects.split("|")
    subject = (singular if count == 1 else plural).format(block=block)
    predicate = category.predicate.format(**(context or {}))
    return (
        f"{category.argument}: {count} of {total} {subject} {predicate}; "
        f"first at {category.position} {where}"
    )


def raise_for_status(
    status,
    table: Sequence[Category],
    total: int,
    *,
    check: bool = True,
    offset: int = 0,
    block_total: int | None = None,
    locate: Callable[[Category, int], object] | None = None,
    detail: Callable[[Category, int], str] | None = None,
    context: dict | None = None,
) -> None:
    """Raise the ``ValueError`` a status array describes, if any.

    Categories are looked at in the table's order; the first with a count is
    reported.

    Parameters
    ----------
    status : (N_CATEGORIES, 2) int64 ndarray or None
        As the kernel wrote it (host memory): ``[count, first local index]``
        per slot. None: nothing to report.
    table : sequence of Category
        The kernel family's categories (:data:`POSE`, :data:`TARGET`, ...).
    total : int
        Items in the call (or the block of a chunked call).
    check : bool
        False reports only the categories marked ``always``.
    offset, block_total : int, optional
        For a block ``offset .. offset + total - 1`` of a data set of
        `block_total` items: indices are quoted globally and the block named.
    locate : callable, optional
        ``locate(category, first) -> where`` turns a local first index into the
        caller's (a tuple for unravelled batches); default ``offset + first``.
    detail : callable, optional
        ``detail(category, first) -> str`` appended to the message (the bad
        value of an explicit pairing).
    context : dict, optional
        Values for the predicates' fields (``m``).

    Raises
    ------
    ValueError
    """
    if status is None:
        return
    for category in table:
        if not (check or category.always):
            continue
        count, first = (int(v) for v in status[category.slot])
        if not count:
            continue
        where = offset + first if locate is None else locate(category, first)
        text = message(
            category, count, total, where,
            block=_block(total, offset, block_total), context=context,
        )  # fmt: skip
        if detail is not None:
            text += detail(category, first)
        raise ValueError(text)


def raise_for_pose_status(
    status, n, m, pairing_index=None, offset=0, total=None, check=True
):
    """Raise for a pose kernel's status (:data:`POSE`), quoting global indices.

    Parameters
    ----------
    status : (N_CATEGORIES, 2) int64 ndarray or None
    n, m : int
        Sources in the call (or block) and targets.
    pairing_index : (n,) int64 array (NumPy or CuPy), optional
        The explicit pairing of the call's poses, to quote the first bad value.
    offset, total : int, optional
        The block's place in a chunked call (see :func:`raise_for_status`).
    check : bool
        False reports pairing-index problems only.
    """
    if status is None:  # the common case, on every call's hot path
        return

    def value(category, first):
        if category.slot != POSE_INDEX or pairing_index is None:
            return ""
        # int() also reads a 0-d device array (a CuPy pairing) back to the host
        return f" (value {int(pairing_index[first])})"

    raise_for_status(
        status, POSE, n, check=check, offset=offset, block_total=total,
        detail=value, context={"m": m},
    )  # fmt: skip


def raise_for_target_status(status, m, offset=0, total=None):
    """Raise for a target-preparation kernel's status (:data:`TARGET`).

    Parameters
    ----------
    status : (N_CATEGORIES, 2) int64 ndarray or None
    m : int
        Targets in the call (rows of the camera array in ``mode="poseda"``).
    offset, total : int, optional
        The block's place in a chunked call (see :func:`raise_for_status`).
    """
    raise_for_status(status, TARGET, m, offset=offset, block_total=total)


def raise_for_mask(mask, category, total, **where):
    """Raise for the items `mask` flags, as a kernel's status of `category` would.

    For checks made on the host with array operations (NumPy or CuPy `mask`).
    """
    if not mask.any():
        return
    status = new_status()
    status[category.slot] = (int(mask.sum()), int(mask.argmax()))
    raise_for_status(status, (category,), total, **where)


def unravel(flat, shape):
    """A flat index as the caller's index into `shape` (an int for 1-D)."""
    index = tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()
    return index[0] if len(index) == 1 else index
