"""The 3D human pose metrics the GPA literature reports, in millimetres.

Definitions follow VideoPose3D (Pavllo et al., CVPR 2019, ``common/loss.py``)
for the errors and the MPI-INF-3DHP evaluation toolkit (Mehta et al., 3DV 2017)
for PCK and AUC:

``mpjpe``
    Mean per-joint position error: the Euclidean distance between predicted
    and true joints (Protocol #1 on root-relative poses: pass ``root``).
``p_mpjpe``
    MPJPE after a per-pose similarity Procrustes alignment of the prediction
    to the target (scale, rotation, translation; reflections excluded, as the
    sign-of-determinant correction does) (Protocol #2).
``n_mpjpe``
    MPJPE after scaling the prediction by ``sum(t . p) / sum(p . p)``.
``pck``
    Percentage of joints whose error is strictly below a threshold (150 mm).
``auc``
    Mean PCK over the thresholds 0, 5, ..., 150 mm (31 values), as a
    percentage.

Common arguments
----------------
predicted, target : (..., J, 3) arrays
    Poses of the same shape; any leading axes (frames, batches).
unit : {"m", "mm", "cm"}
    Unit of the inputs (default metres); results are always in millimetres.
joints : None, str, sequence of str or sequence of int
    The joints scored: all by default; a subset name such as
    ``"mpi_inf_3dhp_14"`` (the official 3DHP toolkit's 14 joints) or joint
    names, both resolved with `skeleton`; or indices. Alignments (scale,
    Procrustes) are fitted on the scored joints.
skeleton : str or Skeleton, optional
    The layout of the J joints (:mod:`gpa_arrays.skeletons`), needed for
    names.
root : int or str, optional
    A joint subtracted from all joints of both poses before anything else
    (``mpjpe``, ``n_mpjpe``, ``pck``, ``auc``). ``None``: poses are used as given.
reduction : {"mean", "pose", "joint", "none"}
    ``"mean"``: one number over all poses and joints; ``"pose"``: per pose
    (shape ``...``); ``"joint"``: per scored joint (shape ``(K,)``);
    ``"none"``: per pose and joint (shape ``(..., K)``).
check : bool
    Raise ``ValueError`` for poses with a non-finite scored coordinate (and,
    for the aligned metrics, poses whose scored joints coincide), naming the
    count and the first pose. ``check=False`` gives such poses NaN errors.
backend : {"auto", "numba", "numpy", "cupy"}
    ``"numpy"`` is the reference (Procrustes by ``numpy.linalg.svd``);
    ``"numba"`` a fused parallel kernel (Procrustes by Horn's quaternion
    method, see ``_backends/numba_.py``); ``"cupy"`` the same kernel in CUDA
    (``_backends/kernels/metrics.cu``), for CuPy arrays and torch CUDA
    tensors, ``"auto"``'s choice for them. Numba and CUDA make the same
    float64 operations in the same order and agree bit for bit; both agree
    with NumPy to about 1e-12 relative on poses whose optimal rotation is
    unique (the tests assert 1e-10 relative to the errors, 1e-9 where it is
    not unique, where any optimal rotation gives the same errors).

Arrays
------
NumPy, CuPy, torch (CPU or CUDA) or any DLPack array, both on one device.
Per-pose and per-joint results come back in the type and on the device of
`predicted`; ``reduction="mean"`` returns a Python float (on a CUDA device,
reading it, and the kernels' status, back costs one synchronisation).

Raises
------
ValueError
    Mismatched shapes, unknown skeletons, joints, subsets, alignments,
    reductions or units, thresholds that are not finite and >= 0, non-finite
    coordinates, and (for the fits) predictions whose scored joints coincide.
TypeError
    Arrays that are not of a real numeric dtype, a skeleton that is neither a
    name nor a Skeleton, a threshold that is not a number.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import _interop
from . import skeletons as _skeletons
from ._api import _HOST_CALL, _resolve_backend
from ._backends.numpy_ import ALIGN_NONE, ALIGN_PROCRUSTES, ALIGN_SCALE
from ._status import METRIC, raise_for_status, unravel
from ._typing import ArrayLike, BackendName
from ._validate import as_array, choice, flag, joint_index, looked_up

__all__ = [
    "AUC_THRESHOLDS",
    "PCK_THRESHOLD",
    "Procrustes",
    "auc",
    "mpjpe",
    "n_mpjpe",
    "p_mpjpe",
    "pck",
    "procrustes",
]

#: PCK threshold of the MPI-INF-3DHP protocol, millimetres.
PCK_THRESHOLD = 150.0

#: AUC thresholds of the MPI-INF-3DHP protocol: 0, 5, ..., 150 millimetres.
AUC_THRESHOLDS = np.linspace(0.0, 150.0, 31)

_UNITS = {"m": 1000.0, "cm": 10.0, "mm": 1.0}
_REDUCTIONS = ("mean", "pose", "joint", "none")
_ALIGNS = {"none": ALIGN_NONE, "scale": ALIGN_SCALE, "procrustes": ALIGN_PROCRUSTES}


# --- argument handling --------------------------------------------------------------


class Procrustes(NamedTuple):
    """The similarity fit of :func:`procrustes` and the prediction it aligns."""

    #: (..., J, 3) float64: the aligned prediction, in the unit of the inputs.
    aligned: Any
    #: (...,) float64: the scale factor of each pose.
    scale: Any
    #: (..., 3, 3) float64: the proper rotation of each pose.
    rotation: Any
    #: (..., 3) float64: the translation of each pose.
    translation: Any


def _on_arrays(predicted, target, compute):
    """``compute(p, t, call)`` on kernel arrays; arrays back in the caller's type.

    `p` and `t` are NumPy arrays, or CuPy arrays of one device (views of CuPy
    arrays, torch CUDA tensors or other DLPack arrays); `call` says which
    (:class:`gpa_arrays._interop.Call`). Floats and tuples pass through.
    """
    if _interop.plain_host(predicted, target):
        return compute(predicted, target, _HOST_CALL)
    with _interop.Call("predicted", predicted=predicted, target=target) as call:
        return _in_caller_type(call, compute(call["predicted"], call["target"], call))


def _in_caller_type(call, result):
    if isinstance(result, tuple):
        return type(result)(*(_in_caller_type(call, item) for item in result))
    if isinstance(result, float):
        return result
    return call.wrap(result)


def _poses(predicted, target, xp):
    p = as_array(predicted, "predicted", xp)
    t = as_array(target, "target", xp)
    for name, a in (("predicted", p), ("target", t)):
        if a.dtype.kind not in "fiu":
            raise TypeError(
                f"{name}: expected a real floating or integer dtype, got {a.dtype}"
            )
        if a.ndim < 2 or a.shape[-1] != 3 or a.shape[-2] == 0:
            raise ValueError(
                f"{name}: expected shape (..., J, 3) with J >= 1, got {a.shape}"
            )
    if p.shape != t.shape:
        raise ValueError(
            f"target: expected the shape of predicted {p.shape}, got {t.shape}"
        )
    return p, t


def _as_float(p, t):
    """`p` and `t` in one floating dtype, the one every backend's kernels read.

    float32 when both are float32, float64 otherwise (exact for every input:
    the metrics compute in float64).
    """
    same = p.dtype == t.dtype == np.float32
    dtype = np.dtype(np.float32 if same else np.float64)
    return (a if a.dtype == dtype else a.astype(dtype) for a in (p, t))


def _resolve_skeleton(skeleton, n_joints):
    if skeleton is None:
        return None
    skel = looked_up(_skeletons.get, skeleton, "skeleton")
    if len(skel) != n_joints:
        raise ValueError(
            f"skeleton: {skel.name} has {len(skel)} joints, the poses have {n_joints}"
        )
    return skel


def _joint_subset(joints, n_joints, skel):
    if joints is None:
        return np.arange(n_joints, dtype=np.int64)
    if isinstance(joints, str):
        if joints == "all":
            return np.arange(n_joints, dtype=np.int64)
        if skel is None:
            raise ValueError(
                f"joints: a subset name needs a skeleton=, got {joints!r} (known "
                "subsets: 'all', 'mpi_inf_3dhp_14')"
            )
        return looked_up(skel.subset, joints, "joints")
    items = list(joints)
    if not items:
        raise ValueError("joints: expected at least one joint, got an empty sequence")
    index = np.array(
        [joint_index(j, n_joints, "joints", skel) for j in items], dtype=np.int64
    )
    return index


def _errors(predicted, target, joints, skeleton, root, unit, align, backend, call,
            check=True):  # fmt: skip
    """Per-joint errors in mm, shape (..., K), and the leading shape."""
    choice(unit, tuple(_UNITS), "unit")
    p, t = _poses(predicted, target, call.xp)
    n_joints = p.shape[-2]
    skel = _resolve_skeleton(skeleton, n_joints)
    sel = _joint_subset(joints, n_joints, skel)
    r = -1 if root is None else joint_index(root, n_joints, "root", skel)
    _, module = _resolve_backend(backend, call.device)
    lead = p.shape[:-2]
    p, t = (a.reshape(-1, n_joints, 3) for a in _as_float(p, t))
    errors, pending = module.joint_errors(p, t, sel, r, align)
    (status,) = module.read_status(pending)
    if flag(check, "check"):
        _raise_for_poses(status, lead)
    errors *= _UNITS[unit]
    return errors.reshape((*lead, sel.shape[0])), lead


def _raise_for_poses(status, lead):
    size = int(np.prod(lead, dtype=np.int64))
    raise_for_status(
        status, METRIC, size, locate=lambda _category, first: unravel(first, lead)
    )


def _reduce(values, reduction):
    """Reduce (..., K) per-joint values."""
    if reduction == "none":
        return values
    if reduction == "mean":
        return float(values.mean()) if values.size else float("nan")
    if reduction == "pose":
        return values.mean(axis=-1)
    return values.reshape(-1, values.shape[-1]).mean(axis=0)


def _error_metric(
    predicted, target, joints, skeleton, root, reduction, unit, align, backend, check
):
    choice(reduction, _REDUCTIONS, "reduction")

    def compute(p, t, call):
        errors, _ = _errors(
            p, t, joints, skeleton, root, unit, align, backend, call, check
        )
        return _reduce(errors, reduction)

    return _on_arrays(predicted, target, compute)


# --- public metrics -------------------------------------------------------------------


def mpjpe(
    predicted: ArrayLike, target: ArrayLike, *,
    joints=None, skeleton=None, root=None, reduction="mean", unit="m",
    backend: BackendName = "auto", check: bool = True,
) -> Any:  # fmt: skip
    """Mean per-joint position error, millimetres.

    Parameters are described in the module docstring (:mod:`gpa_arrays.metrics`).

    Returns
    -------
    float or ndarray
        As `reduction` says.

    Examples
    --------
    >>> import numpy as np
    >>> from gpa_arrays import metrics
    >>> t = np.zeros((1, 2, 3))
    >>> p = np.array([[[0.003, 0.004, 0.0], [0.0, 0.0, 0.010]]])  # metres
    >>> metrics.mpjpe(p, t)
    7.5
    >>> metrics.mpjpe(p, t, reduction="joint")
    array([ 5., 10.])
    """
    return _error_metric(
        predicted, target, joints, skeleton, root, reduction, unit, ALIGN_NONE,
        backend, check,
    )  # fmt: skip


def n_mpjpe(
    predicted: ArrayLike, target: ArrayLike, *,
    joints=None, skeleton=None, root=None, reduction="mean", unit="m",
    backend: BackendName = "auto", check: bool = True,
) -> Any:  # fmt: skip
    """MPJPE after the per-pose optimal scaling of the prediction, millimetres.

    The scale is ``sum(t . p) / sum(p . p)`` over the scored joints (of
    root-relative poses when `root` is given).

    Examples
    --------
    A prediction that is the target at half size scores zero:

    >>> import numpy as np
    >>> from gpa_arrays import metrics
    >>> t = np.random.default_rng(0).normal(size=(4, 17, 3))
    >>> metrics.n_mpjpe(0.5 * t, t) < 1e-9
    True
    """
    return _error_metric(
        predicted, target, joints, skeleton, root, reduction, unit, ALIGN_SCALE,
        backend, check,
    )  # fmt: skip


def p_mpjpe(
    predicted: ArrayLike, target: ArrayLike, *,
    joints=None, skeleton=None, reduction="mean", unit="m",
    backend: BackendName = "auto", check: bool = True,
) -> Any:  # fmt: skip
    """MPJPE after per-pose similarity Procrustes alignment, millimetres.

    Each prediction is scaled, rotated (a proper rotation: reflections are
    excluded) and translated to best fit its target in the least-squares
    sense over the scored joints, then scored. Invariant to any similarity
    transform of the prediction.

    Examples
    --------
    A rotated, scaled and shifted copy of the target scores zero; a mirrored
    one does not:

    >>> import numpy as np
    >>> from gpa_arrays import metrics
    >>> t = np.random.default_rng(0).normal(size=(3, 17, 3))
    >>> turn = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    >>> metrics.p_mpjpe(2 * t @ turn.T + 1, t) < 1e-9
    True
    >>> metrics.p_mpjpe(t * [-1, 1, 1], t) > 100
    True
    """
    return _error_metric(
        predicted, target, joints, skeleton, None, reduction, unit,
        ALIGN_PROCRUSTES, backend, check,
    )  # fmt: skip


def _aligned_errors(p, t, joints, skeleton, root, unit, align, backend, call, check):
    choice(align, tuple(_ALIGNS), "align")
    return _errors(
        p, t, joints, skeleton, root, unit, _ALIGNS[align], backend, call, check
    )


def pck(
    predicted: ArrayLike, target: ArrayLike, *,
    threshold=PCK_THRESHOLD, joints=None, skeleton=None, root=None, align="none",
    reduction="mean", unit="m", backend: BackendName = "auto", check: bool = True,
) -> Any:  # fmt: skip
    """Percentage of correct keypoints: errors strictly below `threshold` mm.

    Parameters
    ----------
    threshold : float
        Millimetres (150 in the MPI-INF-3DHP protocol).
    align : {"none", "scale", "procrustes"}
        Alignment before scoring (the protocol uses none, on root-relative
        poses: pass ``root``).

    Other parameters are described in the module docstring.

    Returns
    -------
    float or ndarray
        Percentages (0 to 100); with ``reduction="none"`` a boolean array
        saying which joints are correct.

    Examples
    --------
    >>> import numpy as np
    >>> from gpa_arrays import metrics
    >>> t = np.zeros((1, 4, 3))
    >>> p = t + [[[0.1, 0, 0], [0.149, 0, 0], [0.15, 0, 0], [0.2, 0, 0]]]
    >>> metrics.pck(p, t)
    50.0
    """
    choice(reduction, _REDUCTIONS, "reduction")
    threshold = _threshold(threshold, "threshold")

    def compute(p, t, call):
        errors, _ = _aligned_errors(
            p, t, joints, skeleton, root, unit, align, backend, call, check
        )
        correct = errors < threshold
        if reduction == "none":
            return correct
        return _reduce(correct * 100.0, reduction)

    return _on_arrays(predicted, target, compute)


def auc(
    predicted: ArrayLike, target: ArrayLike, *,
    thresholds=AUC_THRESHOLDS, joints=None, skeleton=None, root=None, align="none",
    reduction="mean", unit="m", backend: BackendName = "auto", check: bool = True,
) -> Any:  # fmt: skip
    """Area under the PCK curve: mean PCK over `thresholds`, as a percentage.

    Parameters
    ----------
    thresholds : 1-D array, millimetres
        Default 0, 5, ..., 150 (31 values), the MPI-INF-3DHP protocol.
    align : {"none", "scale", "procrustes"}
        As in :func:`pck`.

    Other parameters are described in the module docstring.

    Returns
    -------
    float or ndarray
        Percentages; with ``reduction="none"`` per pose and joint (the share
        of thresholds the joint's error is below).

    Examples
    --------
    An error of 72 mm is below 16 of the 31 thresholds (75, 80, ..., 150):

    >>> import numpy as np
    >>> from gpa_arrays import metrics
    >>> t = np.zeros((1, 1, 3))
    >>> round(metrics.auc(t + [0.072, 0, 0], t) * 31 / 100)
    16
    """
    choice(reduction, _REDUCTIONS, "reduction")
    levels = np.asarray(thresholds, dtype=np.float64)
    if levels.ndim != 1 or levels.size == 0:
        raise ValueError(
            f"thresholds: expected a non-empty 1-D array of millimetres, got shape "
            f"{levels.shape}"
        )
    for value in levels:
        _threshold(value, "thresholds")

    def compute(p, t, call):
        errors, _ = _aligned_errors(
            p, t, joints, skeleton, root, unit, align, backend, call, check
        )
        # count of thresholds above each error: a sorted search instead of a
        # (..., K, T) comparison array
        ordered = call.xp.asarray(np.sort(levels))
        above = levels.size - call.xp.searchsorted(ordered, errors, side="right")
        share = above * (100.0 / levels.size)
        return _reduce(share, reduction)

    return _on_arrays(predicted, target, compute)


def _threshold(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name}: expected a number of millimetres, got {type(value).__name__}"
        ) from None
    if not value >= 0 or value == np.inf:
        raise ValueError(f"{name}: expected a finite value >= 0 mm, got {value}")
    return value


def procrustes(
    predicted: ArrayLike, target: ArrayLike, *,
    joints=None, skeleton=None, backend: BackendName = "auto", check: bool = True,
) -> Procrustes:  # fmt: skip
    """Per-pose similarity alignment of `predicted` to `target`.

    Fits ``target ~ scale * R @ predicted + translation`` (R a proper rotation)
    on the scored `joints` and applies it to every joint of the prediction:
    the alignment :func:`p_mpjpe` scores.

    Parameters
    ----------
    predicted, target : (..., J, 3) arrays
    joints, skeleton, backend
        As in the module docstring.

    Returns
    -------
    Procrustes
        A named tuple ``(aligned, scale, rotation, translation)``: the aligned
        prediction, (..., J, 3) float64 in the unit of the inputs; the scale,
        (...,); the rotation, (..., 3, 3); the translation, (..., 3); each of
        the type and on the device of `predicted`.

    Examples
    --------
    >>> import numpy as np
    >>> from gpa_arrays import metrics
    >>> t = np.random.default_rng(1).normal(size=(2, 17, 3))
    >>> aligned, scale, rotation, translation = metrics.procrustes(3 * t + 2, t)
    >>> bool(np.allclose(aligned, t)), np.round(scale, 6)
    (True, array([0.333333, 0.333333]))
    """
    return _on_arrays(
        predicted,
        target,
        lambda p, t, call: _procrustes(p, t, joints, skeleton, backend, check, call),
    )


def _procrustes(predicted, target, joints, skeleton, backend, check, call):
    p, t = _poses(predicted, target, call.xp)
    n_joints = p.shape[-2]
    skel = _resolve_skeleton(skeleton, n_joints)
    sel = _joint_subset(joints, n_joints, skel)
    _, module = _resolve_backend(backend, call.device)
    lead = p.shape[:-2]
    pf, tf = (a.reshape(-1, n_joints, 3) for a in _as_float(p, t))
    *fit, pending = module.procrustes_fit(pf, tf, sel)
    (status,) = module.read_status(pending)
    if flag(check, "check"):
        _raise_for_poses(status, lead)
    scale, rotation, translation = fit
    x = pf.astype(np.float64, copy=False)
    aligned = scale[:, None, None] * call.xp.einsum("nab,nkb->nka", rotation, x)
    aligned += translation[:, None, :]
    return Procrustes(
        aligned.reshape(p.shape),
        scale.reshape(lead),
        rotation.reshape((*lead, 3, 3)),
        translation.reshape((*lead, 3)),
    )
