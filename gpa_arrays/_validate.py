"""Argument validation, written once for every entry point.

Every public function (``gpa``, ``prepare_targets``, the ``GPA`` object, the Dask
functions, the CLI, ``camera``, ``metrics``, ``stats``, the experiments) checks
its arguments with the functions here, so that one mistake gets one message
and one exception type wherever it is made. A validator takes the value and the
argument's name, and returns the value normalised (a joint index in ``[0, J)``,
an array of the right module) or raises ``TypeError`` (wrong kind of thing) or
``ValueError`` (right kind, wrong value), naming the argument, what was expected
and what came.

:class:`Options` holds the data-independent options of an alignment call,
validated once when it is built, so the ``GPA`` object, :mod:`gpa_arrays.dask`
and the CLI build one and carry it instead of re-checking strings call by call.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from . import _interop
from ._status import Category, raise_for_mask
from ._targets import Targets

MODES = ("paired", "poseda")
DEPTHS = ("weak", "perspective")
#: Named pairings; an explicit index array is the fourth kind.
PAIRINGS = ("permutation", "random", "identity")
#: Values per camera row: ``[fx, fy, cx, cy]`` or with H36M distortion
#: ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]``.
CAMERA_COLUMNS = (4, 9)

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
_RESULT_DTYPES = {F32: F32, F64: F64, np.dtype(np.float16): F32}


# --- scalars --------------------------------------------------------------------------


def _integer(value, name, what):
    """``operator.index(value)``, refusing bools, with a message saying `what`."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected {what}, got bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name}: expected {what}, got {type(value).__name__}"
        ) from None


def count(value, name):
    """A non-negative int (a number of poses)."""
    value = _integer(value, name, "a non-negative int")
    if value < 0:
        raise ValueError(f"{name}: expected a non-negative int, got {value}")
    return value


def flag(value, name):
    """A bool (NumPy bools accepted)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return bool(value)


def choice(value, options, name, note=""):
    """One of `options` (strings); the message lists them, then `note`."""
    if type(value) is not str or value not in options:
        listed = ", ".join(map(repr, options))
        got = value if isinstance(value, (str, int, float, type(None))) else None
        got = repr(got) if got is not None or value is None else type(value).__name__
        raise ValueError(f"{name}: expected one of {listed}{note}, got {got}")
    return value


def joint_index(value, size, name, skeleton=None):
    """A joint index in ``[-size, size)`` (or a joint name) as one in ``[0, size)``.

    Parameters
    ----------
    value : int or str
        Negative indices count from the end; a name needs `skeleton`.
    size : int
        Number of joints.
    name : str
        The argument, for messages.
    skeleton : gpa_arrays.skeletons.Skeleton, optional
        Resolves joint names.
    """
    if type(value) is int and 0 <= value < size:  # the common case, first
        return value
    if isinstance(value, str):
        if skeleton is None:
            raise ValueError(f"{name}: joint names need a skeleton=, got {value!r}")
        return looked_up(skeleton.index, value, name)
    what = "an integer joint index" + (" or name" if skeleton is not None else "")
    index = _integer(value, name, what)
    if not -size <= index < size:
        raise ValueError(f"{name}: expected a joint index in [0, {size}), got {index}")
    return index + size if index < 0 else index


def looked_up(lookup, key, name):
    """``lookup(key)`` of the skeleton registry; an unknown key is a ValueError.

    The registry raises ``KeyError`` (a lookup by name); an argument of a
    public function holding an unknown name is a wrong value, reported as
    ``ValueError`` naming the argument `name`, with the registry's reason.
    """
    try:
        return lookup(key)
    except KeyError as exc:
        reason = str(exc.args[0]).split(": ", 1)[-1]
        raise ValueError(f"{name}: {reason}") from None


def frame_index(value, frames, name, what):
    """A frame index in ``[-frames, frames)`` as one in ``[0, frames)``.

    None is the centre frame ``frames // 2``; `what` names the clips the index
    counts in, for the message.
    """
    if value is None:
        return frames // 2
    index = _integer(value, name, "an integer frame index or None")
    if not -frames <= index < frames:
        raise ValueError(
            f"{name}: expected a frame index in [{-frames}, {frames}) for {what} of "
            f"{frames} frames, got {index}"
        )
    return index + frames if index < 0 else index


def optional_frame(value, name="reference_frame"):
    """An int or None, before the clip length is known (the ``GPA`` object)."""
    return None if value is None else _integer(value, name, "an integer or None")


def backend_name(value):
    """The backend argument's type (its value is resolved by the dispatcher)."""
    if not isinstance(value, str):
        raise TypeError(f"backend: expected a str, got {type(value).__name__}")
    return value


# --- arrays ---------------------------------------------------------------------------


def as_array(x, name, xp=np):
    """`x` as an array of module `xp` (arrays pass, Python data is converted)."""
    if type(x) is np.ndarray or isinstance(x, xp.ndarray):
        return x
    if isinstance(x, Targets):
        raise TypeError(f"{name}: a Targets object is only accepted as target_2d")
    try:
        return xp.asarray(x)
    except Exception as exc:
        raise TypeError(
            f"{name}: expected an array, got {type(x).__name__} ({exc})"
        ) from exc


def real(array, name):
    """Refuse arrays that are not of a real floating or integer dtype."""
    dtype = array.dtype
    if dtype.kind not in "fiu" or (dtype.kind == "f" and dtype.itemsize > 8):
        raise TypeError(
            f"{name}: expected a real floating or integer dtype, got {dtype}"
        )
    return array


def result_dtype(dtype, name):
    """The dtype computed in for data of `dtype`.

    float32 and float64 are kept; float16 computes in float32; integers compute
    in float64 (non-native byte order is read natively); anything else
    (``longdouble``, complex, bool, objects) is refused.
    """
    result = _RESULT_DTYPES.get(dtype)
    if result is not None:
        return result
    if not dtype.isnative:  # e.g. big-endian data from a file: computed natively
        return result_dtype(dtype.newbyteorder("="), name)
    if dtype.kind in "iu":
        return F64
    raise TypeError(f"{name}: expected a real floating or integer dtype, got {dtype}")


def as_dtype(array, dtype):
    """`array` in `dtype`, copied only when it is not already."""
    return array if array.dtype == dtype else array.astype(dtype)


def narrowed(array, dtype, name, noun, check=True):
    """`array` rounded to `dtype`, refusing finite values that overflow it.

    A float64 target or camera value beyond float32's range becomes ``inf``
    when a float32 call rounds it; with `check` that is reported as what it is
    (an overflow of the call's dtype, per item along axis 0), not later as a
    non-finite input. `noun` names the items (``("target", "targets")``).
    """
    if array.dtype == dtype:
        return array
    with np.errstate(over="ignore"):
        rounded = array.astype(dtype)
    if check and array.dtype.kind == "f" and array.dtype.itemsize > dtype.itemsize:
        xp = np if isinstance(array, np.ndarray) else _interop.module_of(array)
        lost = xp.isfinite(array) & ~xp.isfinite(rounded)
        lost = lost.reshape(lost.shape[0], -1).any(axis=1) if lost.ndim > 1 else lost
        limit = float(np.finfo(dtype).max)
        category = Category(
            0, name, f"{noun[0]}{{block}} has|{noun[1]}{{block}} have",
            f"a finite value beyond the range of {dtype} (|x| > {limit:.4g}), the "
            "dtype of the call; scale the data or compute in float64",
        )  # fmt: skip
        raise_for_mask(lost, category, lost.shape[0])
    return rounded


def _pose_shape(array, name, shape, axes):
    """Check (count, joints, coordinates) poses with at least one joint.

    `shape` and `axes` spell the expected shape for the message, e.g.
    ``"(N, J, 3)"`` and ``"poses, joints, xyz"``.
    """
    size = len(axes.rpartition(", ")[2])  # "xyz" or "xy"
    if array.ndim == 3 and array.shape[2] == size and array.shape[1]:
        return array  # the common case first
    if array.ndim != 3 or array.shape[2] != size:
        raise ValueError(f"{name}: expected shape {shape} ({axes}), got {array.shape}")
    if array.shape[1] == 0:
        raise ValueError(
            f"{name}: expected at least one joint, got shape {array.shape}"
        )
    return array


def poses_3d(source, name="source_3d"):
    """Check (N, J, 3) poses with at least one joint."""
    return _pose_shape(source, name, "(N, J, 3)", "poses, joints, xyz")


def clips_3d(source, name="source_3d"):
    """Check (N, T, J, 3) clips of at least one frame and one joint."""
    if source.shape[3] != 3 or 0 in source.shape[1:3]:
        raise ValueError(
            f"{name}: expected shape (N, J, 3) (poses) or (N, T, J, 3) (clips of "
            f"at least one frame and one joint), got {source.shape}"
        )
    return source


def poses_2d(target, name="target_2d"):
    """Check (M, Jt, 2) target poses of a real dtype."""
    return real(_pose_shape(target, name, "(M, Jt, 2)", "poses, joints, xy"), name)


def target_frame(target, reference_frame):
    """`target` (M, Jt, 2), or the reference frame of target clips (M, Tt, Jt, 2)."""
    if target.ndim != 4:
        return target
    if target.shape[1] == 0 or target.shape[3] != 2:
        raise ValueError(
            "target_2d: expected shape (M, Jt, 2) (poses) or (M, Tt, Jt, 2) "
            f"(clips of at least one frame), got {target.shape}"
        )
    frame = frame_index(
        reference_frame, target.shape[1], "reference_frame", "target clips"
    )
    return target[:, frame]


def no_reference_frame(reference_frame, source=None, target=None):
    """Refuse `reference_frame` for a call without clips.

    `source` and `target` describe the arguments that could have held clips
    (their shapes, or ``"prepared Targets"``), quoted in the message.
    """
    if reference_frame is None:
        return
    got = [
        f"{name} {what if isinstance(what, str) else f'of shape {what}'}"
        for name, what in (("source_3d", source), ("target_2d", target))
        if what is not None
    ]
    kinds = []
    if source is not None:
        kinds.append("source_3d of shape (N, T, J, 3)")
    if not isinstance(target, str):
        kinds.append("target_2d of shape (M, Tt, Jt, 2)")
    allowed = " or ".join(kinds)
    raise ValueError(
        f"reference_frame: only for clips, {allowed}; got {' and '.join(got)}"
    )


def camera_rows(camera, rows, what, xp=np, name="camera"):
    """A camera argument broadcast to ``(rows, C)``; `what` says what a row is for.

    Accepts one row for all (``(4,)`` or ``(9,)``) or one per item (``(rows, 4)``
    or ``(rows, 9)``) of a real dtype; anything else, or None, raises.
    """
    if camera is None:
        raise TypeError(
            f"{name}: required with a target_2d array (rows [fx, fy, cx, cy, ...] "
            "in normalised units); pass a Targets object to omit it"
        )
    camera = camera_shape(as_array(camera, name, xp), rows, what, name)
    if camera.ndim == 1:
        return xp.broadcast_to(camera, (rows, camera.shape[0]))
    return camera


def camera_shape(camera, rows, what, name="camera"):
    """Check a camera argument's dtype and shape, without converting it.

    One row for all (``(4,)`` or ``(9,)``) or one per item (``(rows, 4)`` or
    ``(rows, 9)``); also for a Dask array, whose blocks are not at hand.
    """
    real(camera, name)
    one = camera.ndim == 1 and camera.shape[0] in CAMERA_COLUMNS
    if one or (camera.ndim == 2 and camera.shape == (rows, camera.shape[1])
               and camera.shape[1] in CAMERA_COLUMNS):  # fmt: skip
        return camera
    raise ValueError(
        f"{name}: expected shape (4,), (9,), ({rows}, 4) or ({rows}, 9) "
        f"(one row per {what}), got {camera.shape}"
    )


def prepared(targets, camera, target_root, dtype):
    """Check a Targets argument against the call's camera, target root and dtype."""
    if camera is not None:
        raise TypeError(
            "camera: must be None with a Targets object (its cameras were used "
            "when the targets were prepared)"
        )
    if (
        target_root is not None
        and joint_index(target_root, targets.n_joints, "target_root") != targets.root
    ):
        raise ValueError(
            f"target_root: the Targets were prepared with root {targets.root}, "
            f"got {target_root}"
        )
    if targets._records.dtype != dtype:
        raise TypeError(
            f"target_2d: Targets of dtype {targets.dtype} cannot align source_3d "
            f"of result dtype {dtype}; prepare them with dtype={dtype.name}"
        )
    return targets


def pairing_argument(pairing, xp=None):
    """Lists and tuples of indices become arrays; everything else passes as is."""
    if isinstance(pairing, (list, tuple)):
        return (xp or np).asarray(pairing)
    return pairing


# --- out= -----------------------------------------------------------------------------


def split_out(out, return_2d):
    """``(out_3d, out_2d)`` from the `out` argument."""
    if not return_2d:
        if isinstance(out, tuple):
            raise TypeError(
                "out: a pair of arrays needs return_2d=True; pass one (N, J, 3) array"
            )
        return out, None
    if out is None:
        return None, None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(
            "out: with return_2d=True expected a pair (out_3d, out_2d) of arrays "
            f"or None, got {type(out).__name__}"
        )
    return out[0], out[1]


def _shares(a, b):
    if type(a) is np.ndarray and type(b) is np.ndarray:
        return np.may_share_memory(a, b)
    return _interop.may_share_memory(a, b)


def out_array(out, shape, dtype, reads, *, label="out", inplace=None):
    """Check an output array; return it.

    Parameters
    ----------
    out : array
        A kernel array (NumPy, or the CuPy view :class:`_interop.Call` made).
    shape : tuple of int
    dtype : numpy.dtype
    reads : iterable of ``(name, array or None)``
        Every array the kernels read: `out` may not overlap any of them, since
        a kernel would read what it has already overwritten (and the backends
        would disagree on the garbage).
    label : str
        How to call `out` in messages (``"out"``, ``"out_2d"``).
    inplace : array, optional
        The one input `out` may be exactly (same data pointer and strides):
        element ``i`` is read before it is written.
    """
    host = type(out) is np.ndarray
    if not host and not (hasattr(out, "shape") and hasattr(out, "dtype")):
        raise TypeError(
            f"{label}: expected an array (NumPy, CuPy, torch or another DLPack "
            f"array), got {type(out).__name__}"
        )
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{label}: expected shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise TypeError(f"{label}: expected dtype {dtype}, got {out.dtype}")
    if not (out.flags.writeable if host else _interop.writeable(out)):
        raise ValueError(f"{label}: the array is read-only")
    if inplace is not None and out is not inplace and _shares(out, inplace):
        same_view = (
            _interop.data_pointer(out) == _interop.data_pointer(inplace)
            and out.strides == inplace.strides
        )
        if not same_view:
            raise ValueError(
                f"{label}: overlaps source_3d without being the same view of it; "
                "pass source_3d itself for in-place operation, or a separate array"
            )
    for name, other in reads:
        if other is not None and other is not inplace and _shares(out, other):
            raise ValueError(
                f"{label}: overlaps {name}, which the kernels read; pass a separate "
                "array"
            )
    return out


# --- the options of an alignment call -------------------------------------------------


@dataclass(frozen=True)
class Options:
    """The data-independent options of an alignment, validated once.

    Built by :meth:`make` from the keyword arguments of :func:`gpa_arrays.gpa`
    (and of the ``GPA`` object, :func:`gpa_arrays.dask.gpa`, the CLI); checks
    that need the data (joint counts, frame counts, N and M) run per call.
    """

    mode: str = "paired"
    depth: str = "weak"
    return_2d: bool = False
    check: bool = True
    backend: str = "auto"
    #: ``depth == "perspective"`` and ``mode == "poseda"``, derived once
    #: (read on every call's hot path).
    perspective: bool = field(init=False)
    poseda: bool = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "perspective", self.depth == "perspective")
        object.__setattr__(self, "poseda", self.mode == "poseda")

    @staticmethod
    def make(mode="paired", depth="weak", return_2d=False, check=True, backend="auto"):
        """Validate and build (memoised: the common calls cost a dict lookup)."""
        if (
            mode == "paired" and depth == "weak" and return_2d is False
            and check is True and backend == "auto"
        ):  # fmt: skip
            return _DEFAULT
        try:
            return _options(mode, depth, return_2d, check, backend)
        except TypeError as exc:  # unhashable: validated below, not memoised
            if "unhashable" not in str(exc):
                raise
            return _build(mode, depth, return_2d, check, backend)


def _build(mode, depth, return_2d, check, backend):
    mode = choice(mode, MODES, "mode")
    depth = choice(depth, DEPTHS, "depth")
    if depth == "perspective" and mode == "poseda":
        raise ValueError(
            "depth: 'perspective' needs mode='paired' (mode='poseda' reproduces "
            "the published weak-perspective arithmetic)"
        )
    return Options(
        mode, depth, flag(return_2d, "return_2d"), flag(check, "check"),
        backend_name(backend),
    )  # fmt: skip


@lru_cache(maxsize=64, typed=True)
def _options(mode, depth, return_2d, check, backend):
    # keyed by type too: True and 1 hash alike but only one is a valid flag
    return _build(mode, depth, return_2d, check, backend)


_DEFAULT = Options()
