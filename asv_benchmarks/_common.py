"""Sizes, inputs and device handling shared by the benchmark modules.

Set ``GPA_ARRAYS_ASV_SMOKE=1`` to replace every size by a tiny one: the CI smoke
run (``asv run --quick``) then proves that each benchmark still sets up and runs,
in seconds, without measuring anything meaningful. The variable is read when
asv imports the suite, so it changes the parameter grid itself.
"""

import contextlib
import functools
import os

import numpy as np

import gpa_arrays
from gpa_arrays import _backends
from gpa_arrays._bench import make_inputs
from gpa_arrays._peers import PeerUnavailable, formula_peer

SMOKE = os.environ.get("GPA_ARRAYS_ASV_SMOKE", "0") not in ("", "0")

#: Poses per call of the main grid (sources = targets): a training batch, a
#: mid-size chunk (records and poses fit in L2/L3), a large data set.
SIZES = (1024,) if SMOKE else (1024, 65_536, 1_000_000)
#: The one size of the classes that compare at scale (memory, options, metrics).
LARGE = 2048 if SMOKE else 1_000_000
#: Size of the GPU classes: the GPU target is stated at N = 10,000,000.
GPU_LARGE = 4096 if SMOKE else 10_000_000
#: The training batch of the latency class, and the target set it draws from.
BATCH = 1024
BATCH_TARGETS = 4096 if SMOKE else 1_000_000

# Import the Numba backend once, in the process asv forks every benchmark from,
# instead of in each benchmark (Numba's import is about 0.3 s). Importing starts
# no thread pool, so the forked children keep their parallel kernels. Nothing
# touches CUDA here: a CUDA context created before a fork is unusable in the
# children, so the GPU is only ever looked at in `setup`.
with contextlib.suppress(RuntimeError):  # no Numba: its cases skip in setup
    _backends.load("numba")

DTYPES = ("float32", "float64")
BACKENDS = ("numpy", "numba", "cupy")
JOINTS = 17


@functools.cache
def gpu_present():
    """True when CuPy imports and sees a CUDA device."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, or CUDARuntimeError without a driver
        return False


def require_gpu():
    """Skip the case (``NotImplementedError`` in ``setup``) without a GPU."""
    if not gpu_present():
        raise NotImplementedError("no CUDA device (or cupy not installed)")


def require_backend(name):
    """Skip the case unless gpa_arrays backend `name` works here."""
    if name == "cupy":
        require_gpu()
    if name not in gpa_arrays.backends():
        raise NotImplementedError(f"backend {name!r} is not available here")


def require_torch(device):
    """Return torch, set to Numba's thread count; skip without it or its device."""
    try:
        import torch
    except ImportError:
        raise NotImplementedError("torch is not installed") from None
    if device == "cuda" and not torch.cuda.is_available():
        raise NotImplementedError("torch sees no CUDA device")
    torch.set_num_threads(cpu_threads())
    return torch


def require_peer(name, device):
    """Skip the case unless peer `name` can run on `device` (nothing compiled)."""
    if name.startswith("torch"):
        require_torch(device)  # and torch threads = Numba threads
    elif name == "jax.jit":
        try:
            import jax
        except ImportError:
            raise NotImplementedError("jax is not installed") from None
        if device == "cuda":
            try:
                jax.devices("gpu")
            except RuntimeError:
                raise NotImplementedError("jax has no GPU here") from None
    elif device == "cuda":
        raise NotImplementedError("NumPy computes on the host only")


def formula_peer_case(name, device, n, dtype):
    """The published-formula peer `name`, set up (and compiled) on N = M = n.

    Skips the case (``NotImplementedError``) where the peer cannot run.
    """
    require_peer(name, device)
    source, target, camera = inputs(n, n, dtype)
    index = gpa_arrays.pair_indices(n, n, seed=1)
    try:
        return formula_peer(name, source, target, camera, index, device)
    except PeerUnavailable as exc:
        raise NotImplementedError(str(exc)) from None


def cpu_threads():
    """Numba's thread count, which the CPU peers are given too."""
    import numba

    return numba.get_num_threads()


def inputs(n, m, dtype, device="cpu"):
    """``(source, target, camera)`` from :func:`gpa_arrays._bench.make_inputs`."""
    data = make_inputs(n, m, JOINTS, np.dtype(dtype))
    if device in ("cuda", "cupy"):
        import cupy

        data = tuple(cupy.asarray(a) for a in data)
    return data


def synchronizer(device):
    """A callable that waits for the device's queued work (no-op on CPU).

    GPU timings must include the kernels they launched, so timed GPU calls end
    with it.
    """
    if device not in ("cuda", "cupy"):
        return _nothing
    import cupy

    return cupy.cuda.get_current_stream().synchronize


def _nothing():
    pass
