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

N_CATEGORIES = 5


class Category(NamedTuple):
    """How one slot of a status array is reported.

    The message reads ``"{argument}: {count} of {total} {noun}{block} {verb}
    {predicate}; first at {position} {where}"``, with the singular or plural
    forms chosen by the count. `predicate` may hold ``{m}`` (the number of
    targets) and ``{pairing_kind}``, filled from the call's context.
    """

    slot: int
    argument: str
    noun: tuple[str, str]
    verb: tuple[str, str]
    predicate: str
    position: str = "index"
    #: Reported whatever ``check`` says (an index outside the records would be
    #: read out of bounds, not merely give a bad pose).
    always: bool = False


POSE: tuple[Category, ...] = (
    Category(
        POSE_INDEX, "pairing", ("target index", "target indices"), ("", ""),
        "outside [0, {m})", "position", always=True,
    ),
    Category(
        POSE_NONFINITE, "source_3d", ("pose", "poses"), ("gives", "give"),
        "non-finite output (non-finite coordinates in the input, or overflow)",
    ),
    Category(
        POSE_DEGENERATE, "source_3d", ("pose", "poses"), ("has", "have"),
        "zero extent in both x and y, which puts it at depth 0 (on the camera "
        "centre)",
    ),
    Category(
        POSE_NO_DEPTH, "depth", ("pose", "poses"), ("has", "have"),
        "no depth in front of the camera at which the perspective projection has "
        "the paired target's box scale (the target box is larger than the pose can "
        "appear); pass check=False to place such poses at their weak-perspective "
        "depth instead",
    ),
    Category(
        POSE_BEHIND, "source_3d", ("aligned pose", "aligned poses"), ("has", "have"),
        "a joint at or behind the camera plane (z <= 0) of the camera it was "
        "placed for, so it cannot be seen through it (a close target box for a "
        "deep pose; depth='perspective' avoids it)",
    ),
)  # fmt: skip

TARGET: tuple[Category, ...] = (
    Category(
        TARGET_NONFINITE, "target_2d", ("target", "targets"), ("has", "have"),
        "non-finite coordinates",
    ),
    Category(
        TARGET_DEGENERATE, "target_2d", ("target", "targets"), ("has", "have"),
        "a degenerate 2D box (width + height == 0, which makes the depth infinite)",
    ),
    Category(
        TARGET_CAMERA, "camera", ("row", "rows"), ("has", "have"),
        "a focal length that is not finite and positive or a non-finite centre",
        "row",
    ),
    Category(
        TARGET_DISTORTION, "camera", ("row", "rows"), ("has", "have"),
        "a non-finite distortion coefficient (columns 4 to 8: k1, k2, k3, p1, p2)",
        "row",
    ),
)  # fmt: skip

POINT: tuple[Category, ...] = (
    Category(
        POINT_CAMERA, "camera", ("row", "rows"), ("has", "have"),
        "a focal length that is not positive and finite or a non-finite centre "
        "or distortion coefficient",
    ),
    Category(
        POINT_NONFINITE, "points_3d", ("point", "points"), ("has", "have"),
        "a non-finite coordinate or projection",
    ),
    Category(
        POINT_BEHIND, "points_3d", ("point", "points"), ("lies", "lie"),
        "at or behind the camera plane (z <= 0), where the projection is undefined",
    ),
)  # fmt: skip

METRIC: tuple[Category, ...] = (
    Category(
        METRIC_NONFINITE, "predicted, target", ("pose", "poses"), ("has", "have"),
        "a non-finite coordinate in the scored joints",
    ),
    Category(
        METRIC_DEGENERATE, "predicted", ("pose", "poses"), ("has", "have"),
        "all scored joints at one point, so the alignment scale is undefined",
    ),
)  # fmt: skip


#: :mod:`gpa_arrays.stats`: per-pose statistics and 1-D samples.
STATS: tuple[Category, ...] = (
    Category(
        0, "poses", ("pose", "poses"), ("has", "have"),
        "a non-finite coordinate or statistic",
    ),
)  # fmt: skip
SAMPLE = Category(0, "values", ("value", "values"), ("is", "are"), "non-finite")


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
    one = count == 1
    noun = category.noun[0 if one else 1]
    verb = category.verb[0 if one else 1]
    predicate = category.predicate.format(**(context or {}))
    verb = f" {verb}" if verb else ""
    return (
        f"{category.argument}: {count} of {total} {noun}{block}{verb} {predicate}; "
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
