"""The GPU target's own size: N = M = 10,000,000, side by side.

The GPU issue's target is ``gpa`` with prepared targets within 1.3x of the
device copying the same source bytes, and >= 10x faster than the published
torch function on the same GPU, at N = 10,000,000 float32. The strongest
peers on the device (``torch.compile`` of the published function, Triton, and
``jax.jit`` of the same formula on JAX's GPU, both given the pairing ours uses
with ``seed=1``, from :func:`gpa_arrays._peers.formula_peer`) run beside them,
compiled in ``setup``. Every case here is
skipped (``NotImplementedError``) without a CUDA device; the ``gpa`` cases also
while the ``cupy`` backend is missing. Each timed call synchronises the device.
"""

import gpa_arrays
from gpa_arrays._bench import gpu_copy_bound
from gpa_arrays._peers import published_torch

from ._common import (
    DTYPES,
    GPU_LARGE,
    formula_peer_case,
    inputs,
    require_backend,
    require_gpu,
    require_torch,
    synchronizer,
)


class LargeGPU:
    """One case per row at ``N = M = GPU_LARGE`` on the current CUDA device."""

    params = (
        DTYPES,
        (
            "gpa prepared",
            "gpa one-shot",
            "copy bound",
            "published torch",
            "torch.compile",
            "jax.jit",
        ),
    )
    param_names = ("dtype", "case")
    timeout = 600

    def setup(self, dtype, case):
        require_gpu()
        if case in ("torch.compile", "jax.jit"):
            self.call = formula_peer_case(case, "cuda", GPU_LARGE, dtype).call
            self.sync = synchronizer("cpu")  # the peer's call synchronises
            return
        source, target, camera = inputs(GPU_LARGE, GPU_LARGE, dtype, "cupy")
        out = source.copy()
        self.sync = synchronizer("cupy")
        if case.startswith("gpa"):
            require_backend("cupy")
            if case == "gpa prepared":
                target = gpa_arrays.prepare_targets(target, camera, backend="cupy")
                camera = None
            self.call = lambda: gpa_arrays.gpa(
                source, target, camera, seed=1, backend="cupy", out=out
            )
        elif case == "copy bound":
            self.call = lambda: gpu_copy_bound(source, out)
        else:
            torch = require_torch("cuda")
            data = [torch.from_dlpack(a) for a in (source, target, camera)]
            self.call = lambda: published_torch(*data)
            self.sync = torch.cuda.synchronize
        self.call()
        self.sync()

    def time_call(self, *params):
        self.call()
        self.sync()
