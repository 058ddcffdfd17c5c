"""Public entry points: validation and dispatch.

This module is the only one that looks at what the caller passed: it checks
shapes, dtypes and arguments, decides the output dtype and backend, and hands
plain arrays of the right dtype to a backend module. Which array types exist
and how they are viewed without copies is :mod:`gpa_arrays._interop`'s
business; here an array is a NumPy array (host backends) or a CuPy array (the
CUDA backend), and ``xp`` is its module. Kernels validate values (finiteness,
degenerate boxes, index ranges) themselves, fused into the pass they make
anyway, and report through a status array (:mod:`gpa_arrays._status`).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from numpy.typing import DTypeLike

from . import _backends, _interop
from ._backends.numpy_ import RECORD_WIDTH
from ._pairing import KIND_ARRAY, resolve_pairing
from ._status import (
    POSE_BEHIND,
    POSE_INDEX,
    POSE_NONFINITE,
    new_status,
    raise_for_pose_status,
    raise_for_target_status,
)
from ._targets import Targets
from ._typing import ArrayLike, BackendName, PairingName, Seed
from ._validate import (
    F32,
    F64,
    Options,
    as_array,
    as_dtype,
    camera_rows,
    clips_3d,
    count,
    frame_index,
    joint_index,
    narrowed,
    no_reference_frame,
    out_array,
    pairing_argument,
    poses_2d,
    poses_3d,
    prepared,
    result_dtype,
    split_out,
    target_frame,
)

__all__ = ["backends", "gpa", "pair_indices", "prepare_targets"]

#: Marks an argument the caller did not pass (a deprecated alias).
_UNSET = object()


_resolved: dict = {}
_DEVICE_BACKENDS = frozenset(_backends.DEVICE_BACKENDS)


def _resolve_backend(backend, device=_interop.HOST):
    """``(name, module)`` of the backend for arrays on `device`.

    `device` is ``_interop.HOST``, a CUDA ordinal, or None when no array says
    where to run (:func:`pair_indices` with a named pairing).
    """
    key = backend if device == _interop.HOST else (backend, "device")
    hit = _resolved.get(key) if type(backend) is str else None
    if hit is not None:
        return hit
    if not isinstance(backend, str):
        raise TypeError(f"backend: expected a str, got {type(backend).__name__}")
    on_host = device in (_interop.HOST, None)
    if backend == "auto" and on_host:
        for name in _backends.HOST_BACKENDS:
            try:
                hit = name, _backends.load(name)
            except RuntimeError:
                continue
            break
    elif backend == "auto":
        try:
            hit = "cupy", _backends.load("cupy")
        except RuntimeError as exc:
            raise RuntimeError(
                f"the arrays are on {_interop.device_name(device)}, which needs "
                f"the 'cupy' backend: {exc}"
            ) from exc
    else:
        hit = backend, _backends.load(backend)
        is_device = getattr(hit[1], "DEVICE", False)
        if device == _interop.HOST and is_device:
            raise TypeError(
                f"backend: {backend!r} runs on CUDA device arrays, but the arrays "
                "are on the host; pass backend='auto' or move them to a device"
            )
        if not on_host and not is_device:
            raise TypeError(
                f"backend: {backend!r} runs on host arrays, but the arrays are on "
                f"{_interop.device_name(device)}; pass backend='auto' or 'cupy'"
            )
    if device is not None:
        _resolved[key] = hit
    return hit


# --- public functions ----------------------------------------------------------------


def backends() -> tuple[str, ...]:
    """Backends usable here and now, fastest first.

    Returns
    -------
    tuple of str
        A subset of ``("cupy", "numba", "numpy")``: ``"numpy"`` always,
        ``"numba"`` when Numba imports, ``"cupy"`` when CuPy imports and sees a
        CUDA device (this imports CuPy). ``"cupy"`` runs on device arrays, the
        others on host arrays.

    Examples
    --------
    >>> import gpa_arrays
    >>> "numpy" in gpa_arrays.backends()
    True
    """
    return _backends.available()


def pair_indices(
    n: int,
    m: int,
    *,
    pairing: PairingName | ArrayLike = "permutation",
    seed: Seed = None,
    backend: BackendName = "auto",
) -> ArrayLike:
    """The target index each source pose is paired with.

    Returns exactly the pairing :func:`gpa` uses for the same arguments: a call
    of ``gpa(source, target, ..., pairing=p, seed=s)`` pairs source pose ``i``
    with target ``pair_indices(len(source), len(target), pairing=p, seed=s)[i]``.
    The pairing is a counter-based function of ``(seed, i)`` (a keyed Feistel
    bijection with cycle walking, described on the Concepts page of the
    documentation), so it is the same on every backend and for every chunking of
    the work.

    Parameters
    ----------
    n : int
        Number of source poses, ``N >= 0``.
    m : int
        Number of target poses, ``M >= 0`` (``M >= 1`` when ``N >= 1``).
    pairing : {"permutation", "random", "identity"} or (n,) integer array
        ``"permutation"``: for ``N == M`` a random permutation; for ``N < M``,
        ``N`` distinct targets; for ``N > M``, every target used ``floor(N/M)``
        or ``ceil(N/M)`` times. ``"random"``: independent uniform draws.
        ``"identity"``: pose ``i`` with target ``i`` (needs ``N == M``). An
        array (NumPy, CuPy, torch, DLPack) is validated (range ``[0, M)``)
        and returned as int64, in its own type and on its device.
    seed : None, int or numpy.random.Generator
        ``None`` draws fresh entropy (a different pairing on each call, as in
        the published code); an int in ``[0, 2**64)`` gives a reproducible
        pairing; a Generator is advanced by one 64-bit draw, which becomes the
        seed.
    backend : {"auto", "numba", "numpy", "cupy"}
        Where to evaluate; all give identical results. ``"cupy"`` evaluates on
        the current CUDA device and returns a CuPy array.

    Returns
    -------
    (n,) int64 array
        Target index of each source pose, in ``[0, m)``: a NumPy array, a CuPy
        array with ``backend="cupy"``, or the pairing argument's type.

    Raises
    ------
    ValueError
        For negative or inconsistent sizes, an unknown pairing, or array
        entries outside ``[0, m)``.
    TypeError
        For a seed or pairing of the wrong type, or a backend that does not
        run where the pairing array lives.
    RuntimeError
        A named backend that is not usable here.

    Examples
    --------
    >>> import gpa_arrays
    >>> idx = gpa_arrays.pair_indices(5, 5, seed=0)
    >>> sorted(idx.tolist())
    [0, 1, 2, 3, 4]
    >>> bool((idx == gpa_arrays.pair_indices(5, 5, seed=0)).all())
    True
    """
    n = count(n, "n")
    m = count(m, "m")
    if type(pairing) is str:
        # no array says where to run: the backend does (cupy: the current device)
        return _pair_indices(pairing, n, m, seed, backend, np, None)
    if type(pairing) is np.ndarray:
        return _pair_indices(pairing, n, m, seed, backend, np, _interop.HOST)
    with _interop.Call("pairing", pairing=pairing) as call:
        index = _pair_indices(
            call["pairing"], n, m, seed, backend, call.xp, call.device
        )
        return call.wrap(index)


def _pair_indices(pairing, n, m, seed, backend, xp, device):
    spec = resolve_pairing(pairing_argument(pairing, xp), n, m, seed)
    _, module = _resolve_backend(backend, device)
    index = module.pair_indices(spec)
    if spec.kind == KIND_ARRAY and index.size:
        bad = (index < 0) | (index >= m)
        if bad.any():
            status = new_status()
            status[POSE_INDEX] = (int(bad.sum()), int(bad.argmax()))
            raise_for_pose_status(status, n, m, index)
    return index


def prepare_targets(
    target_2d: ArrayLike,
    camera: ArrayLike,
    *,
    target_root: int = 0,
    reference_frame: int | None = None,
    backend: BackendName = "auto",
    dtype: DTypeLike | None = None,
    check: bool = True,
    root: int = _UNSET,  # type: ignore[assignment]  # deprecated alias
) -> Targets:
    """Reduce target poses and cameras to compact records, once.

    Use when many source batches are aligned against the same target set (the
    training-loop case): the per-target work (2D box, root unprojection,
    validation) is done here once, and each :func:`gpa` call then gathers one
    small record per source pose.

    Parameters
    ----------
    target_2d : (M, Jt, 2) or (M, Tt, Jt, 2) array, normalised screen coordinates
        Target-domain 2D poses (VideoPose3D normalisation: x in [-1, 1]), or
        2D clips, which are reduced to their reference frame.
        NumPy, CuPy, torch (CPU or CUDA) or any DLPack array; the records live
        on its device.
    camera : (4,), (9,), (M, 4) or (M, 9) array, normalised units
        Rows ``[fx, fy, cx, cy]`` or ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]``;
        row ``j`` belongs to target ``j``, a single row to all. The distortion
        coefficients of 9-value rows are kept for ``gpa(..., return_2d=True)``;
        the alignment itself uses the pinhole part. On the device of
        `target_2d` (a list is converted there).
    target_root : int
        Root joint of the target poses (e.g. 14 for MPI-INF-3DHP-17), the
        argument of the same name of :func:`gpa`.
    reference_frame : int, optional
        For target clips, ``target_2d`` of shape (M, Tt, Jt, 2): the frame of
        each clip that stands for it (its records are that frame's); default
        the centre frame ``Tt // 2``. Pass the `reference_frame` the source
        clips will use. Refused for (M, Jt, 2) targets.
    backend : {"auto", "numba", "numpy", "cupy"}
        Backend that computes the records (all give the same records);
        ``"auto"`` picks ``"cupy"`` for CUDA arrays, the fastest host backend
        otherwise.
    dtype : {None, numpy.float32, numpy.float64}
        Precision of the records, which must match the source poses later
        aligned against them. ``None`` keeps a float32/float64 target dtype and
        uses float64 for other dtypes. Values are rounded to this precision
        before any arithmetic.
    check : bool
        Raise on non-finite targets, degenerate boxes (``w + h == 0``) and
        invalid cameras (focal length not finite and positive, centre or
        distortion coefficient not finite). With ``check=False`` such targets
        give records that produce ``inf``/``nan`` poses. On a CUDA device the
        call waits for its records once, checked or not, so that the Targets
        may be used on any stream (the check reads an 80-byte status back in
        that wait).
    root : int
        Deprecated alias of `target_root` (``root`` means the *source* root
        everywhere else); warns with ``DeprecationWarning``.

    Returns
    -------
    Targets

    Raises
    ------
    ValueError
        Wrong shapes, a root out of range, or (with `check`) bad values: the
        message names the argument, the number of bad targets and the first.
    TypeError
        Wrong dtypes or argument types; arrays on different devices.
    RuntimeError
        A named backend, or the CUDA backend for device arrays, that is not
        usable here.

    Examples
    --------
    >>> import numpy as np, gpa_arrays
    >>> t = np.array([[[0.0, 0.0], [0.2, 0.4]]])
    >>> targets = gpa_arrays.prepare_targets(t, [1.5, 1.5, 0.0, 0.0])
    >>> targets.scale
    array([0.3])
    """
    if root is not _UNSET:
        warnings.warn(
            "prepare_targets(root=) is deprecated: the argument is target_root= (as "
            "in gpa, where root= is the source's root joint)",
            DeprecationWarning,
            stacklevel=2,
        )
        target_root = root
    if isinstance(target_2d, Targets):
        raise TypeError("target_2d: already a Targets object")
    if _interop.plain_host(target_2d, camera):
        return _prepare_targets(
            target_2d, camera, target_root, backend, dtype, check, np, _interop.HOST,
            reference_frame,
        )  # fmt: skip
    with _interop.Call("target_2d", target_2d=target_2d, camera=camera) as call:
        return _prepare_targets(
            call["target_2d"], call["camera"], target_root, backend, dtype, check,
            call.xp, call.device, reference_frame,
        )  # fmt: skip


def _records_dtype(dtype, target):
    """The records' dtype: `dtype` (float32 or float64), or by the target's."""
    if dtype is None:
        return target.dtype if target.dtype in (F32, F64) else F64
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    if dtype not in (F32, F64):
        raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
    return dtype


def _prepare_targets(target_2d, camera, root, backend, dtype, check, xp, device,
                     reference_frame=None):  # fmt: skip
    target = as_array(target_2d, "target_2d", xp)
    if target.ndim == 4:
        target = target_frame(target, reference_frame)
    else:
        no_reference_frame(reference_frame, target=target.shape)
    poses_2d(target)
    dtype = _records_dtype(dtype, target)
    root = joint_index(root, target.shape[1], "target_root")
    camera = camera_rows(camera, target.shape[0], "target pose", xp)
    name, module = _resolve_backend(backend, device)
    device = name in _backends.DEVICE_BACKENDS
    m = target.shape[0]
    records, status = _prepare_records(
        module, device, target, camera, root, dtype, check
    )
    if not device and check:
        raise_for_target_status(status, m)
    wide = d_status = None
    if camera.shape[1] == 9:
        # record and distortion coefficients side by side, one gathered row for
        # gpa(..., return_2d=True) through distorting cameras
        wide, d_status = _prepare_wide(module, device, records, camera, check)
    if device:
        # wait even unchecked: the records outlive the call, and the next
        # reader may be another stream
        status, d_status = module.read_status(status, d_status, wait=True)
        if check:
            raise_for_target_status(status, m)
    if check:
        raise_for_target_status(d_status, m)
    return Targets(records, root, target.shape[1], name, wide)


def _prepare_records(module, device, target, camera, root, dtype, check, poseda=False):
    """Records and (host, or pending device) status of a target set."""
    target = narrowed(target, dtype, "target_2d", ("target", "targets"), check)
    camera = narrowed(camera, dtype, "camera", ("row", "rows"), check)
    prepare = module.prepare_poseda_records if poseda else module.prepare_records
    return prepare(target, camera, root, status=check)


def _prepare_wide(module, device, records, camera, check):
    """Wide records and (host, or pending device) status of 9-value cameras.

    `camera` is rounded to the records' dtype; an overflow there was reported
    (or, unchecked, accepted) with the records.
    """
    camera = narrowed(camera, records.dtype, "camera", ("row", "rows"), False)
    return module.prepare_wide_records(records, camera, status=check)


def gpa(
    source_3d: ArrayLike,
    target_2d: ArrayLike | Targets,
    camera: ArrayLike | None = None,
    *,
    pairing: PairingName | ArrayLike = "permutation",
    seed: Seed = None,
    root: int = 0,
    target_root: int | None = None,
    reference_frame: int | None = None,
    mode: Literal["paired", "poseda"] = "paired",
    depth: Literal["weak", "perspective"] = "weak",
    return_2d: bool = False,
    backend: BackendName = "auto",
    out: ArrayLike | None = None,
    check: bool = True,
) -> ArrayLike:
    """Global Position Alignment: move source poses or clips to target positions.

    Each source pose ``i`` is paired with a target pose ``j`` (see `pairing`) and
    translated, rigidly, so that seen through target ``j``'s camera its root
    lands on the target's 2D root, at the depth where (under weak perspective)
    its projected 2D box has the target's box scale. With ``s_j`` the target's
    box scale, ``dx, dy`` the source's x and y extents and ``f, c`` the camera::

        z = (fx * dx + fy * dy) / (2 * s_j)
        u = (t_root_x - cx) / fx,   v = (t_root_y - cy) / fy
        out[i] = (source[i] - source[i, root]) + (z * u, z * v, z)

    Clips, ``source_3d`` of shape (N, T, J, 3), move as wholes: clip ``i`` is
    paired once, the translation is computed at its reference frame ``r`` (see
    `reference_frame`) exactly as for a single pose, and applied to every
    frame, ``out[i, t] = (source[i, t] - source[i, r, root]) + new_root_i``, so
    the root trajectory and all relative motion are kept (to the two
    roundings of that formula) and a one-frame clip is the per-pose case, bit
    for bit.

    Parameters
    ----------
    source_3d : (N, J, 3) or (N, T, J, 3) array, metres, camera space
        Source-domain 3D poses, or clips of T frames: NumPy, CuPy, torch (CPU
        or CUDA) or any DLPack array; the result takes its type and device.
        Any strides; never modified (unless passed as `out`). Every array
        argument must live on the same device (lists are converted there).
    target_2d : (M, Jt, 2) or (M, Tt, Jt, 2) array, or Targets
        Target-domain 2D poses in normalised screen coordinates, target clips
        (their reference frame is used; ``Tt`` may differ from ``T``), or
        targets prepared once by :func:`prepare_targets`. ``Jt`` may differ
        from ``J``.
    camera : (4,), (9,), (M, 4) or (M, 9) array, normalised units, optional
        ``[fx, fy, cx, cy, ...]``; row ``j`` belongs to target ``j``, a single
        row to all. Required with a target array, refused with Targets.
    pairing : {"permutation", "random", "identity"} or (N,) integer array
        How sources meet targets; see :func:`pair_indices`, which returns the
        exact indices used.
    seed : None, int or numpy.random.Generator
        Pairing seed; ``None`` draws fresh entropy on every call.
    root : int
        Root joint of the source poses.
    target_root : int, optional
        Root joint of the target poses; defaults to `root`. Ignored with
        Targets (fixed when they were prepared) unless it disagrees.
    reference_frame : int, optional
        With clips: the frame whose pose is aligned (its root lands on the
        paired target's root at the depth of its box); default the centre
        frame ``T // 2``. Negative values count from the end. Target clips use
        the same index (default: their own centre frame ``Tt // 2``). Refused
        when neither argument holds clips.
    mode : {"paired", "poseda"}
        ``"paired"`` (default): every pose uses its paired target's camera for
        both depth and unprojection, as the method intends. ``"poseda"``:
        reproduce the published function exactly: depth uses the focal lengths
        of camera row 0 for every pose, and pose ``i`` is unprojected with
        camera row ``i`` (its own index, not its paired target's). Needs
        ``N == M`` and raw arrays.
    depth : {"weak", "perspective"}
        How the root depth is chosen. ``"weak"`` (default): the published
        formula above, under which the projected box scale equals the
        target's only in the weak-perspective limit. ``"perspective"``: solve,
        per pose, for the depth at which the pinhole projection of the aligned
        pose has exactly the target's box scale (a few safeguarded Newton
        steps in float64 inside the kernel, relative tolerance 1e-12). The root
        still lands on the target root. It matters for close cameras and deep
        poses; see Notes. Needs ``mode="paired"``.
    return_2d : bool
        Also return the aligned poses projected through the camera each was
        placed with: its paired target's camera (``mode="paired"``) or camera
        row ``i`` (``mode="poseda"``, the row the published function
        unprojects pose ``i`` with, so that in both modes the projected root
        is the paired target's root). 9-value camera rows project with the H36M
        distortion model, 4-value rows with the pinhole model, clamped as in
        :func:`gpa_arrays.camera.project`; the result equals
        ``project(aligned, camera_of_each_pose)`` bit for bit. Computed in the
        same pass as the 3D poses.
    backend : {"auto", "numba", "numpy", "cupy"}
        ``"auto"`` picks ``"cupy"`` for CUDA arrays and the fastest usable host
        backend for host arrays. A named backend that is unusable, or that
        does not run where the arrays are, raises; there is no silent fallback
        and no copy between devices.
    out : (N, J, 3) or (N, T, J, 3) array, optional
        Where to write the result (the shape of `source_3d`), of the result
        dtype, on the arrays' device (NumPy, CuPy, torch, or a writable
        DLPack host array). May be
        `source_3d` itself (in place). With ``return_2d=True``, a pair
        ``(out_3d, out_2d)`` whose items are each an array or ``None``,
        ``out_2d`` of shape (N, J, 2). On error the content is unspecified.
    check : bool
        Raise ``ValueError`` on non-finite input or output, degenerate source
        poses (zero x and y extent), degenerate targets, aligned poses with a
        joint at or behind the plane of the camera they were placed for (a
        large target box for a deep pose; such a pose cannot be seen through
        that camera, whether or not `return_2d` projects it), aligned poses
        placed so far from the camera that the output dtype cannot hold their
        shape (``max(|x|, |y|, z)`` of the placed root times the dtype's
        epsilon above 1e-3 of the pose's larger x or y extent; float32 with
        tiny target boxes or huge focal lengths), and with
        ``depth="perspective"`` poses for which no depth solves the box scale.
        The checks are fused into the kernels and cost little. With
        ``check=False`` such poses come out non-finite, at depth 0, partly
        behind the camera, with their shape rounded away, at their
        weak-perspective depth (no perspective solution) or with meaningless
        2D; explicit pairing indices are always
        range-checked. On a
        CUDA device the check costs one synchronisation per call (the kernels'
        small statuses are read back together); ``check=False`` leaves the call
        fully asynchronous.

    Returns
    -------
    (N, J, 3) array, or a pair of (N, J, 3) and (N, J, 2) arrays
        The aligned poses (`out` if given; clips keep their (N, T, J, ...)
        shape), and with ``return_2d=True`` their
        projections in normalised screen coordinates, of the type and on the
        device of `source_3d` (CUDA tensors from torch's caching allocator).
        dtype: float32 and float64 sources are kept; float16 gives float32;
        integers give float64. Targets and cameras are rounded to that dtype
        before use.

    Raises
    ------
    ValueError
        Wrong shapes, roots or pairing; bad values when `check` is set. Messages
        name the argument, what was expected and what came, and for bad values
        the count of bad poses and the first index.
    TypeError
        Wrong dtypes or argument types, a missing camera, Targets with
        ``mode="poseda"``, arrays on different devices, tensors that require
        grad (pass ``tensor.detach()``), dtypes NumPy/CuPy cannot view.
    RuntimeError
        A named backend that is not usable here, or device arrays without a
        usable CUDA backend.

    Notes
    -----
    Under any pinhole camera the aligned root projects exactly (to rounding) onto
    the paired target root, the root-relative pose is unchanged, and under weak
    perspective the projected box scale equals the target's.

    The weak-perspective depth treats the pose as flat: it ignores the pose's
    own depth extent (joints in front of the root look larger, joints behind
    it smaller, by ``c / Z``) and the shear of an off-centre view (a joint at
    depth offset ``c`` appears shifted by ``-u c``, ``u`` the root's ray, at
    any distance). Measured with ``python benchmarks/perspective_depth.py``
    (standing 1.6 m subjects, random heading and lean, a third reaching
    towards the camera, f = 1.46): with target roots at the image centre the
    pinhole box scale of a weakly placed pose misses the target's by a median
    0.6 % (worst 3.7 %) for a target box scale of 0.25 (subject 5.7 m away),
    1.3 % (9 %) at 0.5 (2.9 m), 3.4 % (26 %) at 1.0 (1.4 m) and 6.5 % (63 %) at
    1.5 (1 m); with roots spread over [-0.3, 0.3] the median is 1.4 % even at
    14 m. ``depth="perspective"`` makes it exact at any distance and keeps
    every joint in front of the camera; it costs about 9 times the default
    path on the CPU (``benchmarks/bench_gpa_2d.py``).

    Examples
    --------
    >>> import numpy as np, gpa_arrays
    >>> rng = np.random.default_rng(0)
    >>> source = rng.normal(scale=0.3, size=(4, 17, 3))
    >>> target = rng.uniform(-0.5, 0.5, size=(4, 17, 2))
    >>> camera = np.array([1.5, 1.5, 0.0, 0.0])
    >>> out = gpa_arrays.gpa(source, target, camera, seed=0)
    >>> out.shape
    (4, 17, 3)
    """
    if (
        type(target_2d) is Targets
        and type(source_3d) is np.ndarray
        and source_3d.ndim == 3
        and (out is None or type(out) is np.ndarray)
        and camera is None
        and (seed is None or type(seed) is int)
        and type(pairing) is str
        and type(root) is int
        and type(check) is bool
        and target_root is None
        and reference_frame is None
        and mode == "paired"
        and depth == "weak"
        and return_2d is False
        and backend == "auto"
        and type(target_2d._records) is np.ndarray
    ):  # a training loop's call: see _planned
        return _planned(source_3d, target_2d, pairing, seed, root, check, out)
    options = Options.make(mode, depth, return_2d, check, backend)
    if not options.return_2d and _interop.plain_host(
        source_3d, target_2d, camera, out, pairing
    ):  # the common case, without the detour through _gpa
        return _align(
            source_3d, target_2d, camera, pairing, seed, 0, root, target_root,
            reference_frame, options, out, None, _HOST_CALL,
        )  # fmt: skip
    return _gpa(
        source_3d, target_2d, camera, pairing, seed, 0, root, target_root,
        reference_frame, options, out,
    )  # fmt: skip


#: Call plans of :func:`_planned`, by the arguments they were validated for.
_plans: dict = {}


def _planned(source, targets, pairing, seed, root, check, out, step=0):
    """``gpa(batch, targets, seed=int or None, out=...)`` on the host, from a plan.

    A training loop makes this call thousands of times with the same shape,
    dtype, pairing name, root and check. What depends on those alone (the
    pose-array checks, the result dtype, the root index, the backend, the
    Targets' dtype) is validated once, by the validators every call uses, and
    kept in a plan; each call then checks only what can change from call to
    call (the seed and the pairing against the pose counts, `out` and its
    overlap with the source) before the kernel runs. Errors are those of the
    general path, raised by the same functions. The ``GPA`` object's calls
    come here too, with their `step`.
    """
    records = targets._records
    key = (source.shape, source.dtype, records.dtype, pairing, root, check)
    plan = _plans.get(key)
    if plan is None:
        poses_3d(source)
        dtype = result_dtype(source.dtype, "source_3d")
        index = joint_index(root, source.shape[1], "root")
        _, module = _resolve_backend("auto", _interop.HOST)
        prepared(targets, None, None, dtype)
        if len(_plans) >= 64:  # shapes vary without end in some programs
            _plans.clear()
        plan = _plans[key] = (module, dtype, index)
    module, dtype, index = plan
    n, m = source.shape[0], records.shape[0]
    spec = resolve_pairing(pairing, n, m, seed, step)
    if out is None:
        result = np.empty(source.shape, dtype)
    else:
        reads = (("source_3d", source),)
        result = out_array(out, source.shape, dtype, reads, inplace=source)
    if n == 0:
        return result
    source = as_dtype(source, dtype)
    status = module.gpa_records(source, records, result, index, spec, status=check)
    raise_for_pose_status(status, n, m, None, check=check)
    return result


def _gpa(source_3d, target_2d, camera, pairing, seed, step, root, target_root,
         reference_frame, options, out):  # fmt: skip
    """:func:`gpa` with validated `options` and the pairing's `step`.

    The one entry of every in-memory alignment (:func:`gpa`, the ``GPA``
    object): views the caller's arrays as kernel arrays (plain NumPy arguments
    skip the :class:`_interop.Call` detour), aligns, and wraps the result in the
    caller's type.
    """
    out_3d, out_2d = split_out(out, options.return_2d)
    if _interop.plain_host(source_3d, target_2d, camera, out_3d, out_2d, pairing):
        return _align(
            source_3d, target_2d, camera, pairing, seed, step, root, target_root,
            reference_frame, options, out_3d, out_2d, _HOST_CALL,
        )  # fmt: skip
    with _interop.Call(
        "source_3d", source_3d=source_3d, target_2d=target_2d, camera=camera,
        out=out_3d, out_2d=out_2d, pairing=pairing,
    ) as call:  # fmt: skip
        result = _align(
            call["source_3d"], call["target_2d"], call["camera"], call["pairing"],
            seed, step, root, target_root, reference_frame, options, call["out"],
            call["out_2d"], call,
        )  # fmt: skip
        if options.return_2d:
            return call.wrap(result[0], out_3d), call.wrap(result[1], out_2d)
        return call.wrap(result, out_3d)


class _HostCall:
    """The :class:`_interop.Call` interface for plain NumPy arguments."""

    device = _interop.HOST
    xp = np

    @staticmethod
    def empty(shape, dtype):
        return np.empty(shape, dtype=dtype)


_HOST_CALL = _HostCall()


def _align(source, target_2d, camera, pairing, seed, step, root, target_root,
           reference_frame, options, out, out_2d, call):  # fmt: skip
    """Validate kernel arrays (NumPy or CuPy, one device), run the kernels."""
    xp = call.xp
    source = as_array(source, "source_3d", xp)
    if source.ndim == 4:
        return _align_clips(
            source, target_2d, camera, pairing, seed, step, root, target_root,
            reference_frame, options, out, out_2d, call,
        )  # fmt: skip
    poses_3d(source)
    dtype = result_dtype(source.dtype, "source_3d")
    n, j = source.shape[0], source.shape[1]
    root = joint_index(root, j, "root")
    name, module = _resolve_backend(options.backend, call.device)
    device = name in _DEVICE_BACKENDS
    target, camera, t_root, m = _call_targets(
        target_2d, camera, root, target_root, reference_frame, source, options,
        dtype, xp,
    )  # fmt: skip
    spec = resolve_pairing(pairing_argument(pairing, xp), n, m, seed, step)
    reads = _pairing_reads(pairing, spec)
    if not isinstance(target, Targets):  # prepared records are not the caller's
        reads = (("target_2d", target), ("camera", camera), *reads)
    result, result_2d = _outputs(out, out_2d, source, dtype, reads, options, call)
    if n == 0:
        return (result, result_2d) if options.return_2d else result
    source = as_dtype(source, dtype)
    if isinstance(target, Targets):
        records, wide, t_status, d_status = target._records, target._wide, None, None
    else:
        records, wide, t_status, d_status = _call_records(
            module, device, target, camera, t_root, dtype, options
        )
    status = _align_kernel(
        module, device, source, records, wide, camera, root, spec, dtype, options,
        result, result_2d,
    )  # fmt: skip
    if device:  # one round trip for every status of the call
        t_status, d_status, status = module.read_status(t_status, d_status, status)
        if options.check:
            raise_for_target_status(t_status, m)
            raise_for_target_status(d_status, m)
    raise_for_pose_status(status, n, m, spec.index, check=options.check)
    return (result, result_2d) if options.return_2d else result


def _call_targets(target_2d, camera, root, target_root, reference_frame, source,
                  options, dtype, xp):  # fmt: skip
    """``(target, camera rows, target root, M)`` of a pose call, validated.

    `target` is the Targets object (camera None) or the (M, Jt, 2) target
    array (the reference frame of target clips).
    """
    if isinstance(target_2d, Targets):
        if reference_frame is not None:
            no_reference_frame(reference_frame, source.shape, "prepared Targets")
        if options.poseda:
            raise TypeError(
                "target_2d: mode='poseda' reproduces the published arithmetic on raw "
                "arrays and does not accept a Targets object"
            )
        prepared(target_2d, camera, target_root, dtype)
        return target_2d, None, target_2d.root, len(target_2d)
    target = as_array(target_2d, "target_2d", xp)
    if target.ndim == 4:
        target = target_frame(target, reference_frame)
    else:
        no_reference_frame(reference_frame, source.shape, target.shape)
    poses_2d(target)
    m, n = target.shape[0], source.shape[0]
    t_root = root if target_root is None else target_root
    t_root = joint_index(t_root, target.shape[1], "target_root")
    if options.poseda and n != m:
        raise ValueError(
            "target_2d: mode='poseda' needs as many targets as sources, got "
            f"{m} targets for {n} sources"
        )
    what = "source pose" if options.poseda else "target pose"
    return target, camera_rows(camera, m, what, xp), t_root, m


def _pairing_reads(pairing, spec):
    """The pairing arrays a call reads: the caller's, and the int64 copy if made."""
    if spec.index is None:
        return ()
    if hasattr(pairing, "shape") and pairing is not spec.index:
        return (("pairing", pairing), ("pairing", spec.index))
    return (("pairing", spec.index),)


def _outputs(out, out_2d, source, dtype, reads, options, call):
    """``(result, result_2d)``: the validated `out` arrays, or new ones.

    `reads` are the other arrays the kernels read (``(name, array)``); no output
    may overlap them, and `out` may overlap `source` only as the same view (in
    place). The 2D output is None without ``return_2d``.
    """
    shape = source.shape
    if out is None:
        result = call.empty(shape, dtype)
    else:
        reads = (*reads, ("source_3d", source))
        result = out_array(out, shape, dtype, reads, inplace=source)
    if not options.return_2d:
        return result, None
    shape_2d = (*shape[:-1], 2)
    if out_2d is None:
        return result, call.empty(shape_2d, dtype)
    reads = (*reads, ("source_3d", source), ("out_3d", result))
    return result, out_array(out_2d, shape_2d, dtype, reads, label="out_2d")


def _call_records(module, device, target, camera, t_root, dtype, options):
    """``(records, wide records, status, distortion status)`` of a pose call.

    Host backends raise target problems here, before the pose kernel runs; on a
    device the statuses are pending and read with the pose kernel's. Distortion
    coefficients of 9-value cameras are checked whenever the call checks (they
    are data of the call even when no projection uses them); their wide records
    are built only for ``return_2d``.
    """
    m = target.shape[0]
    check = options.check
    records, t_status = _prepare_records(
        module, device, target, camera, t_root, dtype, check, options.poseda
    )
    if not device and check:
        raise_for_target_status(t_status, m)
    wide = d_status = None
    if camera.shape[1] == 9 and (check or options.return_2d):
        # paired: record and distortion in one gathered row; poseda: only the
        # coefficients' validation (the kernel reads camera row i)
        wide, d_status = _prepare_wide(module, device, records, camera, check)
        if not device and check:
            raise_for_target_status(d_status, m)
    return records, wide, t_status, d_status


def _align_kernel(module, device, source, records, wide, camera, root, spec, dtype,
                  options, result, result_2d):  # fmt: skip
    """Run the pose kernel of a call; its (host, or pending device) status."""
    # The optional features' arguments go to the kernels only when used, so the
    # default path keeps its plain signature.
    extra = {}
    if options.return_2d:
        extra["out2d"] = result_2d
        if wide is not None and not options.poseda:
            records = wide[:, :8]
            extra["distortion"] = wide[:, 8:]
    if options.perspective:
        extra["perspective"] = True
    # explicit indices are range-checked whatever `check` says
    extra["status"] = options.check or spec.kind == KIND_ARRAY
    if options.poseda:
        camera = narrowed(camera, dtype, "camera", ("row", "rows"), False)
        return module.gpa_poseda(source, records, camera, result, root, spec, **extra)
    return module.gpa_records(source, records, result, root, spec, **extra)


def _align_clips(source, target_2d, camera, pairing, seed, step, root, target_root,
                 reference_frame, options, out, out_2d, call):  # fmt: skip
    """:func:`_align` for clips, ``source`` of shape (N, T, J, 3).

    Three passes, each a kernel every backend has: GPA on the reference frames
    (all of the per-pose validation, pairing and depth rules, into an (N, J, 3)
    scratch array), the translation of each reference frame applied to its
    clip (:func:`numpy_.gpa_clip`), and with `return_2d` the projection of the
    aligned clips through the paired cameras (:func:`numpy_.project_points`).
    The extra traffic over a per-frame call is the scratch array, 1/T of the
    output.
    """
    xp = call.xp
    clips_3d(source)
    if options.poseda:
        raise ValueError(
            "mode: 'poseda' reproduces the published per-pose arithmetic and takes "
            f"(N, J, 3) poses, got source_3d of shape {source.shape}; use "
            "mode='paired' for clips"
        )
    n, frames, joints = source.shape[0], source.shape[1], source.shape[2]
    dtype = result_dtype(source.dtype, "source_3d")
    root = joint_index(root, joints, "root")
    frame = frame_index(reference_frame, frames, "reference_frame", "source clips")
    name, module = _resolve_backend(options.backend, call.device)
    device = name in _DEVICE_BACKENDS
    # The targets are prepared here rather than inside the reference-frame
    # call, so that their records (and cameras) are at hand for the projection.
    if isinstance(target_2d, Targets):
        targets = prepared(target_2d, camera, target_root, dtype)
        reads = ()
    else:
        target = poses_2d(
            target_frame(as_array(target_2d, "target_2d", xp), reference_frame)
        )
        t_root = root if target_root is None else target_root
        reads = (("target_2d", target), ("camera", camera))
        targets = _prepare_targets(
            target, camera, t_root, options.backend, dtype, options.check, xp,
            call.device,
        )  # fmt: skip
    m = len(targets)
    # one pairing for every pass (seed=None draws its fresh bits once, here)
    spec = resolve_pairing(pairing_argument(pairing, xp), n, m, seed, step)
    reads = (*reads, *_pairing_reads(pairing, spec))
    result, result_2d = _outputs(out, out_2d, source, dtype, reads, options, call)
    if n == 0:
        return (result, result_2d) if options.return_2d else result
    a_status, c_status = _move_clips(
        module, device, as_dtype(source, dtype), targets._records, spec, root,
        frame, options.perspective, options.check, result,
        call.empty((n, joints, 3), dtype),
    )  # fmt: skip
    p_status = None
    if options.return_2d:
        records, distortion = _split_wide(
            targets._records if targets._wide is None else targets._wide
        )
        p_status = _project_clips(
            module, device, records, distortion, spec, result, result_2d,
            options.check, call,
        )  # fmt: skip
    if device:  # one round trip for every status of the call
        a_status, c_status, p_status = module.read_status(a_status, c_status, p_status)
    _raise_for_clips(
        a_status, (c_status, p_status), options.check, spec, result, result_2d, n,
        m, xp,
    )  # fmt: skip
    return (result, result_2d) if options.return_2d else result


def _project_clips(module, device, records, distortion, spec, result, result_2d,
                   check, call):  # fmt: skip
    """Pass 3 of a clip call: project each clip through its paired camera.

    `records` are (M, 8) target records, `distortion` None or the (M, 5)
    coefficients of 9-value cameras.
    """
    xp = call.xp
    n, frames, joints = result.shape[:3]
    index = module.pair_indices(spec)
    rows = records[index, 3:7]
    if distortion is not None:
        rows = xp.concatenate([rows, distortion[index, :5]], axis=1)
    size = n * frames * joints
    # a C-order out_2d is written in place; any other goes through a copy
    direct = result_2d.flags.c_contiguous
    flat_2d = (
        result_2d.reshape(size, 2) if direct else call.empty((size, 2), result.dtype)
    )
    status = module.project_points(
        result.reshape(size, 3), rows, frames * joints, flat_2d, status=check
    )
    if not direct:
        result_2d[...] = flat_2d.reshape(result_2d.shape)
    return status


def _split_wide(records):
    """``(records, distortion)`` of (M, 8) records or (M, 13) wide records."""
    if records.shape[1] > RECORD_WIDTH:
        return records[:, :RECORD_WIDTH], records[:, RECORD_WIDTH:]
    return records, None


def _move_clips(module, device, src, records, spec, root, frame, perspective, check,
                result, anchor):  # fmt: skip
    """Passes 1 and 2 of a clip call; ``(reference-frame status, clip status)``.

    Pass 1 aligns the reference frames ``src[:, frame]`` as poses into the
    (N, J, 3) scratch array `anchor`, whose root joints are the anchors of pass
    2, which moves every frame of each clip with its reference frame. Statuses
    are pending on a device backend.
    """
    extra = {"perspective": True} if perspective else {}
    extra["status"] = check or spec.kind == KIND_ARRAY
    a_status = module.gpa_records(src[:, frame], records, anchor, root, spec, **extra)
    # the origin is a copy, not a view: `result` may be `src` (in place)
    origin = src[:, frame, root].copy()
    c_status = module.gpa_clip(src, origin, anchor[:, root], result, status=check)
    return a_status, c_status


def _raise_for_clips(status, others, check, spec, result, result_2d, n, m, xp,
                     offset=0, total=None):  # fmt: skip
    """Raise for what the passes of a clip call flagged (host statuses).

    `status` is the reference frames' (index problems, degenerate poses, no
    perspective depth), or None; `others` the clip and projection kernels'.
    Explicit-index problems are raised whatever `check` says. Non-finite output
    and joints behind the camera are recounted by clip on the result: the clip
    kernel counts clips on the host and joints on a GPU, and a clip whose
    reference frame is non-finite has a non-finite anchor, hence non-finite
    frames, so one count on the result covers every pass.
    """
    where = {"offset": offset, "total": total}
    # explicit-index problems first, whatever `check` says
    raise_for_pose_status(status, n, m, spec.index, check=False, **where)
    if not check:
        return
    # One pass over the depths finds the clips with a joint behind the camera
    # (the clip kernel does not look); the full non-finite recount runs only
    # when a kernel flagged something.
    behind = ~(result[..., 2] > 0).all(axis=(1, 2))
    flagged = status is not None or any(x is not None for x in others)
    if not flagged and not bool(behind.any()):
        return
    axes = (1, 2, 3)
    bad = ~xp.isfinite(result).all(axis=axes)
    if result_2d is not None:
        bad |= ~xp.isfinite(result_2d).all(axis=axes)
    behind &= ~bad
    status = new_status() if status is None else status.copy()
    for category, mask in ((POSE_NONFINITE, bad), (POSE_BEHIND, behind)):
        hits = xp.flatnonzero(mask)
        status[category] = (int(hits.size), int(hits[0]) if hits.size else 0)
    raise_for_pose_status(status, n, m, **where)


# --- chunked entry points (gpa-arrays augment, gpa_arrays.dask) ----------------------


def _gpa_block(source, records, spec, root, backend, check, out=None, frame=None, *,
               perspective=False, out_2d=None):  # fmt: skip
    """Align one block of a larger data set against prepared target records.

    The body of a :mod:`gpa_arrays.dask` task and of each step of
    ``gpa-arrays augment``. The caller has validated the whole call once; `spec`
    is the pairing of the *whole* data set restricted to this block with
    ``spec.chunk(offset, count)``. Since a pose's pairing depends on its global
    index only, the blocks' outputs, concatenated, equal one :func:`gpa` call on
    the whole data set, bit for bit. Paired mode only (the ``"poseda"``
    arithmetic indexes cameras by local pose).

    Parameters
    ----------
    source : (count, J, 3) or (count, T, J, 3) ndarray, metres
        The global source poses (or clips) ``spec.offset .. spec.offset + count
        - 1``; cast to the records' dtype.
    records : (M, 8) or (M, 13) ndarray
        Target records (``Targets._records``, or :func:`_prepare_block`) of the
        result dtype; wide records (``Targets._wide``) project `out_2d` with
        their cameras' distortion.
    spec : PairingSpec
        The call's pairing restricted to this block (:meth:`PairingSpec.chunk`).
    root : int
        Source root joint, already normalised to ``[0, J)``.
    backend : str
        A backend name that :func:`_resolve_backend` accepts.
    check : bool
        As in :func:`gpa`; explicit pairing indices are always range-checked.
    out : ndarray of the shape of `source` and the records' dtype, optional
        Written in full; may be `source` itself.
    frame : int, optional
        Reference frame of clips, normalised to ``[0, T)``; clips only.
    perspective : bool
        ``depth="perspective"``.
    out_2d : ndarray of the shape of `source` with 2 coordinates, optional
        With ``return_2d``: where the projections go, written in full.

    Returns
    -------
    ndarray of the shape of `source` and the records' dtype
        `out` when given.

    Raises
    ------
    ValueError
        Bad poses or pairing indices in this block, named by global index, or a
        block that does not match `spec`.
    TypeError
        A block that is not a NumPy array, or an `out` of the wrong dtype.
    """
    if not isinstance(source, np.ndarray):
        raise TypeError(
            f"source_3d: expected NumPy blocks, got {type(source).__module__}."
            f"{type(source).__name__}"
        )
    if source.shape[0] != spec.count:
        raise ValueError(
            f"source_3d: block of {source.shape[0]} poses for a pairing chunk of "
            f"{spec.count}"
        )
    dtype = records.dtype
    if out is None:
        out = np.empty(source.shape, dtype=dtype)
    elif out.shape != source.shape or out.dtype != dtype:
        raise TypeError(
            f"out: expected shape {source.shape} and dtype {dtype}, got {out.shape} "
            f"and {out.dtype}"
        )
    if source.shape[0] == 0:
        return out
    _, module = _resolve_backend(backend)
    records, distortion = _split_wide(records)
    source = as_dtype(source, dtype)
    if source.ndim == 4:
        return _gpa_clip_block(
            source, records, distortion, spec, root, module, check, out, frame,
            perspective, out_2d,
        )  # fmt: skip
    extra = {"perspective": True} if perspective else {}
    if out_2d is not None:
        extra["out2d"] = out_2d
        if distortion is not None:
            extra["distortion"] = distortion
    status = module.gpa_records(source, records, out, root, spec, **extra)
    raise_for_pose_status(
        status, spec.count, spec.m, spec.index, offset=spec.offset, total=spec.n,
        check=check,
    )  # fmt: skip
    return out


def _gpa_clip_block(source, records, distortion, spec, root, module, check, out,
                    frame, perspective, out_2d):  # fmt: skip
    """:func:`_gpa_block` for a block of clips (the passes of :func:`_align_clips`)."""
    count, joints = source.shape[0], source.shape[2]
    status, c_status = _move_clips(
        module, False, source, records, spec, root, frame, perspective, check, out,
        np.empty((count, joints, 3), dtype=records.dtype),
    )  # fmt: skip
    p_status = None
    if out_2d is not None:
        p_status = _project_clips(
            module, False, records, distortion, spec, out, out_2d, check, _HOST_CALL
        )
    _raise_for_clips(
        status, (c_status, p_status), check, spec, out, out_2d, count, spec.m, np,
        offset=spec.offset, total=spec.n,
    )  # fmt: skip
    return out


def _prepare_block(target, camera, root, dtype, backend, check, offset, total,
                   wide=False):  # fmt: skip
    """Records of one block of a chunked target set (a :mod:`gpa_arrays.dask` task).

    Parameters
    ----------
    target : (m, Jt, 2) ndarray
        The global targets ``offset .. offset + m - 1`` of `total`.
    camera : (m, C) or (C,) ndarray
        Their camera rows, or one row for all.
    root : int
        Target root joint, already normalised.
    dtype : numpy.dtype
        Record dtype (the result dtype of the call).
    backend : str
        A backend name that :func:`_resolve_backend` accepts.
    check : bool
        Raise on bad targets and cameras, named by global index.
    offset, total : int
        Where the block lies in the whole target set.
    wide : bool
        For ``return_2d`` through 9-value cameras: return wide records, the
        distortion coefficients beside each record.

    Returns
    -------
    (m, 8) or, wide, (m, 13) ndarray of `dtype`
    """
    _, module = _resolve_backend(backend)
    if camera.ndim == 1:
        camera = np.broadcast_to(camera, (target.shape[0], camera.shape[0]))
    target = narrowed(target, dtype, "target_2d", ("target", "targets"), check)
    camera = narrowed(camera, dtype, "camera", ("row", "rows"), check)
    records, status = module.prepare_records(target, camera, root)
    where = {"offset": offset, "total": total}
    if check:
        raise_for_target_status(status, target.shape[0], **where)
    if camera.shape[1] == 9 and (check or wide):
        wide_records, status = module.prepare_wide_records(records, camera)
        if check:
            raise_for_target_status(status, target.shape[0], **where)
        if wide:
            return wide_records
    return records
