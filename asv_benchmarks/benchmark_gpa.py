"""gpa() itself: every backend, size, dtype, input kind, mode and pairing.

The peers and the bound the same calls are compared with live in
``benchmark_peers.py``, at the same sizes and with the same inputs.
"""

import inspect

import numpy as np

import gpa_arrays

from ._common import (
    BACKENDS,
    BATCH,
    BATCH_TARGETS,
    DTYPES,
    JOINTS,
    LARGE,
    SIZES,
    inputs,
    require_backend,
    synchronizer,
)


def _device(backend):
    return "cupy" if backend == "cupy" else "cpu"


def _touched_like(array):
    """An output buffer whose pages are already mapped (no faults when timed)."""
    return array.copy()


def _warm_up(backend, call):
    """Compile or load the JIT/NVRTC cache before timing (NumPy needs nothing)."""
    if backend != "numpy":
        call()


class GPA:
    """``gpa(source, target, ...)`` with ``N = M``, seeded, on one backend.

    ``targets="arrays"`` is the one-shot call (target records computed inside);
    ``"prepared"`` passes ``prepare_targets(...)``. ``time_gpa`` writes into a
    preallocated ``out=``; ``time_gpa_fresh`` lets the call allocate (page faults
    of a fresh output included). ``mode="poseda"`` takes raw arrays only.
    """

    params = (BACKENDS, SIZES, DTYPES, ("arrays", "prepared"), ("paired", "poseda"))
    param_names = ("backend", "n", "dtype", "targets", "mode")

    def setup(self, backend, n, dtype, targets, mode):
        if targets == "prepared" and mode == "poseda":
            raise NotImplementedError("mode='poseda' takes raw target arrays only")
        require_backend(backend)
        source, target, camera = inputs(n, n, dtype, _device(backend))
        if targets == "prepared":
            target = gpa_arrays.prepare_targets(target, camera, backend=backend)
            camera = None
        self.source, self.target, self.camera = source, target, camera
        self.mode, self.backend = mode, backend
        self.out = _touched_like(source)
        self.sync = synchronizer(backend)
        _warm_up(backend, self.time_gpa)

    def time_gpa(self, *params):
        gpa_arrays.gpa(
            self.source,
            self.target,
            self.camera,
            seed=1,
            mode=self.mode,
            backend=self.backend,
            out=self.out,
        )
        self.sync()

    def time_gpa_fresh(self, *params):
        gpa_arrays.gpa(
            self.source,
            self.target,
            self.camera,
            seed=1,
            mode=self.mode,
            backend=self.backend,
        )
        self.sync()


class Pairing:
    """Each pairing kind, float32, prepared targets, ``out=``, ``N = M``.

    ``"array"`` passes explicit indices (``pair_indices`` of the permutation),
    which the kernel range-checks instead of computing them.
    """

    params = (BACKENDS, SIZES, ("permutation", "random", "identity", "array"))
    param_names = ("backend", "n", "pairing")

    def setup(self, backend, n, pairing):
        require_backend(backend)
        source, target, camera = inputs(n, n, "float32", _device(backend))
        self.targets = gpa_arrays.prepare_targets(target, camera, backend=backend)
        if pairing == "array":
            pairing = gpa_arrays.pair_indices(n, n, seed=1)
            if backend == "cupy":
                import cupy

                pairing = cupy.asarray(pairing)
        self.source, self.pairing, self.backend = source, pairing, backend
        self.out = _touched_like(source)
        self.sync = synchronizer(backend)
        _warm_up(backend, self.time_gpa)

    def time_gpa(self, *params):
        gpa_arrays.gpa(
            self.source,
            self.targets,
            pairing=self.pairing,
            seed=1,
            backend=self.backend,
            out=self.out,
        )
        self.sync()


class TrainingBatch:
    """One training step's call: a batch of 1024 poses, large prepared target set.

    This is the per-call latency the core issue targets (<= 15 us on the CPU).
    ``call``: ``"out="`` (seeded, preallocated output), ``"fresh"`` (seeded,
    allocating), ``"seed=None"`` (fresh OS entropy per call, as the published
    code draws a new permutation), ``"augmenter"`` (the ``gpa_arrays.GPA``
    callable object, once it exists).
    """

    params = (BACKENDS, DTYPES, ("out=", "fresh", "seed=None", "augmenter"))
    param_names = ("backend", "dtype", "call")

    def setup(self, backend, dtype, call):
        require_backend(backend)
        source, target, camera = inputs(BATCH, BATCH_TARGETS, dtype, _device(backend))
        targets = gpa_arrays.prepare_targets(target, camera, backend=backend)
        out = _touched_like(source)
        gpa = gpa_arrays.gpa
        if call == "out=":
            self.call = lambda: gpa(source, targets, seed=1, backend=backend, out=out)
        elif call == "fresh":
            self.call = lambda: gpa(source, targets, seed=1, backend=backend)
        elif call == "seed=None":
            self.call = lambda: gpa(source, targets, backend=backend, out=out)
        else:
            augmenter = getattr(gpa_arrays, "GPA", None)
            if augmenter is None:
                raise NotImplementedError("gpa_arrays.GPA is not in this version")
            augment = augmenter(target, camera, seed=0)
            self.call = lambda: augment(source)
        self.sync = synchronizer(backend)
        for _ in range(20):
            self.call()
        self.sync()

    def time_call(self, *params):
        self.call()
        self.sync()


_OPTIONS = {
    "plain": {},
    "return_2d=True": {"return_2d": True},
    "depth='perspective'": {"depth": "perspective"},
}


class Options:
    """Options that change what a call computes, N = M = 1e6, float32, prepared.

    Each case is skipped (``NotImplementedError``) while ``gpa`` lacks the
    keyword. ``plain`` is the same call without options, for the ratio.
    """

    params = (BACKENDS, tuple(_OPTIONS))
    param_names = ("backend", "option")

    def setup(self, backend, option):
        keywords = _OPTIONS[option]
        accepted = inspect.signature(gpa_arrays.gpa).parameters
        missing = [k for k in keywords if k not in accepted]
        if missing:
            raise NotImplementedError(f"gpa() has no {missing[0]!r} keyword yet")
        require_backend(backend)
        source, target, camera = inputs(LARGE, LARGE, "float32", _device(backend))
        targets = gpa_arrays.prepare_targets(target, camera, backend=backend)
        self.call = lambda: gpa_arrays.gpa(
            source, targets, seed=1, backend=backend, **keywords
        )
        self.sync = synchronizer(backend)
        self.call()
        self.sync()

    def time_gpa(self, *params):
        self.call()
        self.sync()


class PairIndices:
    """``pair_indices(N, N)``: the pairing alone, materialised as int64."""

    params = (("numpy", "numba"), SIZES, ("permutation", "random"))
    param_names = ("backend", "n", "pairing")

    def setup(self, backend, n, pairing):
        require_backend(backend)
        self.args = (n, n)
        self.kwargs = {"pairing": pairing, "seed": 1, "backend": backend}
        np.asarray(gpa_arrays.pair_indices(*self.args, **self.kwargs))

    def time_pair_indices(self, *params):
        gpa_arrays.pair_indices(*self.args, **self.kwargs)


#: Frames per clip of the Clips class: VideoPose3D's 27-frame receptive field.
CLIP_FRAMES = 27


class Clips:
    """Clip-consistent GPA against the per-frame call on the same poses.

    About 1e6 poses (N = 37,037 clips of 27 frames), float32, prepared targets.
    ``clips`` is ``gpa`` on the (N, 27, 17, 3) array (reference frame, then the
    translation of every frame); ``frames`` the per-pose call on the same data
    viewed as (27 N, 17, 3), which moves the same bytes with one pass fewer:
    their ratio is the price of keeping each clip's trajectory.
    """

    params = (BACKENDS, ("clips", "frames"))
    param_names = ("backend", "call")

    def setup(self, backend, call):
        require_backend(backend)
        clips = LARGE // CLIP_FRAMES
        source, target, camera = inputs(
            clips * CLIP_FRAMES, LARGE, "float32", _device(backend)
        )
        targets = gpa_arrays.prepare_targets(target, camera, backend=backend)
        if call == "clips":
            source = source.reshape(clips, CLIP_FRAMES, JOINTS, 3)
        out = _touched_like(source)
        self.call = lambda: gpa_arrays.gpa(
            source, targets, seed=1, backend=backend, out=out
        )
        self.sync = synchronizer(backend)
        self.call()
        self.sync()

    def time_gpa(self, *params):
        self.call()
        self.sync()
