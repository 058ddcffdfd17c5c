"""Linear pinhole projection, the one place the statistics and data code project.

Placeholder for ``gpa_arrays.camera.project`` (the camera issue), which adds the
Human3.6M distortion model for 9-value camera rows. For 4-value rows that
function computes the same ``f * X[..., :2] / Z + c``, so swapping it in here
changes no result. Rows of 9 values are accepted only when their distortion
coefficients are all zero, so nothing is silently projected without the
distortion it asks for.
"""

from __future__ import annotations

import numpy as np

__all__ = ["project_linear"]


def project_linear(points_3d, camera):
    """Project camera-space points with a linear pinhole camera.

    Parameters
    ----------
    points_3d : (..., J, 3) float array, metres, camera space
        Points with positive depth ``Z``.
    camera : (4,), (9,), (..., 4) or (..., 9) float array, normalised units
        ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` rows (VideoPose3D order);
        leading dimensions broadcast against those of `points_3d` (without
        its joint axis).

    Returns
    -------
    (..., J, 2) float array
        ``(fx * X / Z + cx, fy * Y / Z + cy)``, normalised screen coordinates.

    Raises
    ------
    ValueError
        For a camera row of another length, or 9-value rows with non-zero
        distortion coefficients.
    """
    xp = _namespace(points_3d)
    camera = xp.asarray(camera)
    if camera.shape[-1:] not in ((4,), (9,)):
        raise ValueError(
            f"camera: expected rows of 4 or 9 values [fx, fy, cx, cy, ...], got "
            f"shape {camera.shape}"
        )
    if camera.shape[-1] == 9 and bool(xp.any(camera[..., 4:] != 0)):
        raise ValueError(
            "camera: non-zero distortion coefficients are not supported by the "
            "linear projection (until gpa_arrays.camera.project lands); pass "
            "[fx, fy, cx, cy] rows"
        )
    camera = camera[..., None, :4].astype(points_3d.dtype, copy=False)
    xy = points_3d[..., :2] / points_3d[..., 2:3]
    return xy * camera[..., 0:2] + camera[..., 2:4]


def _namespace(x):
    """The array module of `x`: CuPy for CuPy arrays, NumPy otherwise."""
    module = type(x).__module__.partition(".")[0]
    if module == "cupy":
        import cupy

        return cupy
    return np
