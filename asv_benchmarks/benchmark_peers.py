"""What a user would otherwise run, and the hardware floor, beside ``benchmark_gpa``.

Same sizes, dtypes and inputs as :class:`benchmark_gpa.GPA` (``N = M``), so
``asv compare``/``asv show`` puts ratios side by side:

* ``StraightforwardNumPy``: the vectorised NumPy GPA a user would write
  (:func:`gpa_arrays._peers.straightforward_numpy`, paired mode), including the
  ``rng.permutation(N)`` it needs, single-threaded like NumPy itself.
* ``PublishedTorch``: the published PoseDA function
  (:func:`gpa_arrays._peers.published_torch`, ``torch.randperm`` pairing
  included), torch threads = Numba threads on the CPU; on CUDA tensors,
  synchronised, when a GPU is present.
* ``PublishedFormula``: the strongest peers, from
  :func:`gpa_arrays._peers.formula_peer` (the module ``gpa-arrays bench`` times
  too): the published formula in NumPy, eager torch, ``torch.compile`` of the
  published function and ``jax.jit`` of the same formula, on the host and on a
  CUDA device, given the pairing ours uses with ``seed=1`` (no ``randperm`` in
  the timed call). ``time_steady`` is the steady-state call;
  ``PublishedFormulaCompile.track_first_call_seconds`` the compiled peers'
  first call (tracing and compiling), tracked apart. A peer whose framework or
  device is missing is skipped (``n/a``).
* ``BandwidthBound``: the bytes a call must move and nothing else
  (:func:`gpa_arrays._bench.cpu_stream_bound`, the same kernel ``gpa-arrays
  bench`` uses; on the GPU the device's own copy of the source bytes).
* ``GatherBound``: the same plus each pose's read of its paired target record
  (:func:`gpa_arrays._bench.cpu_gather_bound`), the floor of a randomly paired
  call against prepared targets.
"""

import numpy as np

import gpa_arrays
from gpa_arrays._bench import cpu_gather_bound, cpu_stream_bound, gpu_copy_bound
from gpa_arrays._peers import FORMULA_PEERS, published_torch, straightforward_numpy

from ._common import (
    BATCH,
    DTYPES,
    SIZES,
    formula_peer_case,
    inputs,
    require_gpu,
    require_peer,
    require_torch,
    synchronizer,
)


class StraightforwardNumPy:
    """Vectorised NumPy GPA (gather, reduce, broadcast), paired mode."""

    params = (SIZES, DTYPES)
    param_names = ("n", "dtype")

    def setup(self, n, dtype):
        self.source, self.target, self.camera = inputs(n, n, dtype)
        self.rng = np.random.default_rng(1)

    def time_gpa(self, n, dtype):
        index = self.rng.permutation(n)
        straightforward_numpy(self.source, self.target, self.camera, index)


class PublishedTorch:
    """The published function as shipped: ``torch.randperm`` + gather + reductions."""

    params = (("cpu", "cuda"), SIZES, DTYPES)
    param_names = ("device", "n", "dtype")

    def setup(self, device, n, dtype):
        torch = require_torch(device)
        data = [torch.from_numpy(a) for a in inputs(n, n, dtype)]
        if device == "cuda":
            data = [a.cuda() for a in data]
            self.sync = torch.cuda.synchronize
        else:
            self.sync = synchronizer("cpu")
        self.data = data
        self.time_published(device, n, dtype)  # torch's one-time initialisation

    def time_published(self, *params):
        published_torch(*self.data)
        self.sync()


class BandwidthBound:
    """Read the inputs and write the output of a call, nothing else.

    ``targets="prepared"`` moves the source poses and the output (the records
    are too small to count); ``"arrays"`` also reads the target poses and
    cameras, as the one-shot call must. On the GPU only ``"prepared"`` is
    defined: the device copying the source bytes into the output.
    """

    params = (("cpu", "cuda"), SIZES, DTYPES, ("arrays", "prepared"))
    param_names = ("device", "n", "dtype", "targets")

    def setup(self, device, n, dtype, targets):
        if device == "cuda":
            require_gpu()
            if targets == "arrays":
                raise NotImplementedError("the GPU bound is defined for prepared only")
            source, _, _ = inputs(n, n, dtype, "cupy")
            out = source.copy()
            self.call = lambda: gpu_copy_bound(source, out)
        else:
            source, target, camera = inputs(n, n, dtype)
            out = source.copy()
            if targets == "arrays":
                extra = np.concatenate([target.reshape(-1), camera.reshape(-1)])
            else:
                extra = source[:0]
            stream = cpu_stream_bound()
            self.call = lambda: stream(source, out, extra)
        self.sync = synchronizer(device)
        self.call()  # compile / load the cache
        self.sync()

    def time_bound(self, *params):
        self.call()
        self.sync()


class GatherBound:
    """Copy the sources to the output and read each pose's paired record.

    CPU only: the records are those of ``prepare_targets`` (``N = M``) and the
    pairing is ``pair_indices(N, N, seed=1)``, the one ``benchmark_gpa`` times.
    """

    params = (SIZES, DTYPES)
    param_names = ("n", "dtype")

    def setup(self, n, dtype):
        source, target, camera = inputs(n, n, dtype)
        records = gpa_arrays.prepare_targets(target, camera)._records
        pairing = gpa_arrays.pair_indices(n, n, seed=1)
        out = source.copy()
        gather = cpu_gather_bound()
        self.call = lambda: gather(source, records, pairing, out)
        self.call()  # compile / load the cache

    def time_bound(self, *params):
        self.call()


class PublishedFormula:
    """The published formula's strongest implementations, steady state.

    Each peer computes ``gpa(..., mode="poseda")`` for the same pairing
    (``tests/test_peers.py``); compiled peers are compiled in ``setup``.
    ``jax.jit`` runs on XLA's own thread pool (every core); the others on
    Numba's thread count.
    """

    params = (FORMULA_PEERS, ("cpu", "cuda"), SIZES, DTYPES)
    param_names = ("peer", "device", "n", "dtype")
    timeout = 600

    def setup(self, peer, device, n, dtype):
        self.peer = formula_peer_case(peer, device, n, dtype)
        self.peer.call()  # eager peers: torch's one-time initialisation

    def time_steady(self, *params):
        self.peer.call()


class PublishedFormulaCompile:
    """The compiled peers' first call: tracing and compiling, then one run.

    At the training-batch size (1024 poses; the compile time hardly depends
    on N). A fresh process each time, so ``torch.compile`` loads its compiler
    here too; its on-disk caches (inductor's FX graph cache) may be warm.
    """

    params = (("torch.compile", "jax.jit"), ("cpu", "cuda"), DTYPES)
    param_names = ("peer", "device", "dtype")
    unit = "seconds"
    timeout = 600

    def setup(self, peer, device, dtype):
        # a missing framework or device skips the case before anything compiles
        require_peer(peer, device)
        self.peer, self.device, self.dtype = peer, device, dtype

    def track_first_call_seconds(self, *params):
        peer = formula_peer_case(self.peer, self.device, BATCH, self.dtype)
        return peer.compile_s
