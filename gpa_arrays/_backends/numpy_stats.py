"""Distribution statistics, NumPy reference (the oracle of ``numba_stats``).

Same function names and argument order in every backend:

``pose_statistics(poses, root)``
    ``(N, 3)`` rows ``[scale, root_x, root_y]`` of ``(N, J, 2)`` poses, where
    ``scale = ((max x - min x) + (max y - min y)) / 2`` is the 2D box scale GPA
    matches (the ``s`` of the published function).
``wasserstein_sorted(a, b)``
    The 1-D Wasserstein-1 distance of two *sorted*, finite, non-empty samples.

The functions work on any array module with NumPy's interface (CuPy included):
they only use methods and functions of the array's own module. They belong to
the backend interface (:mod:`._interface`): :mod:`.numpy_` and :mod:`.cupy_`
export them as they are.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pose_statistics", "wasserstein_sorted"]


def _namespace(x):
    module = type(x).__module__.partition(".")[0]
    if module == "cupy":
        import cupy

        return cupy
    return np


def pose_statistics(poses, root):
    """Box scale and root position of each 2D pose.

    Parameters
    ----------
    poses : (N, J, 2) float array
        2D poses, normalised screen coordinates.
    root : int
        Root joint, in ``[0, J)``.

    Returns
    -------
    (N, 3) array of the poses' dtype
        ``[scale, root_x, root_y]`` per pose.
    """
    xp = _namespace(poses)
    x = poses[..., 0]
    y = poses[..., 1]
    out = xp.empty((poses.shape[0], 3), dtype=poses.dtype)
    # same operation order as the GPA kernels: (w + h) / 2
    out[:, 0] = ((x.max(axis=1) - x.min(axis=1)) + (y.max(axis=1) - y.min(axis=1))) / 2
    out[:, 1] = x[:, root]
    out[:, 2] = y[:, root]
    return out


def wasserstein_sorted(a, b):
    """W1 distance of two sorted samples: the area between their CDFs.

    With ``n = len(a)``, ``m = len(b)`` and all ``n + m`` values merged in
    order ``v_0 <= v_1 <= ...``, the empirical CDFs are constant on each
    ``[v_k, v_k+1)``: ``F_a = A_k / n`` and ``F_b = B_k / m`` with ``A_k``,
    ``B_k`` the number of values of each sample among ``v_0 .. v_k``. So::

        W1 = sum_k |A_k / n - B_k / m| (v_k+1 - v_k)
           = sum_k |m A_k - n B_k| (v_k+1 - v_k) / (n m)

    The counts are integers, so the CDF difference is exact; ties contribute
    zero-width intervals whatever their order.

    Parameters
    ----------
    a : (n,) float array, sorted ascending, finite, ``n >= 1``
    b : (m,) float array, sorted ascending, finite, ``m >= 1``

    Returns
    -------
    float
    """
    xp = _namespace(a)
    n, m = a.shape[0], b.shape[0]
    values = xp.concatenate([a, b])
    # a stable sort of two sorted runs is a linear merge
    order = xp.argsort(values, kind="stable")
    merged = values[order]
    count_a = xp.cumsum(order < n)[:-1]
    count_b = xp.arange(1, n + m, dtype=count_a.dtype) - count_a
    gap = xp.abs(count_a * m - count_b * n)
    return float(xp.sum(gap * xp.diff(merged)) / (n * m))
