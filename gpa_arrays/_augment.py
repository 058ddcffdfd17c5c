"""The reusable augmentation object, :class:`GPA`."""

from __future__ import annotations

import sys
import threading

import numpy as np

from . import _api, _interop
from ._pairing import GOLDEN, mix64, resolve_pairing, resolve_seed
from ._targets import Targets
from ._typing import ArrayLike
from ._validate import (
    PAIRINGS,
    Options,
    as_array,
    camera_rows,
    choice,
    count,
    flag,
    joint_index,
    optional_frame,
    poses_2d,
    prepared,
    result_dtype,
    target_frame,
)

__all__ = ["GPA"]


class GPA:
    """Global Position Alignment as a reusable augmentation for training loops.

    Holds one target set; each call aligns a batch of source poses against it
    with a fresh pairing. Targets are prepared (:func:`prepare_targets`) once
    per device and dtype the batches come in, on first use, and reused after.
    Call ``k`` (counting from 0) pairs with the counter-based pairing of
    ``(seed, step=k)``, so a run is reproducible from the seed alone and
    independent of batch contents.

    Parameters
    ----------
    target_2d : (M, Jt, 2) or (M, Tt, Jt, 2) array, or Targets
        Target-domain 2D poses or clips, normalised screen coordinates; any array type
        :func:`gpa` accepts (NumPy, CuPy, torch, DLPack). A Targets object is
        used as it is, on its own device only.
    camera : (4,), (9,), (M, 4) or (M, 9) array, optional
        ``[fx, fy, cx, cy, ...]`` per target (per source pose in
        ``mode="poseda"``); required with a target array.
    seed : None, int or numpy.random.Generator
        Seed of the pairing stream; None draws one from the operating system
        (see :attr:`seed` to record it).
    root : int
        Root joint of the source poses.
    target_root : int, optional
        Root joint of the target poses (e.g. 14 for MPI-INF-3DHP-17); defaults
        to `root`.
    mode : {"paired", "poseda"}
        As in :func:`gpa`. ``"poseda"`` needs batches of exactly ``M`` poses.
    pairing : {"permutation", "random", "identity"}
        As in :func:`gpa`.
    reference_frame : int, optional
        For clip batches, (B, T, J, 3), and target clips, (M, Tt, Jt, 2): the
        frame aligned, as in :func:`gpa` (default the centre frame). Batches
        of single poses ignore it.
    depth : {"weak", "perspective"}
        As in :func:`gpa`: the published weak-perspective depth (default) or
        the depth at which the pinhole projection has exactly the target's box
        scale (``mode="paired"`` only).
    return_2d : bool
        As in :func:`gpa`: each call also returns the aligned poses projected
        through the camera each was placed with, the 2D inputs a lifting
        network trains on.
    check : bool
        As in :func:`gpa`; also applies to the one-time target preparation. On
        a GPU, ``check=True`` synchronises once per call (one 48-byte read).
    backend : {"auto", "numba", "numpy", "cupy"}
        As in :func:`gpa`.
    per_worker : bool
        Inside a PyTorch ``DataLoader`` worker, pair from a per-worker seed
        (see Notes). False: every worker uses :attr:`seed`, hence the same
        pairings as the others.

    Notes
    -----
    Batches on another device than the targets: the object copies the targets
    (not the batch) to the batch's device once, explicitly, and keeps the copy.
    This is the one place gpa_arrays moves data between devices; :func:`gpa`
    itself refuses mixed devices.

    The step counter is per object. PyTorch ``DataLoader`` workers (processes)
    each hold a copy with the same seed and step; with ``per_worker=True``
    (the default) each worker pairs from its own seed (:attr:`stream_seed`,
    derived from :attr:`seed` and the worker id, as torch seeds its own
    generators per worker), so the workers' batches are augmented
    independently and a run is still reproducible from the seed. Calls from
    several threads are safe and each takes its own step.

    Examples
    --------
    >>> import numpy as np, gpa_arrays
    >>> rng = np.random.default_rng(0)
    >>> target = rng.uniform(-0.5, 0.5, size=(100, 17, 2))
    >>> aug = gpa_arrays.GPA(target, [1.5, 1.5, 0.0, 0.0], seed=0)
    >>> batch = rng.normal(scale=0.3, size=(32, 17, 3))
    >>> moved = aug(batch)
    >>> aug.step
    1
    >>> np.array_equal(moved, gpa_arrays.GPA(target, [1.5, 1.5, 0, 0], seed=0)(batch))
    True
    """

    def __init__(
        self, target_2d, camera=None, *,
        seed=None, root=0, target_root=None, reference_frame=None,
        mode="paired", pairing="permutation", depth="weak", return_2d=False,
        check=True, backend="auto", per_worker=True,
    ):  # fmt: skip
        self._options = Options.make(mode, depth, return_2d, check, backend)
        if reference_frame is not None and self._options.poseda:
            raise ValueError(
                "reference_frame: mode='poseda' aligns (N, J, 3) poses, not clips"
            )
        self._pairing = choice(
            pairing,
            PAIRINGS,
            "pairing",
            " (a GPA object draws a fresh pairing per call)",
        )
        self._seed = resolve_seed(seed)
        self._per_worker = flag(per_worker, "per_worker")
        self._root = root  # validated against each batch's joint count
        options = self._options
        # host batches of poses with the default options take the cached call
        # plan of gpa(batch, targets, seed=..., out=...)
        self._plannable = (
            type(root) is int
            and options.backend == "auto"
            and options.mode == "paired"
            and options.depth == "weak"
            and not options.return_2d
        )
        self._reference_frame = optional_frame(reference_frame)
        self._step = 0
        self._lock = threading.Lock()
        self._cache = {}
        if isinstance(target_2d, Targets):
            if self._options.poseda:
                raise TypeError(
                    "target_2d: mode='poseda' needs raw target and camera arrays, "
                    "got a Targets object"
                )
            prepared(target_2d, camera, target_root, target_2d.dtype)
            key = (_interop.device_of(target_2d), target_2d.dtype)
            self._cache[key] = target_2d
            self._target = self._camera = None
            self._size = len(target_2d)
            self._target_root = target_2d.root
            return
        # Validate now, on a zero-copy view, so that errors surface here and
        # not at the first batch.
        with _interop.Call("target_2d", target_2d=target_2d, camera=camera) as call:
            view = as_array(call["target_2d"], "target_2d", call.xp)
            view = poses_2d(target_frame(view, reference_frame))
            self._size = view.shape[0]
            self._target_root = joint_index(
                root if target_root is None else target_root,
                view.shape[1],
                "root" if target_root is None else "target_root",
            )
            what = "source pose" if self._options.poseda else "target pose"
            camera_rows(call["camera"], self._size, what, call.xp)
        self._target = target_2d
        self._camera = camera

    # -- state ------------------------------------------------------------------------

    @property
    def seed(self) -> int:
        """The 64-bit seed of the pairing stream."""
        return self._seed

    @property
    def stream_seed(self) -> int:
        """The seed the next call pairs with.

        :attr:`seed`, except inside a worker process of a PyTorch
        ``DataLoader`` when the object was built with ``per_worker=True``
        (the default): there each worker pairs from its own seed, a mix of
        :attr:`seed` and the worker's id, so the workers' batches get
        independent pairings that are still reproducible from :attr:`seed`.
        """
        if self._per_worker:
            worker = _worker_id()
            if worker is not None:
                return _worker_seed(self._seed, worker)
        return self._seed

    @property
    def step(self) -> int:
        """Index of the next call in the pairing stream (calls made so far)."""
        return self._step

    @property
    def n_targets(self) -> int:
        """Number of target poses ``M``."""
        return self._size

    def reset(self, step=0, *, seed=None):
        """Rewind (or move) the pairing stream.

        Parameters
        ----------
        step : int
            The step the next call uses.
        seed : None, int or numpy.random.Generator, optional
            A new seed; None keeps the current one.
        """
        step = count(step, "step")
        with self._lock:
            if seed is not None:
                self._seed = resolve_seed(seed)
            self._step = step

    def pair_indices(self, n, step=None):
        """Target index of each pose of an `n`-pose batch at `step`.

        Parameters
        ----------
        n : int
            Batch size.
        step : int, optional
            Defaults to the step of the next call.

        Returns
        -------
        (n,) int64 ndarray
            The pairing that call aligns with (computed on the host).
        """
        step = self._step if step is None else count(step, "step")
        n = count(n, "n")
        spec = resolve_pairing(self._pairing, n, self._size, self.stream_seed, step)
        _, module = _api._resolve_backend("auto", _interop.HOST)
        return module.pair_indices(spec)

    def __repr__(self) -> str:
        # the options added later show only when set, so the default reads as before
        options = self._options
        extra = "" if options.depth == "weak" else f", depth={options.depth!r}"
        extra += ", return_2d=True" if options.return_2d else ""
        return (
            f"GPA(n_targets={self._size}, target_root={self._target_root}, "
            f"root={self._root}, mode={options.mode!r}, pairing={self._pairing!r}"
            f"{extra}, seed={self._seed}, step={self._step})"
        )

    def __getstate__(self):
        # prepared targets are rebuilt where the copy is used; locks do not pickle
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_cache")}
        if self._target is None:  # built from a Targets object: keep it
            state["_cache"] = dict(self._cache)
        return state

    def __setstate__(self, state):
        if "_options" not in state:  # pickled before the options object
            state["_options"] = Options.make(
                state.pop("_mode"), state.pop("_depth", "weak"),
                state.pop("_return_2d", False), state.pop("_check"),
                state.pop("_backend"),
            )  # fmt: skip
        state.setdefault("_reference_frame", None)
        state.setdefault("_per_worker", True)
        state.setdefault("_cache", {})
        state.setdefault("_plannable", False)  # pickled before call plans
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- the call ---------------------------------------------------------------------

    def __call__(
        self, source_3d: ArrayLike, *, out: ArrayLike | None = None
    ) -> ArrayLike:
        """Align a batch against the targets with the next pairing of the stream.

        Parameters
        ----------
        source_3d : (N, J, 3) or (N, T, J, 3) array, metres, camera space
            Poses, or clips moved as wholes (see :func:`gpa`). NumPy, CuPy,
            torch (CPU or CUDA) or DLPack; the result has its
            type, device and dtype (float16 gives float32, integers float64).
        out : (N, J, 3) array, optional
            As in :func:`gpa` (may be `source_3d` itself); with
            ``return_2d=True`` a pair ``(out_3d, out_2d)`` of arrays or None.

        Returns
        -------
        (N, J, 3) array, or a pair of (N, J, 3) and (N, J, 2) arrays
            The aligned poses and, with ``return_2d=True``, their projections
            in normalised screen coordinates.
        """
        device, dtype = _interop.describe(source_3d)
        dtype = result_dtype(dtype, "source_3d")
        targets = self._targets(device, dtype)
        with self._lock:
            step = self._step
            self._step += 1
        seed = self.stream_seed
        if self._options.poseda:
            target, camera = targets
            return _api._gpa(
                source_3d, target, camera, self._pairing, seed, step, self._root,
                self._target_root, None, self._options, out,
            )  # fmt: skip
        if (
            self._plannable
            and type(source_3d) is np.ndarray
            and source_3d.ndim == 3
            and (out is None or type(out) is np.ndarray)
            and type(targets._records) is np.ndarray
        ):  # the training loop's call (see _api._planned)
            return _api._planned(
                source_3d, targets, self._pairing, seed, self._root,
                self._options.check, out, step,
            )  # fmt: skip
        # the reference frame applies to clip batches; pose batches ignore it
        clips = getattr(source_3d, "ndim", 3) == 4
        frame = self._reference_frame if clips else None
        return _api._gpa(
            source_3d, targets, None, self._pairing, seed, step, self._root, None,
            frame, self._options, out,
        )  # fmt: skip

    def _targets(self, device, dtype):
        """The prepared targets (poseda: raw arrays) for `device` and `dtype`."""
        key = (device, dtype)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if self._target is None:
            (held,) = self._cache
            raise TypeError(
                f"source_3d: this GPA object holds Targets of dtype {held[1]} on "
                f"{_interop.device_name(held[0])}, got a batch of result dtype "
                f"{dtype} on {_interop.device_name(device)}; build the object from "
                "the target arrays to use it anywhere"
            )
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                return hit
            target = _interop.transfer(self._target, device)
            camera = _interop.transfer(self._camera, device)
            if self._options.poseda:
                hit = (target.astype(dtype), camera.astype(dtype))
            else:
                clips = getattr(target, "ndim", 3) == 4
                hit = _api.prepare_targets(
                    target,
                    camera,
                    target_root=self._target_root,
                    reference_frame=self._reference_frame if clips else None,
                    backend=self._options.backend,
                    dtype=dtype,
                    check=self._options.check,
                )
            if device != _interop.HOST:
                # later calls may run on other streams: finish the preparation
                _interop.synchronize(device)
            self._cache[key] = hit
        return hit


def _worker_id():
    """The id of the PyTorch DataLoader worker this process is, or None.

    Asks torch only when it is already imported: a DataLoader worker imported
    it; any other process has no worker id, and this module never imports torch.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    info = torch.utils.data.get_worker_info()
    return None if info is None else int(info.id)


def _worker_seed(seed, worker):
    """Worker `worker`'s seed: a bijective 64-bit mix of `seed` and the id.

    Distinct ids give distinct seeds (the mix is a bijection of ``seed +
    (worker + 1) * GOLDEN`` mod 2**64), and worker seeds look unrelated to each
    other and to `seed` itself.
    """
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.uint64(worker + 1) * GOLDEN
        return int(mix64(np.uint64(z)))
