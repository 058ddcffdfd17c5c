"""Side-by-side timing of the batched Procrustes kernel against numpy.linalg.svd.

Rows, interleaved round by round (A B C D A B C D ...), medians reported:

svd only
    ``numpy.linalg.svd`` of the (N, 3, 3) cross-covariance matrices, computed
    beforehand: the rotation step alone, the baseline the issue names.
numba fit
    ``metrics.procrustes``' kernel (``numba_.procrustes_fit``): from the poses,
    cross-covariance, Horn's quaternion, rotation, scale and translation per pose.
numba p_mpjpe / numpy p_mpjpe
    The whole metric, ``reduction="none"``, on each backend (the NumPy
    reference uses the batched SVD).
project
    ``camera.project`` of the same poses (numba, 9-value cameras).

Usage: python benchmarks/bench_metrics.py [-n 100000] [--joints 17] [--repeat 7]
"""

import argparse
import statistics
import time

import numba
import numpy as np

from gpa_arrays import camera, metrics
from gpa_arrays._backends import numba_


def make(n, joints, rng):
    target = rng.normal(scale=0.3, size=(n, joints, 3))
    q = rng.normal(size=(n, 4))
    rotation = camera.quaternion_to_matrix(q / np.linalg.norm(q, axis=1, keepdims=True))
    predicted = 0.9 * np.einsum("nab,nkb->nka", rotation, target)
    predicted += rng.normal(scale=0.04, size=predicted.shape)
    return predicted, target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--joints", type=int, default=17)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    predicted, target = make(args.n, args.joints, rng)
    centred_p = predicted - predicted.mean(axis=1, keepdims=True)
    centred_t = target - target.mean(axis=1, keepdims=True)
    h = np.einsum("nka,nkb->nab", centred_p, centred_t)
    joints = np.arange(args.joints)
    points = target + np.array([0.0, 0.0, 5.0])
    cams = np.tile([1.5, 1.5, 0.0, 0.0, -0.2, 0.2, 0.0, 0.0, 0.0], (args.n, 1))
    cases = {
        "svd only": lambda: np.linalg.svd(h),
        "numba fit": lambda: numba_.procrustes_fit(predicted, target, joints),
        "numba p_mpjpe": lambda: metrics.p_mpjpe(
            predicted, target, reduction="none", backend="numba"
        ),
        "numpy p_mpjpe": lambda: metrics.p_mpjpe(
            predicted, target, reduction="none", backend="numpy"
        ),
        "project (numba)": lambda: camera.project(points, cams, backend="numba"),
    }
    for run in cases.values():  # compile and warm up
        run()
    samples = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    ms = {name: statistics.median(s) * 1e3 for name, s in samples.items()}
    print(
        f"N = {args.n:,}, J = {args.joints}, {numba.get_num_threads()} threads, "
        f"median of {args.repeat} interleaved rounds"
    )
    for name, value in ms.items():
        print(f"  {name:18s} {value:9.2f} ms")
    print(f"  svd only / numba fit          {ms['svd only'] / ms['numba fit']:6.1f}x")
    print(
        f"  numpy / numba p_mpjpe         "
        f"{ms['numpy p_mpjpe'] / ms['numba p_mpjpe']:6.1f}x"
    )


if __name__ == "__main__":
    main()
