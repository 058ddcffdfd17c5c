"""When does depth="perspective" matter? The published (weak) depth, measured.

For a synthetic standing subject (H36M-17 layout, about 1.6 m tall, random
heading and lean, a third of the poses reaching towards the camera) placed by
GPA under a 3DHP-like camera (f = 1.46 normalised), for target boxes of
several sizes, this prints:

* the root depth the two rules choose (median, metres);
* the relative error of the pinhole-projected box scale under the weak depth
  (median and worst |T / s - 1|; zero by construction under "perspective");
* the share of weakly placed poses with a joint at or behind the camera;
* the share of poses the perspective solve leaves unsolved (none exist for
  these poses: a joint, not the root, is nearest the camera);
* how many iterations the perspective solve needs (median and worst), found
  by re-running the NumPy reference with smaller iteration budgets.

Target roots at the image centre isolate the effect of distance; off-centre
roots add the shear of an oblique view (a joint at depth offset c from the
root appears shifted by -u c, u the root's ray), which the weak depth ignores
at any distance.

Usage: python benchmarks/perspective_depth.py [-n 20000] [--seed 0]
"""

import argparse

import numpy as np

import gpa_arrays
from gpa_arrays import _geometry
from gpa_arrays._backends import numpy_
from gpa_arrays.camera import quaternion_to_matrix

# camera frame: x right, y down, z away from the camera; metres
TEMPLATE = np.array(
    [
        [0.0, 0.0, 0.0],  # pelvis
        [-0.13, 0.0, 0.0],  # r_hip
        [-0.13, 0.45, 0.0],  # r_knee
        [-0.13, 0.88, 0.05],  # r_foot
        [0.13, 0.0, 0.0],  # l_hip
        [0.13, 0.45, 0.0],  # l_knee
        [0.13, 0.88, 0.05],  # l_foot
        [0.0, -0.23, 0.0],  # spine
        [0.0, -0.48, 0.0],  # thorax
        [0.0, -0.58, -0.05],  # neck_nose
        [0.0, -0.70, 0.0],  # head
        [0.17, -0.45, 0.0],  # l_shoulder
        [0.20, -0.18, 0.0],  # l_elbow
        [0.22, 0.06, 0.0],  # l_wrist
        [-0.17, -0.45, 0.0],  # r_shoulder
        [-0.20, -0.18, 0.0],  # r_elbow
        [-0.22, 0.06, 0.0],  # r_wrist
    ]
)


def poses(n, rng):
    """Standing subjects, random heading and lean; a third reach forward."""
    p = np.repeat(TEMPLATE[None], n, axis=0)
    reach = rng.random(n) < 1 / 3
    # arms straight towards the camera: elbows and wrists in front of the chest
    p[reach, 12] = p[reach, 11] + [0.0, 0.0, -0.27]
    p[reach, 13] = p[reach, 11] + [0.0, 0.0, -0.52]
    p[reach, 15] = p[reach, 14] + [0.0, 0.0, -0.27]
    p[reach, 16] = p[reach, 14] + [0.0, 0.0, -0.52]
    heading = rng.uniform(-np.pi, np.pi, n)
    lean = rng.uniform(-0.3, 0.3, n)
    half = 0.5 * heading
    yaw = quaternion_to_matrix(
        np.stack([np.cos(half), 0 * half, np.sin(half), 0 * half], 1)
    )
    half = 0.5 * lean
    pitch = quaternion_to_matrix(
        np.stack([np.cos(half), np.sin(half), 0 * half, 0 * half], 1)
    )
    p = np.einsum("nab,nkb->nka", pitch @ yaw, p)
    p += rng.normal(scale=0.02, size=p.shape)
    p[..., 2] += 5.0
    return p


def targets(n, scale, offset, rng):
    """2-joint targets: the root within `offset` of the centre, a box of `scale`."""
    root = rng.uniform(-offset, offset, size=(n, 1, 2))
    corner = root + scale  # w = h = scale: box scale (w + h) / 2 = scale
    return np.concatenate([root, corner], axis=1)


def pinhole_box_scale(aligned, f):
    uv = f * aligned[..., :2] / aligned[..., 2:]
    w = uv[..., 0].max(-1) - uv[..., 0].min(-1)
    h = uv[..., 1].max(-1) - uv[..., 1].min(-1)
    return (w + h) / 2


def iterations_needed(source, target, camera):
    """Per pose, the smallest iteration budget with which the solve succeeds."""
    records, _ = numpy_.prepare_records(
        target, np.broadcast_to(camera, (len(target), 4)), 0
    )
    u, v, d, fx, fy = (records[:, c] for c in range(5))
    dx = np.ptp(source[..., 0], axis=1)
    dy = np.ptp(source[..., 1], axis=1)
    z = (fx * dx + fy * dy) / d
    need = np.full(len(source), -1)
    budget = _geometry.PERSPECTIVE_MAX_ITERATIONS
    try:
        for k in range(1, budget + 1):
            _geometry.PERSPECTIVE_MAX_ITERATIONS = k
            _, solved = numpy_._perspective_depth(source, 0, z, u, v, fx, fy, d)
            need[(need < 0) & solved] = k
    finally:
        _geometry.PERSPECTIVE_MAX_ITERATIONS = budget
    return need


def table(source, camera, rows, offset, rng):
    f = camera[0]
    n = len(source)
    print(
        f"{'s':>5} {'weak z':>7} {'persp z':>8} {'|T/s-1| med':>12} {'max':>8} "
        f"{'behind':>7} {'unsolved':>9} {'iters med':>10} {'max':>4}"
    )
    for scale in rows:
        target = targets(n, scale, offset, rng)
        kw = dict(pairing="identity", check=False)
        weak = gpa_arrays.gpa(source, target, camera, **kw)
        persp = gpa_arrays.gpa(source, target, camera, depth="perspective", **kw)
        in_front = (weak[..., 2] > 0).all(axis=1)
        error = np.abs(pinhole_box_scale(weak[in_front], f) / scale - 1)
        need = iterations_needed(source, target, camera)
        solved = need > 0
        print(
            f"{scale:5.2f} {np.median(weak[:, 0, 2]):6.2f}m "
            f"{np.median(persp[:, 0, 2]):7.2f}m "
            f"{100 * np.median(error):11.2f}% {100 * error.max():7.1f}% "
            f"{100 * (1 - in_front.mean()):6.2f}% {100 * (1 - solved.mean()):8.2f}% "
            f"{np.median(need[solved]):10.0f} {need[solved].max():4d}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    f = 1.46
    camera = np.array([f, f, 0.0, 0.0])
    source = poses(args.n, rng)
    rows = (0.1, 0.25, 0.5, 1.0, 1.5, 2.5)
    print(f"{args.n} standing poses, f = {f}; s: target box scale, T: pinhole box")
    print("\ntarget roots at the image centre")
    table(source, camera, rows, 0.0, rng)
    print("\ntarget roots uniform in [-0.3, 0.3]^2 (normalised)")
    table(source, camera, rows, 0.3, rng)
    print("\nGaussian poses (sd 0.3 m per coordinate, root = joint mean), roots in")
    print("[-0.6, 0.6]^2: a harder case for the solver")
    hard = rng.normal(scale=0.3, size=source.shape)
    hard[:, 0] = hard[:, 1:].mean(axis=1)
    hard[..., 2] += 5.0
    table(hard, camera, rows, 0.6, rng)


if __name__ == "__main__":
    main()
