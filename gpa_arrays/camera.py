"""Camera geometry in the conventions of the 3D human pose literature.

Screen normalisation, normalised intrinsics, extrinsics and projection, as
VideoPose3D defines them (Pavllo, Feichtenhofer, Grangier and Auli, CVPR 2019,
``common/camera.py`` and ``common/h36m_dataset.py``), which Human3.6M and
MPI-INF-3DHP pipelines (SemGCN, PoseAug, PoseDA) share.

Conventions
-----------
Normalised screen coordinates
    Both axes are divided by the image *width*: ``x_n = 2 x / w - 1`` and
    ``y_n = 2 y / w - h / w``, so x spans [-1, 1] and y [-h/w, h/w] and the
    aspect ratio is kept. :func:`normalize_screen` and
    :func:`image_coordinates` convert.
Normalised intrinsics
    ``[fx, fy, cx, cy]`` or ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]``: focal
    lengths ``2 f / w`` (both by the width), centre as a screen point above,
    distortion coefficients unchanged (they act on ``X / Z``, which has no
    unit). Example: Human3.6M camera 54138969 (1000 x 1002 px, f = (1145.0,
    1143.8) px, c = (512.5, 515.5) px) gives about (2.290, 2.288, 0.025,
    0.029). :func:`normalize_intrinsics`, :func:`intrinsics_from_matrix`.
The PoseDA docstring's rule (``rule="poseda"``)
    The published GPA function's docstring normalises ``fy, cy`` by the
    *height* (``2 / h``) instead. It agrees with the width rule only for
    square images (MPI-INF-3DHP TS1-4 are 2048 x 2048; TS5-6 are 1920 x 1080).
    It is offered only when asked for, by every function that depends on it;
    2D poses and intrinsics must of course use the same rule. We read the
    docstring's ``c * 2 / w`` as ``c * 2 / w - 1``, consistent with its remark
    that the centres come out near 0.
Extrinsics
    ``rotation`` is the camera's orientation in the world: a unit quaternion
    ``(w, x, y, z)``, scalar first, or the equivalent 3x3 matrix ``R``, which
    maps camera axes to world axes; ``position`` is the camera centre in world
    coordinates (metres). Then ``X_cam = R^T (X_world - position)``. For an
    OpenCV-style ``[R_cv | t_cv]`` (``X_cam = R_cv X_world + t_cv``) pass
    ``rotation=R_cv.T`` and ``position=-R_cv.T @ t_cv``.
Projection
    The Human3.6M camera model of VideoPose3D (not OpenCV's; see
    ``gpa_arrays._geometry``): ``X / Z`` clamped to [-1, 1], then radial
    and tangential distortion for 9-value rows, linear for 4-value rows.

Batch conventions
-----------------
Per-frame camera parameters are aligned with the *leading* axes of the points,
as in VideoPose3D's ``project_to_2d`` (camera rows ``(N, C)`` for points
``(N, J, 3)``): a parameter array with batch shape ``B`` applies to points whose
leading axes start with ``B`` (after broadcasting size-1 axes). A single
camera, a scalar width, one rotation: broadcast to everything.

Backends
--------
:func:`project` runs on ``"numpy"`` (the reference), ``"numba"`` (a fused
parallel kernel) and ``"cupy"`` (a CUDA kernel, for CuPy arrays and torch
CUDA tensors), all bit-identical to the reference. The other functions are a
few vectorised NumPy operations each, on host arrays.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from . import _interop
from ._api import _HOST_CALL, _resolve_backend
from ._status import POINT, POINT_CAMERA, raise_for_status
from ._typing import ArrayLike, BackendName
from ._validate import as_array, choice, flag, out_array, result_dtype

__all__ = [
    "camera_to_world",
    "image_coordinates",
    "intrinsics_from_matrix",
    "normalize_intrinsics",
    "normalize_screen",
    "project",
    "quaternion_to_matrix",
    "world_to_camera",
]

_RULES = ("width", "poseda")
#: The normalisation rules of :func:`normalize_screen` and its kin.
Rule = Literal["width", "poseda"]

#: How far a rotation may be from exact before it is refused: ``| |q| - 1 |``
#: for quaternions, the largest entry of ``R^T R - I`` for matrices. Data stored
#: in float32 or printed with 6 digits is well inside; a wrong array is not.
ROTATION_TOLERANCE = 1e-4


# --- argument helpers -----------------------------------------------------------------


def _float_array(x, name):
    """`x` as a floating ndarray (float32/float64 kept, others float64)."""
    array = as_array(x, name)
    if array.dtype.kind not in "fiu":
        raise TypeError(
            f"{name}: expected a real floating or integer dtype, got {array.dtype}"
        )
    dtype = result_dtype(array.dtype, name)
    return array if array.dtype == dtype else array.astype(dtype)


def _common_dtype(*arrays):
    return np.result_type(*(a.dtype for a in arrays))


def _check_last(array, sizes, name, what):
    if array.ndim < 1 or array.shape[-1] not in sizes:
        want = " or ".join(f"(..., {s})" for s in sizes)
        raise ValueError(f"{name}: expected shape {want} ({what}), got {array.shape}")


def _align(param, batch_ndim, core_ndim, name, against):
    """`param` with size-1 axes inserted so its batch axes lead (left alignment).

    `param` has ``core_ndim`` trailing core axes (0 for a scalar per frame);
    its remaining axes are matched with the first axes of a batch of
    ``batch_ndim`` axes (`against` names that batch for messages).
    """
    extra = param.ndim - core_ndim
    if extra > batch_ndim:
        raise ValueError(
            f"{name}: has {extra} batch axes (shape {param.shape}) but {against} "
            f"has only {batch_ndim}"
        )
    shape = param.shape[:extra] + (1,) * (batch_ndim - extra) + param.shape[extra:]
    return param.reshape(shape)


def _broadcast_error(name, a, b, a_name, b_name):
    return ValueError(
        f"{name}: batch axes of {a_name} {a} do not match the leading axes of "
        f"{b_name} {b} (per-frame parameters are aligned with the leading axes)"
    )


def _size(x, name):
    """An image width or height: positive and finite, float64."""
    array = _float_array(x, name).astype(np.float64, copy=False)
    with np.errstate(invalid="ignore"):
        bad = ~((array > 0) & (array < np.inf))
    if bad.any():
        if array.ndim == 0:
            raise ValueError(
                f"{name}: expected positive, finite image sizes in pixels, got {array}"
            )
        first = _first_bad(bad)
        raise ValueError(
            f"{name}: expected positive, finite image sizes in pixels, got "
            f"{array[first]} at index {first}"
        )
    return array


def _sizes(w, h, batch_ndim, against):
    w = _align(_size(w, "w"), batch_ndim, 0, "w", against)
    h = _align(_size(h, "h"), batch_ndim, 0, "h", against)
    return w[..., None], h[..., None]


# --- screen coordinates ---------------------------------------------------------------


def _screen_map(xy, w, h, rule, what, transform):
    """Apply ``transform(xy, scale, shift)``, the per-axis affine map of a rule.

    ``rule="width"``: scale ``(w, w)``, shift ``(1, h / w)``; ``"poseda"``:
    scale ``(w, h)``, shift ``(1, 1)``; both broadcast per frame.
    """
    choice(rule, _RULES, "rule")
    xy = _float_array(xy, "xy")
    _check_last(xy, (2,), "xy", what)
    w, h = _sizes(w, h, xy.ndim - 1, "xy")
    if rule == "width":
        scale = np.concatenate(np.broadcast_arrays(w, w), axis=-1)
        shift = np.concatenate(np.broadcast_arrays(np.ones_like(w), h / w), axis=-1)
    else:
        scale = np.concatenate(np.broadcast_arrays(w, h), axis=-1)
        shift = np.ones_like(scale)
    try:
        return transform(xy, scale.astype(xy.dtype), shift.astype(xy.dtype))
    except ValueError:
        raise _broadcast_error("w, h", w.shape[:-1], xy.shape, "w/h", "xy") from None


def _to_normalised(xy, scale, shift):
    return xy / scale * 2 - shift


def _to_pixels(xy, scale, shift):
    return (xy + shift) * scale / 2


@_interop.in_callers_type("xy", "w", "h")
def normalize_screen(
    xy: ArrayLike, w: ArrayLike, h: ArrayLike, *, rule: Rule = "width"
) -> ArrayLike:
    """Pixel coordinates to normalised screen coordinates.

    Parameters
    ----------
    xy : (..., 2) array, pixels
        Image points ``(x, y)``, origin at the top-left corner of the image.
    w, h : float or array, pixels
        Image width and height; arrays are per frame, aligned with the leading
        axes of `xy` (e.g. ``(N,)`` for ``xy`` of shape ``(N, J, 2)``).
    rule : {"width", "poseda"}
        ``"width"`` (default, VideoPose3D): ``x_n = 2 x / w - 1``,
        ``y_n = 2 y / w - h / w``. ``"poseda"``: each axis by its own size,
        ``y_n = 2 y / h - 1`` (the rule of the published GPA docstring).

    Returns
    -------
    (..., 2) ndarray
        float32 and float64 inputs keep their dtype; others give float64.

    Raises
    ------
    ValueError
        Wrong shapes, sizes that are not positive and finite, or a rule that
        does not exist.

    See Also
    --------
    image_coordinates : the inverse.

    Examples
    --------
    >>> from gpa_arrays.camera import normalize_screen
    >>> normalize_screen([[0, 0], [1000, 1002], [500, 501]], 1000, 1002)
    array([[-1.   , -1.002],
           [ 1.   ,  1.002],
           [ 0.   ,  0.   ]])
    """
    return _screen_map(xy, w, h, rule, "x, y in pixels", _to_normalised)


@_interop.in_callers_type("xy", "w", "h")
def image_coordinates(
    xy: ArrayLike, w: ArrayLike, h: ArrayLike, *, rule: Rule = "width"
) -> ArrayLike:
    """Normalised screen coordinates back to pixels.

    The inverse of :func:`normalize_screen`: ``x = (x_n + 1) w / 2``,
    ``y = (y_n + h / w) w / 2`` (``y = (y_n + 1) h / 2`` with ``rule="poseda"``).

    Parameters
    ----------
    xy : (..., 2) array, normalised screen coordinates
    w, h : float or array, pixels
        As in :func:`normalize_screen`.
    rule : {"width", "poseda"}
        As in :func:`normalize_screen`.

    Returns
    -------
    (..., 2) ndarray, pixels

    Examples
    --------
    >>> from gpa_arrays.camera import image_coordinates
    >>> image_coordinates([[-1.0, -1.002], [0.0, 0.0]], 1000, 1002)
    array([[  0.,   0.],
           [500., 501.]])
    """
    return _screen_map(xy, w, h, rule, "normalised x, y", _to_pixels)


# --- intrinsics -----------------------------------------------------------------------


@_interop.in_callers_type("f_px", "c_px", "w", "h", "distortion")
def normalize_intrinsics(
    f_px: ArrayLike, c_px: ArrayLike, w: ArrayLike, h: ArrayLike, *,
    distortion: ArrayLike | None = None, rule: Rule = "width",
) -> ArrayLike:  # fmt: skip
    """Pixel intrinsics to the normalised camera rows GPA and projection use.

    Parameters
    ----------
    f_px : float or (..., 2) array, pixels
        Focal lengths ``(fx, fy)``; a scalar (or shape ``(..., 1)``) for both.
    c_px : (..., 2) array, pixels
        Principal point ``(cx, cy)``.
    w, h : float or array, pixels
        Image width and height, per camera (aligned with the leading axes).
    distortion : (..., 5) array, optional
        ``(k1, k2, k3, p1, p2)`` of the Human3.6M model, dimensionless; when
        given the rows have 9 values.
    rule : {"width", "poseda"}
        ``"width"`` (default, VideoPose3D): ``f_n = 2 f / w`` for both axes and
        ``c_n = normalize_screen(c)``. ``"poseda"``: ``fy, cy`` by the height
        (``2 fy / h``, ``2 cy / h - 1``), as the published GPA docstring says.

    Returns
    -------
    (..., 4) or (..., 9) ndarray
        ``[fx, fy, cx, cy]`` or ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]``,
        normalised; the batch shape is the broadcast of the inputs'.

    Raises
    ------
    ValueError
        Wrong shapes, focal lengths that are not positive and finite, sizes
        that are not positive and finite, or non-finite centres or
        coefficients.

    Examples
    --------
    Human3.6M camera 54138969:

    >>> import numpy as np
    >>> from gpa_arrays.camera import normalize_intrinsics
    >>> np.round(
    ...     normalize_intrinsics([1145.05, 1143.78], [512.54, 515.45], 1000, 1002), 3
    ... )
    array([2.29 , 2.288, 0.025, 0.029])
    """
    choice(rule, _RULES, "rule")
    f = _float_array(f_px, "f_px")
    if f.ndim == 0:
        f = f.reshape(1)
    _check_last(f, (1, 2), "f_px", "fx, fy in pixels, or one focal length")
    c = _float_array(c_px, "c_px")
    _check_last(c, (2,), "c_px", "cx, cy in pixels")
    parts = [f, c]
    if distortion is not None:
        k = _float_array(distortion, "distortion")
        _check_last(k, (5,), "distortion", "k1, k2, k3, p1, p2")
        parts.append(k)
    dtype = _common_dtype(*parts)
    batch_ndim = max(p.ndim - 1 for p in parts)
    parts = [
        _align(p, batch_ndim, 1, name, "the intrinsics")
        for p, name in zip(parts, ("f_px", "c_px", "distortion"), strict=False)
    ]
    _check_focal(parts[0])
    _check_finite(parts[1], "c_px", "principal point")
    if distortion is not None:
        _check_finite(parts[2], "distortion", "distortion coefficients")
    w, h = _sizes(w, h, batch_ndim, "the intrinsics")
    w = w[..., 0]
    h = h[..., 0]
    f, c = parts[0], parts[1]
    fx = f[..., 0]
    fy = f[..., -1]
    cx = c[..., 0]
    cy = c[..., 1]
    try:
        if rule == "width":
            columns = [fx / w * 2, fy / w * 2, cx / w * 2 - 1, cy / w * 2 - h / w]
        else:
            columns = [fx / w * 2, fy / h * 2, cx / w * 2 - 1, cy / h * 2 - 1]
        columns = list(np.broadcast_arrays(*columns))
    except ValueError:
        raise ValueError(
            f"w, h: batch axes {np.shape(w)} / {np.shape(h)} do not match the "
            f"intrinsics' batch {f.shape[:-1]}"
        ) from None
    rows = np.stack(columns, axis=-1).astype(dtype, copy=False)
    if distortion is not None:
        k = np.broadcast_to(parts[2], (*rows.shape[:-1], 5))
        rows = np.concatenate([rows, k.astype(dtype, copy=False)], axis=-1)
    return rows


@_interop.in_callers_type("matrix", "w", "h", "distortion")
def intrinsics_from_matrix(
    matrix: ArrayLike, w: ArrayLike, h: ArrayLike, *,
    distortion: ArrayLike | None = None, rule: Rule = "width",
) -> ArrayLike:  # fmt: skip
    """Normalised camera rows from 3x3 pixel intrinsic matrices.

    Parameters
    ----------
    matrix : (..., 3, 3) array, pixels
        ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``. A non-zero skew is refused
        (the camera model has none).
    w, h, distortion, rule
        As in :func:`normalize_intrinsics`.

    Returns
    -------
    (..., 4) or (..., 9) ndarray

    Raises
    ------
    ValueError
        A matrix that is not of this form, and the errors of
        :func:`normalize_intrinsics`.

    Examples
    --------
    >>> import numpy as np
    >>> from gpa_arrays.camera import intrinsics_from_matrix
    >>> K = np.array([[1500.0, 0, 1024], [0, 1500.0, 1024], [0, 0, 1]])
    >>> intrinsics_from_matrix(K, 2048, 2048)
    array([1.46484375, 1.46484375, 0.        , 0.        ])
    """
    k = _float_array(matrix, "matrix")
    if k.ndim < 2 or k.shape[-2:] != (3, 3):
        raise ValueError(f"matrix: expected shape (..., 3, 3), got {k.shape}")
    structural = np.stack(
        [k[..., 0, 1], k[..., 1, 0], k[..., 2, 0], k[..., 2, 1], k[..., 2, 2] - 1],
        axis=-1,
    )
    bad = ~(structural == 0).all(axis=-1)
    if bad.any():
        first = _first_bad(bad) if bad.ndim else ()
        raise ValueError(
            "matrix: expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew), got "
            f"{k[first].tolist()}" + (f" at index {first}" if bad.ndim else "")
        )
    f = np.stack([k[..., 0, 0], k[..., 1, 1]], axis=-1)
    c = np.stack([k[..., 0, 2], k[..., 1, 2]], axis=-1)
    return normalize_intrinsics(f, c, w, h, distortion=distortion, rule=rule)


def _first_bad(bad):
    """Index of the first True of `bad`: an int for 1-D, a tuple otherwise."""
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
    return index if len(index) != 1 else index[0]


def _first_at(bad):
    """``"; first at index i"`` for a batch, nothing for a single item."""
    return f"; first at index {_first_bad(bad)}" if bad.ndim else ""


def _check_focal(f):
    with np.errstate(invalid="ignore"):
        bad = ~((f > 0) & (f < np.inf)).all(axis=-1)
    if bad.any():
        raise ValueError(
            f"f_px: {int(bad.sum())} focal length(s) not positive and finite"
            + _first_at(bad)
        )


def _check_finite(a, name, what):
    bad = ~np.isfinite(a).all(axis=-1)
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} non-finite {what}" + _first_at(bad))


# --- extrinsics -----------------------------------------------------------------------


@_interop.in_callers_type("quaternion")
def quaternion_to_matrix(quaternion: ArrayLike) -> ArrayLike:
    """Rotation matrices of unit quaternions ``(w, x, y, z)``, scalar first.

    Parameters
    ----------
    quaternion : (..., 4) array
        Normalised before use; one farther than :data:`ROTATION_TOLERANCE` from
        unit length is refused.

    Returns
    -------
    (..., 3, 3) ndarray
        ``R`` such that ``R @ v`` rotates ``v`` as ``q v q*`` does.

    Examples
    --------
    A quarter turn about z:

    >>> import numpy as np
    >>> from gpa_arrays.camera import quaternion_to_matrix
    >>> q = [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]
    >>> np.round(quaternion_to_matrix(q), 12) + 0.0
    array([[ 0., -1.,  0.],
           [ 1.,  0.,  0.],
           [ 0.,  0.,  1.]])
    """
    q = _float_array(quaternion, "quaternion")
    _check_last(q, (4,), "quaternion", "a quaternion w, x, y, z")
    return _quaternion_matrix(q, "quaternion")


def _refuse_rotations(bad, expected, what, name="rotation"):
    """Raise for the rotations `bad` flags; ``what(first)`` describes them."""
    if not bad.any():
        return
    first = _first_bad(bad) if bad.ndim else ()
    where = f", first at index {first}" if bad.ndim else ""
    raise ValueError(
        f"{name}: expected {expected}; {int(bad.sum())} {what(first)}{where}"
    )


def _quaternion_matrix(q, name="rotation"):
    norm = np.sqrt((q * q).sum(axis=-1))
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(norm - 1) <= ROTATION_TOLERANCE)
    _refuse_rotations(
        bad, "unit quaternions (w, x, y, z)",
        lambda first: f"with norm {float(norm[first]):.6g}", name,
    )  # fmt: skip
    w, x, y, z = np.moveaxis(q / norm[..., None], -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def _rotation_matrix(rotation):
    r = _float_array(rotation, "rotation")
    if r.ndim >= 1 and r.shape[-1] == 4:
        return _quaternion_matrix(r)
    if r.ndim >= 2 and r.shape[-2:] == (3, 3):
        gram = np.swapaxes(r, -1, -2) @ r - np.eye(3)
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(gram).max(axis=(-2, -1)) <= ROTATION_TOLERANCE)
            bad |= ~(np.linalg.det(r) > 0)
        _refuse_rotations(
            bad, "proper rotation matrices (R^T R = I, det R = 1)",
            lambda first: "is not" if int(bad.sum()) == 1 else "are not",
        )  # fmt: skip
        return r
    raise ValueError(
        "rotation: expected a quaternion (..., 4) (w, x, y, z) or a matrix "
        f"(..., 3, 3), got shape {r.shape}"
    )


def _extrinsics(points, rotation, position):
    x = _float_array(points, "points")
    _check_last(x, (3,), "points", "x, y, z in metres")
    r = _rotation_matrix(rotation)
    t = _float_array(position, "position")
    _check_last(t, (3,), "position", "the camera centre x, y, z in metres")
    dtype = _common_dtype(x, r, t)
    batch = x.ndim - 1
    r = _align(r, batch, 2, "rotation", "points").astype(dtype, copy=False)
    t = _align(t, batch, 1, "position", "points").astype(dtype, copy=False)
    for name, lead in (("rotation", r.shape[:-2]), ("position", t.shape[:-1])):
        try:
            np.broadcast_shapes(lead, x.shape[:-1])
        except ValueError:
            raise _broadcast_error(name, lead, x.shape, name, "points") from None
    return x.astype(dtype, copy=False), r, t


@_interop.in_callers_type("points", "rotation", "position")
def world_to_camera(
    points: ArrayLike, rotation: ArrayLike, position: ArrayLike
) -> ArrayLike:
    """World coordinates to camera coordinates: ``R^T (X - position)``.

    Parameters
    ----------
    points : (..., 3) array, metres
        World-space points.
    rotation : (..., 4) or (..., 3, 3) array
        The camera orientation: unit quaternions ``(w, x, y, z)``, scalar first
        (normalised before use), or rotation matrices mapping camera axes to
        world axes. Per frame, aligned with the leading axes of `points`.
    position : (..., 3) array, metres
        Camera centres in world coordinates, aligned likewise.

    Returns
    -------
    (..., 3) ndarray, metres
        Camera-space points: x right, y down, z forward (away from the camera).

    Raises
    ------
    ValueError
        Wrong shapes, or a rotation that is not one (see
        :data:`ROTATION_TOLERANCE`).

    See Also
    --------
    camera_to_world : the inverse.

    Examples
    --------
    A camera at (0, 0, -5) looking along the world z axis sees the origin 5 m
    ahead:

    >>> from gpa_arrays.camera import world_to_camera
    >>> world_to_camera([0.0, 0.0, 0.0], [1.0, 0, 0, 0], [0.0, 0.0, -5.0])
    array([0., 0., 5.])
    """
    x, r, t = _extrinsics(points, rotation, position)
    d = x - t
    # row vectors: (R^T d)_i = sum_j d_j R_ji
    return (
        d[..., 0:1] * r[..., 0, :]
        + d[..., 1:2] * r[..., 1, :]
        + d[..., 2:3] * r[..., 2, :]
    )


@_interop.in_callers_type("points", "rotation", "position")
def camera_to_world(
    points: ArrayLike, rotation: ArrayLike, position: ArrayLike
) -> ArrayLike:
    """Camera coordinates to world coordinates: ``R X + position``.

    Parameters are those of :func:`world_to_camera`, with `points` in camera
    space; this is its inverse.

    Examples
    --------
    >>> from gpa_arrays.camera import camera_to_world
    >>> camera_to_world([0.0, 0.0, 5.0], [1.0, 0, 0, 0], [0.0, 0.0, -5.0])
    array([0., 0., 0.])
    """
    x, r, t = _extrinsics(points, rotation, position)
    # row vectors: (R x)_i = sum_j R_ij x_j
    return (
        x[..., 0:1] * r[..., :, 0]
        + x[..., 1:2] * r[..., :, 1]
        + x[..., 2:3] * r[..., :, 2]
    ) + t


# --- projection -----------------------------------------------------------------------


def project(
    points_3d: ArrayLike,
    camera: ArrayLike,
    *,
    backend: BackendName = "auto",
    out: ArrayLike | None = None,
    check: bool = True,
) -> ArrayLike:
    """Project camera-space points to normalised screen coordinates.

    The Human3.6M camera model as VideoPose3D implements it: ``X / Z`` is
    clamped to [-1, 1], then a 9-value camera row applies the radial and
    tangential distortion and a 4-value row is linear (formulas in
    ``gpa_arrays._geometry``).

    Parameters
    ----------
    points_3d : (..., 3) array, metres, camera space
        Points with ``z > 0`` in front of the camera. Any strides. NumPy,
        CuPy, torch (CPU or CUDA) or any DLPack array; the result takes its
        type and device.
    camera : (4,), (9,), (..., 4) or (..., 9) array, normalised units
        ``[fx, fy, cx, cy]`` or ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]``; per
        frame, aligned with the leading axes of `points_3d` (camera rows
        ``(N, C)`` for points ``(N, J, 3)``). On the device of `points_3d` (a
        list is converted there).
    backend : {"auto", "numba", "numpy", "cupy"}
        All give identical results. ``"auto"`` picks ``"cupy"`` for CUDA
        arrays and the fastest host backend otherwise.
    out : array, optional
        Where to write the result (the shape and dtype of the return value),
        on the points' device.
    check : bool
        Raise ``ValueError`` for invalid cameras (focal length not positive
        and finite, other values not finite), non-finite points and points at
        or behind the camera plane (``z <= 0``), where the model is undefined.
        With ``check=False`` the formula is evaluated as is. On a CUDA device
        the check costs one synchronisation (an 80-byte status is read back);
        ``check=False`` leaves the call asynchronous.

    Returns
    -------
    (..., 2) array
        Normalised screen coordinates; the batch shape is the broadcast of the
        points' and the camera's. float32 and float64 points keep their dtype
        (float16 gives float32, integers float64); the camera is rounded to it.

    Raises
    ------
    ValueError
        Wrong shapes or (with `check`) bad values: the message names the
        argument, the count and the first index.
    TypeError
        Wrong dtypes, an `out` of the wrong type, or arrays on different
        devices.

    Examples
    --------
    >>> from gpa_arrays.camera import project
    >>> project([[0.5, -0.25, 5.0]], [2.0, 2.0, 0.1, 0.0])
    array([[ 0.3, -0.1]])
    """
    if _interop.plain_host(points_3d, camera, out):
        return _project(points_3d, camera, backend, out, check, _HOST_CALL)
    with _interop.Call(
        "points_3d", points_3d=points_3d, camera=camera, out=out
    ) as call:
        result = _project(
            call["points_3d"], call["camera"], backend, call["out"], check, call
        )
        return call.wrap(result, out)


def _project(points_3d, camera, backend, out, check, call):
    """:func:`project` on kernel arrays (NumPy, or CuPy on one device)."""
    xp = call.xp
    check = flag(check, "check")
    points = as_array(points_3d, "points_3d", xp)
    if points.dtype.kind not in "fiu":
        raise TypeError(
            f"points_3d: expected a real floating or integer dtype, got {points.dtype}"
        )
    _check_last(points, (3,), "points_3d", "camera-space x, y, z")
    dtype = result_dtype(points.dtype, "points_3d")
    cam = as_array(camera, "camera", xp)
    if cam.dtype.kind not in "fiu":
        raise TypeError(
            f"camera: expected a real floating or integer dtype, got {cam.dtype}"
        )
    _check_last(cam, (4, 9), "camera", "fx, fy, cx, cy[, k1, k2, k3, p1, p2]")
    _, module = _resolve_backend(backend, call.device)
    batch_ndim = max(points.ndim - 1, cam.ndim - 1)
    pts = (
        _align(points, batch_ndim, 1, "points_3d", "the camera")
        if (points.ndim - 1 < batch_ndim)
        else points
    )
    original_camera_shape = cam.shape
    cam = _align(cam, batch_ndim, 1, "camera", "points_3d")
    try:
        batch = np.broadcast_shapes(pts.shape[:-1], cam.shape[:-1])
    except ValueError:
        raise _broadcast_error(
            "camera", cam.shape[:-1], points.shape, "camera", "points_3d"
        ) from None
    shape = (*batch, 2)
    if out is None:
        result = call.empty(shape, dtype)
    else:
        reads = (("points_3d", points), ("camera", cam))
        result = out_array(out, shape, dtype, reads)
    if result.size == 0:
        return result
    # points per camera row: the trailing batch axes along which the camera
    # does not change
    split = batch_ndim
    while split > 0 and cam.shape[split - 1] == 1:
        split -= 1
    per = int(np.prod(batch[split:], dtype=np.int64))
    rows = int(np.prod(batch[:split], dtype=np.int64))
    cam_rows = xp.broadcast_to(
        cam[(...,) + (0,) * (batch_ndim - split) + (slice(None),)],
        (*batch[:split], cam.shape[-1]),
    ).reshape(rows, cam.shape[-1])
    flat = xp.broadcast_to(pts, (*batch, 3)).reshape(-1, 3)
    flat = flat if flat.dtype == dtype else flat.astype(dtype)
    cam_rows = xp.ascontiguousarray(cam_rows, dtype=dtype)
    target = result.reshape(-1, 2) if result.flags.c_contiguous else None
    staged = xp.empty((flat.shape[0], 2), dtype=dtype) if target is None else target
    pending = module.project_points(flat, cam_rows, per, staged, status=check)
    (status,) = module.read_status(pending)
    if target is None:
        result[...] = staged.reshape(shape)
    if check and status is not None:
        _raise_for_points(status, batch, cam.shape, split, original_camera_shape)
    return result


def _raise_for_points(status, batch, aligned_shape, split, camera_shape):
    def locate(category, first):
        if category.slot != POINT_CAMERA:
            return tuple(int(i) for i in np.unravel_index(first, batch))
        # kernel row -> index into the caller's camera array
        index = np.unravel_index(first, batch[:split]) if split else ()
        index = [int(i) if aligned_shape[d] > 1 else 0 for d, i in enumerate(index)]
        index += [0] * (len(camera_shape) - 1 - len(index))
        where = tuple(index[: len(camera_shape) - 1])
        return where[0] if len(where) == 1 else where

    size = int(np.prod(batch, dtype=np.int64))
    rows = int(np.prod(batch[:split], dtype=np.int64))
    # camera rows are counted over the kernel's rows, points over the points
    if status[POINT_CAMERA, 0]:
        raise_for_status(status, POINT[:1], rows, locate=locate)
    raise_for_status(status, POINT[1:], size, locate=locate)
