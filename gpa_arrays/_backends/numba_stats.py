"""Distribution statistics, Numba kernels (tested against ``numpy_stats``).

``pose_statistics`` makes one parallel pass over the poses instead of the
reference's five (four reductions and a gather over strided views); on finite
poses its results are bit-identical (min, max, one subtraction per axis, one
addition, one halving, in the same order), and a pose with a non-finite
coordinate gets a NaN scale (the reference gets NaN or inf), which the caller
rejects either way. ``wasserstein_sorted`` replaces the reference's
concatenate, merge-sort, cumulative sum and gathers by one sequential merge of
the two sorted samples; it sums the same terms in a different order, so it
agrees to rounding (a few ulps of the sum), not bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from .. import _config
from .numba_ import use_parallel

__all__ = ["pose_statistics", "wasserstein_sorted"]

_KW: dict[str, Any] = {
    "cache": True,
    "fastmath": _config.FASTMATH,
    "error_model": "numpy",
}


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


# The parallel and serial twins (see numba_._TWINS): the launcher picks the
# serial one for small inputs and in a forked child of a process that started
# the OpenMP pool, which would kill the child.
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
