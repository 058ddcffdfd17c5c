"""Distribution statistics of 2D poses: what GPA moves, and how far it moved it.

GPA exists to carry the source domain's distributions of 2D box scale and root
position over to the target domain's (PoseDA, Chai et al., ICCV 2023, figure S1).
This module measures them:

* :func:`pose_statistics`: per pose, the 2D box scale
  ``s = ((max x - min x) + (max y - min y)) / 2`` (the quantity GPA matches)
  and the root position, of 2D poses or of 3D poses seen through a camera;
* :func:`summary`: mean, standard deviation, extremes and quantiles of a sample;
* :func:`wasserstein`: the 1-D Wasserstein-1 (earth mover's) distance between
  two samples, equal to :func:`scipy.stats.wasserstein_distance` for unweighted
  samples, computed from its definition (the area between the two empirical
  CDFs) without SciPy.

Backends: ``"numpy"`` (the reference) and ``"numba"`` (one fused parallel pass
for :func:`pose_statistics`, bit-identical; a sequential merge for
:func:`wasserstein`, equal to rounding). ``"auto"`` picks Numba when it imports.
"""

from __future__ import annotations

import importlib
import operator
from typing import NamedTuple

import numpy as np

from ._projection import project_linear

__all__ = [
    "PoseStatistics",
    "Summary",
    "pose_statistics",
    "summary",
    "wasserstein",
]

#: Names of the three per-pose statistics, in the order of :class:`PoseStatistics`.
STATISTICS = ("scale", "root_x", "root_y")

#: Quantiles :func:`summary` reports unless told otherwise.
DEFAULT_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


class Summary(NamedTuple):
    """Summary of a 1-D sample (see :func:`summary`)."""

    n: int
    mean: float
    std: float
    min: float
    max: float
    quantiles: dict


class PoseStatistics(NamedTuple):
    """Per-pose 2D box scale and root position (see :func:`pose_statistics`).

    Attributes
    ----------
    scale : (N,) float array
        ``((max x - min x) + (max y - min y)) / 2``, normalised units.
    root_x, root_y : (N,) float arrays
        Root joint position, normalised screen coordinates.
    """

    scale: np.ndarray
    root_x: np.ndarray
    root_y: np.ndarray

    def summary(self, quantiles=DEFAULT_QUANTILES) -> dict:
        """``{"scale": Summary, "root_x": Summary, "root_y": Summary}``."""
        return {name: summary(getattr(self, name), quantiles) for name in STATISTICS}

    def wasserstein(self, other, *, backend="auto") -> dict:
        """W1 distance of each statistic to `other`'s, as a dict of floats."""
        if not isinstance(other, PoseStatistics):
            raise TypeError(
                f"other: expected PoseStatistics, got {type(other).__name__}"
            )
        return {
            name: wasserstein(
                getattr(self, name), getattr(other, name), backend=backend
            )
            for name in STATISTICS
        }


def _namespace(x):
    """NumPy, or CuPy for CuPy arrays (decided from the type, never imported)."""
    module = type(x).__module__.partition(".")[0]
    if module == "cupy":
        return importlib.import_module("cupy")
    return np


def _as_array(x, name):
    xp = _namespace(x)
    try:
        array = xp.asarray(x)
    except Exception as exc:
        raise TypeError(
            f"{name}: expected an array, got {type(x).__name__} ({exc})"
        ) from exc
    if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
        raise TypeError(
            f"{name}: expected a real floating or integer dtype, got {array.dtype}"
        )
    if array.dtype.kind != "f" or array.dtype == np.float16:
        array = array.astype(np.float64)
    return array


def _module(backend):
    """The statistics module of a backend (``"auto"``: the fastest usable)."""
    from ._api import _resolve_backend

    name, _ = _resolve_backend(backend)
    return importlib.import_module(f"._backends.{name}_stats", __package__)


def _raise_nonfinite(bad, name, what):
    count = int(bad.sum())
    if count:
        first = int(bad.argmax())
        raise ValueError(
            f"{name}: {count} of {bad.shape[0]} {what} non-finite; first at index "
            f"{first}"
        )


def pose_statistics(poses, camera=None, *, root=0, backend="auto"):
    """Per-pose 2D box scale and root position.

    Parameters
    ----------
    poses : (N, J, 2) or (N, J, 3) float array
        2D poses in normalised screen coordinates, or camera-space 3D poses in
        metres (then `camera` is required and the poses are projected first).
    camera : (4,), (9,), (N, 4) or (N, 9) float array, optional
        ``[fx, fy, cx, cy, ...]`` normalised intrinsics, one row for all poses
        or one per pose; only with 3D poses. Projection is linear (pinhole);
        9-value rows must have zero distortion for now.
    root : int
        Root joint index (e.g. 14 for MPI-INF-3DHP-17 poses).
    backend : {"auto", "numba", "numpy"}
        Where to compute; the results are identical.

    Returns
    -------
    PoseStatistics
        ``scale``, ``root_x``, ``root_y``: (N,) arrays of the poses' dtype
        (float64 for integer or float16 poses).

    Raises
    ------
    ValueError
        Wrong shapes, a root out of range, a camera given with 2D poses or
        missing with 3D poses, or poses with non-finite coordinates (the count
        and the first index are named).
    TypeError
        Non-numeric poses.

    Examples
    --------
    >>> import numpy as np
    >>> from gpa_arrays import stats
    >>> pose = np.array([[[0.0, 0.0], [0.25, -0.5], [-0.25, 0.25]]])
    >>> st = stats.pose_statistics(pose)  # w = 0.5, h = 0.75
    >>> float(st.scale[0]), float(st.root_x[0]), float(st.root_y[0])
    (0.625, 0.0, 0.0)
    """
    poses = _as_array(poses, "poses")
    if poses.ndim != 3 or poses.shape[2] not in (2, 3) or poses.shape[1] == 0:
        raise ValueError(
            f"poses: expected shape (N, J, 2) or (N, J, 3) with J >= 1, got "
            f"{poses.shape}"
        )
    if isinstance(root, bool):
        raise TypeError("root: expected an integer joint index, got bool")
    root = operator.index(root)
    j = poses.shape[1]
    if not -j <= root < j:
        raise ValueError(f"root: expected a joint index in [0, {j}), got {root}")
    root %= j
    if poses.shape[2] == 3:
        if camera is None:
            raise ValueError(
                "camera: required with 3D poses (they are projected through it)"
            )
        camera = _as_array(camera, "camera")
        if camera.shape not in ((4,), (9,), (poses.shape[0], 4), (poses.shape[0], 9)):
            raise ValueError(
                f"camera: expected shape (4,), (9,), ({poses.shape[0]}, 4) or "
                f"({poses.shape[0]}, 9), got {camera.shape}"
            )
        poses = project_linear(poses, camera)
    elif camera is not None:
        raise ValueError("camera: only used with 3D poses; got 2D poses and a camera")
    module = _module(backend)
    if _namespace(poses) is np:
        poses = np.ascontiguousarray(poses)
    rows = module.pose_statistics(poses, root)
    xp = _namespace(rows)
    _raise_nonfinite(~xp.isfinite(rows).all(axis=1), "poses", "poses are")
    columns = xp.ascontiguousarray(rows.T)
    return PoseStatistics(columns[0], columns[1], columns[2])


def _sample(values, name):
    values = _as_array(values, name)
    if values.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sample, got shape {values.shape}")
    if values.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one value, got an empty sample")
    _raise_nonfinite(~_namespace(values).isfinite(values), name, "values are")
    return values


def summary(values, quantiles=DEFAULT_QUANTILES):
    """Mean, standard deviation, extremes and quantiles of a 1-D sample.

    Parameters
    ----------
    values : (n,) float array
        Finite values, ``n >= 1``.
    quantiles : sequence of float in [0, 1]
        Quantile levels (linear interpolation, NumPy's default).

    Returns
    -------
    Summary
        ``n``, ``mean``, ``std`` (population, ``ddof=0``), ``min``, ``max``
        and ``quantiles`` (a dict level -> value); accumulated in float64.

    Raises
    ------
    ValueError
        For an empty or non-finite sample, or levels outside [0, 1].

    Examples
    --------
    >>> from gpa_arrays import stats
    >>> s = stats.summary([1.0, 2.0, 3.0, 4.0], quantiles=(0.5,))
    >>> s.mean, round(s.std, 4), s.quantiles
    (2.5, 1.118, {0.5: 2.5})
    """
    values = _sample(values, "values")
    xp = _namespace(values)
    levels = [float(q) for q in quantiles]
    if any(not 0.0 <= q <= 1.0 for q in levels):
        raise ValueError(f"quantiles: expected levels in [0, 1], got {levels}")
    values = values.astype(np.float64, copy=False)
    found = xp.quantile(values, xp.asarray(levels)) if levels else []
    return Summary(
        n=int(values.shape[0]),
        mean=float(values.mean()),
        std=float(values.std()),
        min=float(values.min()),
        max=float(values.max()),
        quantiles={q: float(v) for q, v in zip(levels, found, strict=True)},
    )


def wasserstein(a, b, *, backend="auto"):
    """The 1-D Wasserstein-1 distance between two samples.

    ``W1 = integral |F_a(t) - F_b(t)| dt`` over the empirical CDFs ``F_a``,
    ``F_b``: the least mean distance values must travel to turn one sample
    into the other. Equal to ``scipy.stats.wasserstein_distance(a, b)``
    (unweighted); computed in float64 from the sorted samples (the formula is
    in ``gpa_arrays._backends.numpy_stats.wasserstein_sorted``).

    Parameters
    ----------
    a : (n,) float array
        First sample, finite, ``n >= 1``.
    b : (m,) float array
        Second sample, finite, ``m >= 1``.
    backend : {"auto", "numba", "numpy"}
        Where to merge the sorted samples; results agree to rounding.

    Returns
    -------
    float
        In the units of the samples.

    Raises
    ------
    ValueError
        For samples that are empty, not 1-D or not finite.

    Examples
    --------
    >>> from gpa_arrays import stats
    >>> stats.wasserstein([0.0, 1.0, 3.0], [5.0, 6.0, 8.0])
    5.0
    >>> stats.wasserstein([0.0, 1.0], [0.0, 0.0, 1.0, 1.0])
    0.0
    """
    a = _sample(a, "a")
    b = _sample(b, "b")
    module = _module(backend)
    xp = _namespace(a)
    a = xp.sort(a.astype(np.float64, copy=False))
    b = xp.sort(b.astype(np.float64, copy=False))
    return module.wasserstein_sorted(a, b)
