"""Slow, obviously correct loop versions of GPA, written from the formulas.

The NumPy backend is the library's oracle; these loops check the oracle itself,
one pose and one joint at a time, in the same arithmetic order (see the method
in ``docs/concepts.rst``).
"""

import numpy as np


def box_scale_twice(target_pose):
    """``2 * s`` with ``s = (w + h) / 2``, computed as the published code does."""
    w = target_pose[:, 0].max() - target_pose[:, 0].min()
    h = target_pose[:, 1].max() - target_pose[:, 1].min()
    s = (w + h) / 2
    return 2 * s


def gpa_paired(source, target, camera, index, root, target_root):
    """Every pose uses its paired target's camera (camera rows per target)."""
    out = np.empty_like(source)
    for i in range(source.shape[0]):
        j = index[i]
        fx, fy, cx, cy = camera[j, :4]
        pose = source[i]
        dx = pose[:, 0].max() - pose[:, 0].min()
        dy = pose[:, 1].max() - pose[:, 1].min()
        z = (fx * dx + fy * dy) / box_scale_twice(target[j])
        u = (target[j, target_root, 0] - cx) / fx
        v = (target[j, target_root, 1] - cy) / fy
        position = (z * u, z * v, z)
        for k in range(pose.shape[0]):
            for c in range(3):
                out[i, k, c] = (pose[k, c] - pose[root, c]) + position[c]
    return out


def gpa_poseda(source, target, camera, index, root, target_root):
    """The published arithmetic: row-0 focal for depth, row i for unprojection."""
    out = np.empty_like(source)
    fx0, fy0 = camera[0, 0], camera[0, 1]
    for i in range(source.shape[0]):
        j = index[i]
        pose = source[i]
        dx = pose[:, 0].max() - pose[:, 0].min()
        dy = pose[:, 1].max() - pose[:, 1].min()
        z = (fx0 * dx + fy0 * dy) / box_scale_twice(target[j])
        u = (target[j, target_root, 0] - camera[i, 2]) / camera[i, 0]
        v = (target[j, target_root, 1] - camera[i, 3]) / camera[i, 1]
        position = (z * u, z * v, z)
        for k in range(pose.shape[0]):
            for c in range(3):
                out[i, k, c] = (pose[k, c] - pose[root, c]) + position[c]
    return out


# --- camera ----------------------------------------------------------------------------


def project_point(point, camera):
    """One point through one camera row: the H36M model written out by hand."""
    x, y, z = (float(c) for c in point)
    fx, fy, cx, cy = (float(c) for c in camera[:4])
    a = min(max(x / z, -1.0), 1.0)
    b = min(max(y / z, -1.0), 1.0)
    if len(camera) == 4:
        return fx * a + cx, fy * b + cy
    k1, k2, k3, p1, p2 = (float(c) for c in camera[4:9])
    r2 = a * a + b * b
    radial = 1.0 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    tangential = p1 * a + p2 * b
    return (
        fx * (a * (radial + tangential) + p1 * r2) + cx,
        fy * (b * (radial + tangential) + p2 * r2) + cy,
    )


def quaternion_rotate(q, v):
    """Rotate 3-vector v by unit quaternion q = (w, x, y, z): q v q*, expanded."""
    w, qv = q[0], np.asarray(q[1:], dtype=float)
    v = np.asarray(v, dtype=float)
    uv = np.cross(qv, v)
    uuv = np.cross(qv, uv)
    return v + 2.0 * (w * uv + uuv)


def quaternion_conjugate(q):
    return np.array([q[0], -q[1], -q[2], -q[3]], dtype=float)


# --- depth under full perspective ----------------------------------------------------


def projected_box_scale(pose, camera):
    """(w + h) / 2 of the pinhole projection of one camera-space pose."""
    fx, fy, cx, cy = camera[:4]
    u = fx * pose[:, 0] / pose[:, 2] + cx
    v = fy * pose[:, 1] / pose[:, 2] + cy
    return ((u.max() - u.min()) + (v.max() - v.min())) / 2


def perspective_depth_bisection(pose, root, ray, camera, scale):
    """The root depth whose projected box scale is `scale`, by plain bisection.

    Slow and obviously correct: 200 halvings of a bracket on which the box
    scale is monotone (every joint in front of the camera).
    """
    rel = pose - pose[root]
    lo = max(0.0, float((-rel[:, 2]).max()))
    hi = max(2 * lo, 1.0)
    u, v = ray

    def box(z):
        placed = rel + np.array([z * u, z * v, z])
        return projected_box_scale(placed, camera)

    while box(hi) > scale:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if box(mid) > scale:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# --- metrics ---------------------------------------------------------------------------


def p_mpjpe_pose(predicted, target):
    """P-MPJPE of one pose, the textbook way (normalise, SVD, fix det), in input units."""
    mu_t = target.mean(axis=0)
    mu_p = predicted.mean(axis=0)
    t0 = target - mu_t
    p0 = predicted - mu_p
    nt = np.sqrt((t0**2).sum())
    npp = np.sqrt((p0**2).sum())
    t0 = t0 / nt
    p0 = p0 / npp
    h = t0.T @ p0
    u, s, vt = np.linalg.svd(h)
    v = vt.T
    r = v @ u.T
    if np.linalg.det(r) < 0:
        v[:, -1] *= -1
        s[-1] *= -1
        r = v @ u.T
    a = s.sum() * nt / npp
    aligned = a * predicted @ r + (mu_t - a * mu_p @ r)
    return np.linalg.norm(aligned - target, axis=1).mean()
