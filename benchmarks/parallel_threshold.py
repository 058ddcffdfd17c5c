"""Serial against parallel launches of the Numba GPA kernel, by batch size.

Calls the kernel entry (``numba_.gpa_records``) with prepared float32 targets and
``out=``, forcing the serial twin and then the parallel one, for batches of 256 to
65,536 poses, and prints the median microseconds per call of each and their ratio.
Run it on an idle machine and on a busy one: ``PARALLEL_MIN_POSES`` (the smallest
parallel launch) comes from the first, the stall watch (``PARALLEL_WATCH_POSES``)
from the second.

Usage: python benchmarks/parallel_threshold.py [-m TARGETS]
"""

import argparse
import os
import time

import numpy as np

import gpa_arrays
from gpa_arrays import _config
from gpa_arrays._backends import numba_
from gpa_arrays._bench import make_inputs
from gpa_arrays._pairing import resolve_pairing


def per_call(function, budget=0.4):
    """Median of 7 loops filling `budget` seconds, microseconds per call."""
    for _ in range(20):
        function()
    loops = []
    for _ in range(7):
        calls, start = 0, time.perf_counter()
        while True:
            function()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed > budget / 7:
                break
        loops.append(elapsed / calls * 1e6)
    return sorted(loops)[3]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", type=int, default=1_000_000, help="prepared targets")
    args = parser.parse_args(argv)
    source, target, camera = make_inputs(65536, args.m)
    records = gpa_arrays.prepare_targets(target, camera)._records
    print(f"load average {os.getloadavg()}, M = {args.m:,}")
    saved = _config.PARALLEL_MIN_POSES, _config.PARALLEL_WATCH_POSES
    _config.PARALLEL_WATCH_POSES = 1  # no stall watch: measure both twins as they are
    try:
        for n in (256, 1024, 4096, 16384, 65536):
            batch, out = source[:n], np.empty_like(source[:n])
            spec = resolve_pairing("permutation", n, args.m, 1)
            times = {}
            for mode, threshold in (("serial", 2**62), ("parallel", 1)):
                _config.PARALLEL_MIN_POSES = threshold
                times[mode] = per_call(
                    lambda b=batch, o=out, s=spec: numba_.gpa_records(
                        b, records, o, 0, s
                    )
                )
            print(
                f"n = {n:6d}  serial {times['serial']:9.1f} us  parallel "
                f"{times['parallel']:9.1f} us  serial/parallel "
                f"{times['serial'] / times['parallel']:.2f}"
            )
    finally:
        _config.PARALLEL_MIN_POSES, _config.PARALLEL_WATCH_POSES = saved


if __name__ == "__main__":
    main()
