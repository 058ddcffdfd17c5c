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

import contextlib
import importlib
from typing import NamedTuple

import numpy as np

from . import _interop
from . import camera as _camera
from ._api import _resolve_backend
from ._status import POINT, SAMPLE, STATS, STATS_BEHIND, raise_for_mask
from ._typing import ArrayLike, BackendName
from ._validate import as_array, camera_rows, flag, joint_index, real

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


def _as_array(x, name, xp=np):
    """`x` as a float array of module `xp` (float16 and integers as float64)."""
    array = real(as_array(x, name, xp), name)
    if array.dtype.kind != "f" or array.dtype == np.float16:
        array = array.astype(np.float64)
    return array


def _stats_module(backend, device):
    """The statistics kernels of the backend that runs on `device`.

    The NumPy reference's functions use only their array's own module, so the
    CUDA backend runs them on CuPy arrays.
    """
    name, _ = _resolve_backend(backend, device)
    module = "numpy" if name == "cupy" else name
    return importlib.import_module(f"._backends.{module}_stats", __package__)


def pose_statistics(
    poses: ArrayLike,
    camera: ArrayLike | None = None,
    *,
    root: int = 0,
    backend: BackendName = "auto",
    check: bool = True,
) -> PoseStatistics:
    """Per-pose 2D box scale and root position.

    Parameters
    ----------
    poses : (N, J, 2) or (N, J, 3) float array
        2D poses in normalised screen coordinates, or camera-space 3D poses in
        metres (then `camera` is required and the poses are projected first).
    camera : (4,), (9,), (N, 4) or (N, 9) float array, optional
        ``[fx, fy, cx, cy, ...]`` normalised intrinsics, one row for all poses
        or one per pose; only with 3D poses, which are projected with
        :func:`gpa_arrays.camera.project` (pinhole for 4-value rows, the H36M
        distortion model for 9-value rows).
    root : int
        Root joint index (e.g. 14 for MPI-INF-3DHP-17 poses).
    backend : {"auto", "numba", "numpy", "cupy"}
        Where to compute; the results are identical. ``"auto"`` runs CUDA
        arrays on their device and host arrays with the fastest host backend.
    check : bool
        Raise on poses with a non-finite coordinate (and, for 3D poses, on
        joints at or behind the camera plane). With ``check=False`` such poses
        get non-finite statistics.

    Returns
    -------
    PoseStatistics
        ``scale``, ``root_x``, ``root_y``: (N,) arrays of the poses' dtype
        (float64 for integer or float16 poses), of the type and on the device
        of `poses` (NumPy, CuPy, torch or another DLPack array).

    Raises
    ------
    ValueError
        Wrong shapes, a root out of range, a camera given with 2D poses, or
        poses with non-finite coordinates (the count and the first index are
        named).
    TypeError
        Non-numeric poses, or a camera missing with 3D poses (as in
        :func:`gpa_arrays.gpa`).

    Examples
    --------
    >>> import numpy as np
    >>> from gpa_arrays import stats
    >>> pose = np.array([[[0.0, 0.0], [0.25, -0.5], [-0.25, 0.25]]])
    >>> st = stats.pose_statistics(pose)  # w = 0.5, h = 0.75
    >>> float(st.scale[0]), float(st.root_x[0]), float(st.root_y[0])
    (0.625, 0.0, 0.0)
    """
    if _interop.plain_host(poses, camera):
        return _pose_statistics(poses, camera, root, backend, check, np, _interop.HOST)
    with _interop.Call("poses", poses=poses, camera=camera) as call:
        found = _pose_statistics(
            call["poses"], call["camera"], root, backend, check, call.xp, call.device
        )
        return PoseStatistics(*(call.wrap(column) for column in found))


def _pose_statistics(poses, camera, root, backend, check, xp, device):
    poses = _as_array(poses, "poses", xp)
    if poses.ndim != 3 or poses.shape[2] not in (2, 3) or poses.shape[1] == 0:
        raise ValueError(
            f"poses: expected shape (N, J, 2) or (N, J, 3) with J >= 1, got "
            f"{poses.shape}"
        )
    root = joint_index(root, poses.shape[1], "root")
    check = flag(check, "check")
    if poses.shape[2] == 3:
        if camera is None:
            raise TypeError(
                "camera: required with 3D poses (they are projected through it)"
            )
        camera = camera_rows(camera, poses.shape[0], "pose", xp)
        if check:
            _check_projectable(poses, camera, xp)
        # checked above in the words of this function's own arguments
        poses = _camera.project(poses, camera[:, None], backend=backend, check=False)
    elif camera is not None:
        raise ValueError("camera: only used with 3D poses; got 2D poses and a camera")
    module = _stats_module(backend, device)
    rows = module.pose_statistics(xp.ascontiguousarray(poses), root)
    if check:
        raise_for_mask(~xp.isfinite(rows).all(axis=1), STATS[0], rows.shape[0])
    columns = xp.ascontiguousarray(rows.T)
    return PoseStatistics(columns[0], columns[1], columns[2])


def _check_projectable(poses, camera, xp):
    """Raise for camera rows and 3D poses that :func:`camera.project` refuses.

    Named as this function's arguments: `camera` rows (one row for all counts
    once) and `poses` with a non-finite coordinate or a joint at or behind the
    camera plane, by pose index.
    """
    n = poses.shape[0]
    good = (camera[:, :2] > 0).all(axis=1) & xp.isfinite(camera).all(axis=1)
    if n and camera.strides[0] == 0:  # one row for all
        good = good[:1]
    raise_for_mask(~good, POINT[0], good.shape[0])
    nonfinite = ~xp.isfinite(poses).all(axis=(1, 2))
    raise_for_mask(nonfinite, STATS[0], n)
    raise_for_mask(~(poses[..., 2] > 0).all(axis=1), STATS_BEHIND, n)


def _sample(values, name, xp):
    values = _as_array(values, name, xp)
    if values.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sample, got shape {values.shape}")
    if values.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one value, got an empty sample")
    raise_for_mask(~xp.isfinite(values), SAMPLE._replace(argument=name), len(values))
    return values


@contextlib.contextmanager
def _samples(**named):
    """``(xp, views)``: samples of any array type as NumPy or CuPy arrays."""
    arrays = [v for v in named.values() if hasattr(v, "__dlpack__")]
    if _interop.plain_host(*named.values()) or len(arrays) != len(named):
        yield np, named  # NumPy arrays, or Python data converted on the host
        return
    with _interop.Call(next(iter(named)), **named) as call:
        yield call.xp, {name: call[name] for name in named}


def summary(values: ArrayLike, quantiles=DEFAULT_QUANTILES) -> Summary:
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
    with _samples(values=values) as (xp, views):
        return _summary(_sample(views["values"], "values", xp), quantiles, xp)


def _summary(values, quantiles, xp):
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


def wasserstein(a: ArrayLike, b: ArrayLike, *, backend: BackendName = "auto") -> float:
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
    with _samples(a=a, b=b) as (xp, views):
        a = _sample(views["a"], "a", xp)
        b = _sample(views["b"], "b", xp)
        device = _interop.HOST if xp is np else _interop.device_of(a)
        return _wasserstein(a, b, _stats_module(backend, device), xp)


def _wasserstein(a, b, module, xp):
    a = xp.sort(a.astype(np.float64, copy=False))
    b = xp.sort(b.astype(np.float64, copy=False))
    return module.wasserstein_sorted(a, b)
