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
