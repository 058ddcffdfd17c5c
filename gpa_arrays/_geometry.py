"""Per-point camera and per-pose depth arithmetic shared by every backend.

Each function here is written once and used twice: the NumPy reference applies
it to whole arrays (broadcasting), the Numba kernels compile the very same
function for scalars (see ``numba_``, which registers them with
``register_jitable``). Both evaluate the same IEEE operations in the same order,
so the two backends agree bit for bit. The CUDA twins in
``_backends/kernels/*.cu`` must keep this order too (and be compiled without
fused multiply-add contraction) to stay bit-identical.

Constants of the working dtype (``one``) are passed in rather than written as
literals: Numba would evaluate ``float32 op 1.0`` in float64, NumPy in float32.

Camera model
------------
The Human3.6M camera model as VideoPose3D implements it (Pavllo et al., CVPR
2019, ``common/camera.py``: ``project_to_2d`` and ``project_to_2d_linear``), not
OpenCV's: the image-plane coordinates ``X / Z`` are clamped to ``[-1, 1]`` before
anything else (in both the linear and the distorted variant), then::

    r2     = x*x + y*y
    radial = 1 + (k1 r2 + k2 r2^2 + k3 r2^3)
    tan    = p1 x + p2 y
    u      = fx * (x * (radial + tan) + p1 r2) + cx
    v      = fy * (y * (radial + tan) + p2 r2) + cy

and the linear variant is ``u = fx * x + cx``, ``v = fy * y + cy``. Intrinsics are
in normalised units (see :mod:`gpa_arrays.camera`); the distortion coefficients
are dimensionless.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PERSPECTIVE_MAX_ITERATIONS",
    "PERSPECTIVE_TOLERANCE",
    "box_and_slope",
    "clamp_unit",
    "depth_update",
    "joint_offset",
    "project_distorted",
    "project_linear",
    "select",
    "track_max",
    "track_min",
]


def clamp_unit(a, one):
    """``a`` clamped to ``[-one, one]``; NaN stays NaN (as ``numpy.clip``).

    Written with two selects rather than ``minimum(maximum(...))``: Numba's
    scalar ``numpy.maximum`` branches on NaN, which keeps the per-joint loops
    of the kernels from vectorising.
    """
    return select(a < -one, -one, select(a > one, one, a))


def project_linear(x, y, z, fx, fy, cx, cy, one):
    """Pinhole projection of camera-space ``(x, y, z)``; returns ``(u, v)``."""
    a = clamp_unit(x / z, one)
    b = clamp_unit(y / z, one)
    return fx * a + cx, fy * b + cy


def project_distorted(x, y, z, fx, fy, cx, cy, k1, k2, k3, p1, p2, one):
    """Projection with the H36M radial and tangential distortion model."""
    a = clamp_unit(x / z, one)
    b = clamp_unit(y / z, one)
    r2 = a * a + b * b
    r4 = r2 * r2
    r6 = r4 * r2
    radial = one + ((k1 * r2 + k2 * r4) + k3 * r6)
    factor = radial + (p1 * a + p2 * b)
    return fx * (a * factor + p1 * r2) + cx, fy * (b * factor + p2 * r2) + cy


# --- depth under full perspective --------------------------------------------------
#
# GPA places a pose at root depth Z on the ray of the target root, (Z u, Z v, Z).
# Joint k, at (a_x, a_y, c) from the root, then projects to
#
#     fx * (Z u + a_x) / (Z + c) + cx  =  root image + fx * (a_x - u c) / (Z + c)
#
# so its offset from the root's image is b / (Z + c) per axis, with b = a - u c
# (y likewise with v). The projected box scale is
#
#     T(Z) / 2,   T(Z) = fx (max_k - min_k of b_x / (Z + c))
#                      + fy (max_k - min_k of b_y / (Z + c)),
#
# taken over all joints including the root (offset 0). On the domain where every
# joint is in front of the camera, Z > Z_min = max(0, max_k -c_k), each offset
# with b > 0 decreases and each with b < 0 increases with Z, so the maximum
# decreases and the minimum increases: T is non-increasing (convex, too), tends
# to 0 as Z grows, and to infinity as Z approaches Z_min unless the joint that
# reaches the camera plane first has b = 0. So T(Z) = d (d = 2 s, the target's
# box) has exactly one solution whenever one exists. It is found by Newton's
# method on 1 / T, which is exactly linear in Z for a single joint and close to
# linear in general, inside a bracket [lo, hi] that every evaluation tightens; a
# step that leaves the bracket (or a NaN step) is replaced by bisection, or by
# doubling Z while no upper bound is known.
#
# All of this runs in float64 whatever the data dtype. The NumPy reference (all
# poses at once, converged poses dropped) and the Numba kernel (one pose, early
# exit) make the same operations in the same order and take the same branches,
# so they agree bit for bit (tested for float32 and float64 data, specialised
# and generic kernels); so does the CUDA twin (``kernels/geometry.cuh``, compiled
# without contraction into fused multiply-adds; tested on a host build of the
# CUDA source). The contract is looser: the same depth to within the tolerance
# below, which is what a twin compiled with fused multiply-add would give.

#: Iteration budget (evaluations of T) of the perspective depth solve. Measured
#: with benchmarks/perspective_depth.py (20,000 poses per row, starting from the
#: weak depth): standing subjects from 14 m down to 0.6 m need a median of 3 to 4
#: and at most 7; Gaussian blobs of joints at 0.6 m at most 13. The budget is
#: three times that; a pose that exhausts it is reported as unsolved.
PERSPECTIVE_MAX_ITERATIONS = 40

#: Relative tolerance on the projected box scale, ``|T - d| <= tol * d``. T is a
#: sum of a few float64 quotients (rounding error about 1e-15 relative), so this
#: is reachable for every solvable pose while leaving six orders of magnitude of
#: margin below the 1e-6 the tests ask of the final, dtype-rounded placement.
PERSPECTIVE_TOLERANCE = 1e-12


def select(condition, a, b):
    """``a`` where `condition`, else ``b`` (``numpy.where``; a branch in Numba)."""
    return np.where(condition, a, b)


def joint_offset(a, c, ray, inv_q):
    """Projected offset of a joint from the root's image, per unit focal length.

    With ``inv_q = 1 / (z + c)`` (shared by both axes of the joint), returns
    ``(p, g)``: ``p = (a - ray * c) / (z + c)`` and ``g = p / (z + c)``, the
    negated derivative of ``p`` with respect to the root depth ``z``.
    """
    p = (a - ray * c) * inv_q
    return p, p * inv_q


def track_max(p, g, p_max, g_max):
    """Keep the larger offset and its slope; ties keep the earlier joint."""
    up = p > p_max
    return select(up, p, p_max), select(up, g, g_max)


def track_min(p, g, p_min, g_min):
    """Keep the smaller offset and its slope; ties keep the earlier joint."""
    down = p < p_min
    return select(down, p, p_min), select(down, g, g_min)


def box_and_slope(fx, fy, x_max, x_min, y_max, y_min, gx_max, gx_min, gy_max, gy_min):
    """``T`` (twice the projected box scale) and ``dT / dZ`` from the extremes."""
    t = fx * (x_max - x_min) + fy * (y_max - y_min)
    slope = fx * (gx_min - gx_max) + fy * (gy_min - gy_max)
    return t, slope


def depth_update(z, t, slope, d, lo, hi):
    """One safeguarded Newton step on ``1 / T(z) - 1 / d``; returns ``(z, lo, hi)``.

    `t` and `slope` are ``T(z)`` and ``T'(z)``; the bracket ``[lo, hi]`` is
    tightened with the sign of ``T(z) - d`` first (T is decreasing).
    """
    above = t > d
    lo = select(above, z, lo)
    hi = select(above, hi, z)
    step = z + t * (d - t) / (d * slope)
    inside = (step > lo) & (step < hi)
    fallback = select(hi < np.inf, (lo + hi) * 0.5, z + z)
    return select(inside, step, fallback), lo, hi
