"""Memory of the main entry points: fused paths allocate nothing N-sized but output.

Two measurements per call, N = M = 1,000,000, J = 17, float32 (output 204 MB):

``peakmem_call``
    asv's peak resident memory of the whole benchmark process (inputs, prepared
    records and libraries included). Every case holds the same data, so the
    ``output only`` case (allocating and filling one output-sized array) is the
    floor: a call that allocates no temporaries peaks at the same value.
``track_temporary_bytes``
    The call's own high-water mark above what was resident before it
    (:func:`gpa_arrays._bench.peak_rss_increase`, Linux), minus the output when
    the call allocates it: the bytes of temporaries. About zero for the fused
    paths; calls on raw target arrays (one-shot, poseda) also hold the (M, 8)
    target records (32 bytes per target in float32, 16% of the output); the
    NumPy reference and the straightforward peer show what gather, reduce and
    broadcast cost.
"""

import numpy as np

import gpa_arrays
from gpa_arrays._bench import peak_rss_increase
from gpa_arrays._peers import straightforward_numpy

from ._common import LARGE, inputs


def _fill_output(source):
    out = np.empty_like(source)
    out.fill(0)
    return out


class Memory:
    """Peak and temporary memory per entry point (default backend unless named)."""

    params = (
        (
            "output only",
            "gpa prepared, out=",
            "gpa prepared",
            "gpa one-shot",
            "gpa poseda",
            "gpa prepared, numpy backend",
            "straightforward numpy",
        ),
    )
    param_names = ("call",)

    def setup(self, call):
        # Warm the kernels on small inputs of the same dtype and joint count: a
        # warm-up at full size would raise the process's peak before the
        # measurement.
        s, t, c = inputs(4096, 4096, "float32")
        for mode in ("paired", "poseda"):
            gpa_arrays.gpa(s, t, c, seed=1, mode=mode)
        gpa_arrays.gpa(s, gpa_arrays.prepare_targets(t, c), seed=1)
        del s, t, c

        source, target, camera = inputs(LARGE, LARGE, "float32")
        backend = "numpy" if call.endswith("numpy backend") else "auto"
        targets = gpa_arrays.prepare_targets(target, camera, backend=backend)
        # every case keeps all of it alive, so that the peaks differ by what the
        # calls allocate and nothing else
        self.data = (source, target, camera, targets)
        gpa = gpa_arrays.gpa
        self.allocates_output = call != "gpa prepared, out="
        if call == "output only":
            self.call = lambda: _fill_output(source)
        elif call == "gpa prepared, out=":
            out = _fill_output(source)
            self.call = lambda: gpa(source, targets, seed=1, out=out)
        elif call == "gpa prepared":
            self.call = lambda: gpa(source, targets, seed=1)
        elif call == "gpa one-shot":
            self.call = lambda: gpa(source, target, camera, seed=1)
        elif call == "gpa poseda":
            self.call = lambda: gpa(source, target, camera, seed=1, mode="poseda")
        elif call == "gpa prepared, numpy backend":
            self.call = lambda: gpa(source, targets, seed=1, backend="numpy")
        else:
            rng = np.random.default_rng(1)
            self.call = lambda: straightforward_numpy(
                source, target, camera, rng.permutation(LARGE)
            )
        self.output_bytes = source.nbytes

    def peakmem_call(self, call):
        self.call()

    def track_temporary_bytes(self, call):
        try:
            _, increase = peak_rss_increase(self.call)
        except OSError:
            return float("nan")  # no /proc/self/clear_refs here
        return increase - (self.output_bytes if self.allocates_output else 0)

    track_temporary_bytes.unit = "bytes"
