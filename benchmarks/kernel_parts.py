"""What the per-pose arithmetic of the Numba GPA kernel costs, part by part.

One core, N = 1024 float32 poses of 17 joints whose records sit in L1, thread time
per pose (best of 7 loops of 3000 calls):

full
    extent of the source pose, depth, placement with its checks (the kernel's
    loop without pairing and status bookkeeping);
no extent
    the same with the extent replaced by a constant;
extent only
    the extent alone;
no division
    the depth's division replaced by a multiplication.

Usage: python benchmarks/kernel_parts.py
"""

import time

import numpy as np
from numba import njit

from gpa_arrays._backends._numba_simd import pose_extent, pose_place

J = 17
N = 1024


@njit
def full(src, out, rec, joints):
    bad = 0
    for i in range(src.shape[0]):
        xmin, xmax, ymin, ymax, _ = pose_extent(src, i, joints)
        z = (rec[i, 3] * (xmax - xmin) + rec[i, 4] * (ymax - ymin)) / rec[i, 2]
        root = (src[i, 0], src[i, 1], src[i, 2])
        finite, front = pose_place(
            src, out, i, root, (z * rec[i, 0], z * rec[i, 1], z), joints
        )
        bad += (not finite) + (not front)
    return bad


@njit
def no_extent(src, out, rec, joints):
    bad = 0
    for i in range(src.shape[0]):
        z = (rec[i, 3] + rec[i, 4]) / rec[i, 2]
        root = (src[i, 0], src[i, 1], src[i, 2])
        finite, front = pose_place(
            src, out, i, root, (z * rec[i, 0], z * rec[i, 1], z), joints
        )
        bad += (not finite) + (not front)
    return bad


@njit
def extent_only(src, out, rec, joints):
    total = np.float32(0)
    for i in range(src.shape[0]):
        xmin, xmax, ymin, ymax, _ = pose_extent(src, i, joints)
        total += xmax - xmin + ymax - ymin
    return total


@njit
def no_division(src, out, rec, joints):
    bad = 0
    for i in range(src.shape[0]):
        xmin, xmax, ymin, ymax, _ = pose_extent(src, i, joints)
        z = (rec[i, 3] * (xmax - xmin) + rec[i, 4] * (ymax - ymin)) * rec[i, 2]
        root = (src[i, 0], src[i, 1], src[i, 2])
        finite, front = pose_place(
            src, out, i, root, (z * rec[i, 0], z * rec[i, 1], z), joints
        )
        bad += (not finite) + (not front)
    return bad


def per_pose(function, calls=3000):
    """Best thread time per pose over 7 loops of `calls` calls, nanoseconds."""
    for _ in range(100):
        function()
    best = np.inf
    for _ in range(7):
        start = time.thread_time()
        for _ in range(calls):
            function()
        best = min(best, (time.thread_time() - start) / calls / N * 1e9)
    return best


def main():
    rng = np.random.default_rng(0)
    src = (rng.normal(size=(N, J * 3)) * 0.3 + 5).astype(np.float32)
    out = np.empty_like(src)
    rec = rng.uniform(0.5, 1.5, (N, 8)).astype(np.float32)
    joints = (0,) * J
    for name, kernel in (
        ("full", full),
        ("no extent", no_extent),
        ("extent only", extent_only),
        ("no division", no_division),
    ):
        ns = per_pose(lambda k=kernel: k(src, out, rec, joints))
        print(f"{name:<12} {ns:6.2f} ns per pose")


if __name__ == "__main__":
    main()
