"""Where the time of a training-batch call goes: N = 1024 poses, prepared targets.

Prints, medians of interleaved-free repeated loops (microseconds per call):

gpa()
    The public call, ``gpa(source, targets, seed=1, out=out)``, as timed by
    ``gpa-arrays bench``.
kernel, parallel / serial
    The Numba backend's entry (``numba_.gpa_records``) called directly with a
    resolved pairing: what remains without the public API's validation and
    dispatch, with and without the parallel launch.
fixed cost
    The serial kernel entry on 1 pose: wrapper, Numba dispatch of its
    arguments, status handling.
per pose
    ``(serial(1024) - serial(1)) / 1023`` in nanoseconds.

Usage: python benchmarks/latency_breakdown.py [-m 1000000] [--dtype float32]
"""

import argparse
import time

import numpy as np

import gpa_arrays
from gpa_arrays import _config
from gpa_arrays._backends import numba_
from gpa_arrays._bench import make_inputs
from gpa_arrays._pairing import resolve_pairing


def per_call(function, calls=3000, repeats=7):
    """Median over `repeats` loops of `calls` calls, microseconds per call."""
    for _ in range(300):
        function()
    loops = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        loops.append((time.perf_counter() - start) / calls * 1e6)
    return sorted(loops)[repeats // 2]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", type=int, default=1_000_000, help="prepared targets")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = parser.parse_args(argv)
    n = 1024
    source, target, camera = make_inputs(n, args.m, dtype=np.dtype(args.dtype))
    targets = gpa_arrays.prepare_targets(target, camera)
    records = targets._records
    out = np.empty_like(source)
    spec = resolve_pairing("permutation", n, args.m, 1)
    one = resolve_pairing("permutation", 1, args.m, 1)
    rows = {
        "gpa()": per_call(lambda: gpa_arrays.gpa(source, targets, seed=1, out=out)),
        "kernel, parallel": per_call(
            lambda: numba_.gpa_records(source, records, out, 0, spec)
        ),
    }
    saved = _config.PARALLEL_MIN_POSES
    _config.PARALLEL_MIN_POSES = 2**62  # serial twin only
    try:
        rows["kernel, serial"] = per_call(
            lambda: numba_.gpa_records(source, records, out, 0, spec)
        )
        rows["fixed cost (1 pose)"] = per_call(
            lambda: numba_.gpa_records(source[:1], records, out[:1], 0, one)
        )
    finally:
        _config.PARALLEL_MIN_POSES = saved
    print(f"N = {n}, M = {args.m:,}, {args.dtype}, prepared targets, out=")
    for name, value in rows.items():
        print(f"  {name:<22} {value:8.2f} us")
    slope = (rows["kernel, serial"] - rows["fixed cost (1 pose)"]) / (n - 1) * 1e3
    print(f"  {'per pose (serial)':<22} {slope:8.2f} ns")


if __name__ == "__main__":
    main()
