"""Error bookkeeping shared by every backend.

A kernel never raises: it counts what it found in a small ``(3, 2)`` int64 status
array, ``[count, first index]`` per category, and the host turns that into one
exception naming the argument, the count and the first offender. The categories
of a pose kernel and of a target-preparation kernel are listed below; the
messages live here so that every backend reports the same words.
"""

from __future__ import annotations

import numpy as np

# Pose kernels.
POSE_NONFINITE = 0
POSE_DEGENERATE = 1
POSE_INDEX = 2
#: ``depth="perspective"``: no depth gives the target's box scale (the pose was
#: placed at its weak-perspective depth instead).
POSE_NO_DEPTH = 3
#: ``return_2d=True``: a joint of the aligned pose lies at or behind the camera
#: plane (z <= 0), where the projection is undefined.
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

N_CATEGORIES = 5


def new_status():
    """A zeroed ``(N_CATEGORIES, 2)`` int64 status array.

    Every kernel kind uses the same shape; categories it does not report stay 0.
    """
    return np.zeros((N_CATEGORIES, 2), dtype=np.int64)


def _plural(count, one, many):
    return one if count == 1 else many


def _block(n, offset, total):
    """`` (block [a, b) of T)`` for a call that covers part of a data set."""
    if total is None or (offset == 0 and n == total):
        return ""
    return f" (block [{offset}, {offset + n}) of {total})"


def raise_for_pose_status(status, n, m, pairing_index=None, offset=0, total=None):
    """Raise the error a pose kernel's status array describes, if any.

    Parameters
    ----------
    status : (3, 2) int64 ndarray
        As the kernel wrote it: first indices local to the call.
    n, m : int
        Number of sources in the call and of targets, for the messages.
    pairing_index : (n,) int64 array (NumPy or CuPy), optional
        The explicit pairing of the call's poses, to quote the first bad value.
    offset, total : int, optional
        For a call that aligns the global poses ``offset .. offset + n - 1`` of
        a data set of `total` poses (one block of :mod:`gpa_arrays.dask`): the
        message quotes global indices and names the block.

    Raises
    ------
    ValueError
    """
    block = _block(n, offset, total)
    count, first = (int(v) for v in status[POSE_INDEX])
    if count:
        # int() also reads a 0-d device array (a CuPy pairing) back to the host
        value = "" if pairing_index is None else f" (value {int(pairing_index[first])})"
        raise ValueError(
            f"pairing: {count} of {n} target {_plural(count, 'index', 'indices')}"
            f"{block} outside [0, {m}); first at position {offset + first}{value}"
        )
    count, first = (int(v) for v in status[POSE_NONFINITE])
    if count:
        raise ValueError(
            f"source_3d: {count} of {n} "
            f"{_plural(count, 'pose', 'poses')}{block} "
            f"{_plural(count, 'gives', 'give')} "
            "non-finite output (non-finite coordinates in the input, or overflow); "
            f"first at index {offset + first}"
        )
    count, first = (int(v) for v in status[POSE_DEGENERATE])
    if count:
        raise ValueError(
            f"source_3d: {count} of {n} "
            f"{_plural(count, 'pose', 'poses')}{block} "
            f"{_plural(count, 'has', 'have')} "
            "zero extent in both x and y, which puts it at depth 0 (on the camera "
            f"centre); first at index {offset + first}"
        )
    count, first = (int(v) for v in status[POSE_NO_DEPTH])
    if count:
        raise ValueError(
            f"depth: for {count} of {n} poses no depth "
            "in front of the camera gives the perspective projection the paired "
            "target's box scale (the target box is larger than the pose can "
            "appear); pass check=False to place such poses at their "
            f"weak-perspective depth instead; first at index {first}"
        )
    count, first = (int(v) for v in status[POSE_BEHIND])
    if count:
        raise ValueError(
            f"return_2d: {count} of {n} aligned "
            f"{_plural(count, 'pose has', 'poses have')} a joint at or behind the "
            "camera plane (z <= 0), where the projection is undefined (a close "
            "target box for a deep pose; depth='perspective' avoids it); first at "
            f"index {first}"
        )


def raise_for_target_status(status, m, camera_name="camera", offset=0, total=None):
    """Raise the error a preparation kernel's status array describes, if any.

    Parameters
    ----------
    status : (3, 2) int64 ndarray
        As the kernel wrote it: first indices local to the call.
    m : int
        Number of targets in the call (rows of the camera array in
        ``mode="poseda"``).
    camera_name : str
        How to call the camera argument in the message.
    offset, total : int, optional
        For a call that prepares the targets ``offset .. offset + m - 1`` of a
        set of `total` (one block of :mod:`gpa_arrays.dask`): the message quotes
        global indices and names the block.

    Raises
    ------
    ValueError
    """
    block = _block(m, offset, total)
    count, first = (int(v) for v in status[TARGET_NONFINITE])
    if count:
        raise ValueError(
            f"target_2d: {count} of {m} "
            f"{_plural(count, 'target', 'targets')}{block} "
            f"{_plural(count, 'has', 'have')} non-finite "
            f"coordinates; first at index {offset + first}"
        )
    count, first = (int(v) for v in status[TARGET_DEGENERATE])
    if count:
        raise ValueError(
            f"target_2d: {count} of {m} "
            f"{_plural(count, 'target', 'targets')}{block} "
            f"{_plural(count, 'has', 'have')} a degenerate 2D box "
            "(width + height == 0, which makes the depth infinite); "
            f"first at index {offset + first}"
        )
    count, first = (int(v) for v in status[TARGET_CAMERA])
    if count:
        raise ValueError(
            f"{camera_name}: {count} of {m} "
            f"{_plural(count, 'row', 'rows')}{block} "
            f"{_plural(count, 'has', 'have')} "
            "a focal length that is not finite and positive or a non-finite "
            f"centre; first at row {offset + first}"
        )
    count, first = (int(v) for v in status[TARGET_DISTORTION])
    if count:
        raise ValueError(
            f"{camera_name}: {count} of {m} {_plural(count, 'row has', 'rows have')} "
            "a non-finite distortion coefficient (columns 4 to 8: k1, k2, k3, p1, "
            f"p2); first at row {first}"
        )
