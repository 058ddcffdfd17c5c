"""Side-by-side cost of gpa's return_2d and depth="perspective" (Numba kernels).

Rows, interleaved round by round, medians reported (prepared targets, out=):

3D only           the default path
+2D pinhole       return_2d=True, 4-value cameras
+2D distorted     return_2d=True, 9-value cameras: the coefficients share one
                  (M, 16) row with the record (the library's layout: one
                  random gather per pose)
+2D two arrays    the same coefficients in an (M, 8) array of their own next
                  to the contiguous (M, 8) records: two gathers per pose (the
                  alternative layout, for comparison)
perspective       depth="perspective"
perspective +2D   both, 9-value cameras

Usage: python benchmarks/bench_gpa_2d.py [-n 1000000] [--dtype float32]
"""

import argparse
import statistics
import time

import numba
import numpy as np

import gpa_arrays
from gpa_arrays import _pairing
from gpa_arrays._backends import numba_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--joints", type=int, default=17)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    dtype = np.dtype(args.dtype)
    n = args.n
    rng = np.random.default_rng(0)
    source = rng.normal(scale=(0.3, 0.3, 0.1), size=(n, args.joints, 3))
    source[:, 0] = source[:, 1:].mean(axis=1)
    source[..., 2] += 5.0
    source = source.astype(dtype)
    target = rng.uniform(-0.4, 0.4, size=(n, 1, 2))  # pose-like 2D targets
    target = (target + rng.normal(scale=0.15, size=(n, args.joints, 2))).astype(dtype)
    camera = np.empty((n, 9), dtype=dtype)
    camera[:, :2] = rng.uniform(1.2, 2.4, size=(n, 2))
    camera[:, 2:4] = rng.uniform(-0.1, 0.1, size=(n, 2))
    camera[:, 4:] = rng.normal(scale=0.01, size=(n, 5))
    pinhole = gpa_arrays.prepare_targets(target, camera[:, :4])
    distorted = gpa_arrays.prepare_targets(target, camera)
    records = np.ascontiguousarray(distorted._wide[:, :8])
    coefficients = np.ascontiguousarray(distorted._wide[:, 8:])
    spec = _pairing.resolve_pairing("permutation", n, n, 1)
    out = np.empty_like(source)
    out2d = np.empty((*source.shape[:2], 2), dtype=dtype)
    kw = dict(seed=1, check=False)
    cases = {
        "3D only": lambda: gpa_arrays.gpa(source, pinhole, out=out, **kw),
        "+2D pinhole": lambda: gpa_arrays.gpa(
            source, pinhole, return_2d=True, out=(out, out2d), **kw
        ),
        "+2D distorted": lambda: gpa_arrays.gpa(
            source, distorted, return_2d=True, out=(out, out2d), **kw
        ),
        "+2D two arrays": lambda: numba_.gpa_records(
            source, records, out, 0, spec, out2d=out2d, distortion=coefficients
        ),
        "perspective": lambda: gpa_arrays.gpa(
            source, pinhole, depth="perspective", out=out, **kw
        ),
        "perspective +2D": lambda: gpa_arrays.gpa(
            source,
            distorted,
            depth="perspective",
            return_2d=True,
            out=(out, out2d),
            **kw,
        ),
    }
    for run in cases.values():
        run()
    samples = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    ms = {name: statistics.median(s) * 1e3 for name, s in samples.items()}
    print(
        f"N = M = {n:,}, J = {args.joints}, {dtype}, {numba.get_num_threads()} "
        f"threads, median of {args.repeat} interleaved rounds"
    )
    base = ms["3D only"]
    for name, value in ms.items():
        print(f"  {name:16s} {value:9.2f} ms  {value / base:5.2f}x")


if __name__ == "__main__":
    main()
