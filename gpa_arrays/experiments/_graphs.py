"""Skeleton graphs of the graph lifters, from a layout's parents (NumPy only).

The two graph networks of :mod:`gpa_arrays.experiments` take their graph from
the parents of a :class:`gpa_arrays.skeletons.Skeleton`, never from a second
edge list:

* SemGCN (Zhao et al., CVPR 2019) convolves over the skeleton's adjacency with
  self-loops (:func:`adjacency`);
* ST-GCN (Cai et al., ICCV 2019) over a spatial-temporal graph whose
  neighbours fall into five classes (:func:`st_neighbour_classes`), and pools
  joints into body parts (:func:`body_parts`) on its way from local to global.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "NEIGHBOUR_CLASSES",
    "adjacency",
    "body_parts",
    "depths",
    "st_neighbour_classes",
]

#: The neighbour classes of a node (joint j, frame t) of the spatial-temporal
#: graph, in the order of :func:`st_neighbour_classes`.
NEIGHBOUR_CLASSES = ("self", "centripetal", "centrifugal", "past", "future")


def _parents(parents):
    p = np.asarray(parents)
    if p.ndim != 1 or p.size == 0 or p.dtype.kind not in "iu":
        raise ValueError(
            f"parents: expected a non-empty 1-D integer sequence, got {p!r}"
        )
    n = len(p)
    roots = np.flatnonzero(p == -1)
    if len(roots) != 1 or np.any((p < -1) | (p >= n)):
        raise ValueError(
            f"parents: expected one root (-1) and parent indices in [0, {n}), got "
            f"{p.tolist()}"
        )
    return p.astype(np.int64)


def depths(parents):
    """Hops from each joint to the root of the tree `parents` describes.

    Parameters
    ----------
    parents : sequence of int, length J
        Parent of each joint, -1 for the root (``Skeleton.parents``).

    Returns
    -------
    (J,) int64 ndarray

    Raises
    ------
    ValueError
        Not a tree (several roots, indices out of range, a cycle).

    Examples
    --------
    >>> depths([-1, 0, 1, 0]).tolist()
    [0, 1, 2, 1]
    """
    p = _parents(parents)
    out = np.full(len(p), -1, dtype=np.int64)
    for j in range(len(p)):
        path = []
        k = j
        while out[k] < 0 and p[k] >= 0:
            path.append(k)
            k = p[k]
            if len(path) > len(p):
                raise ValueError(f"parents: the tree has a cycle: {p.tolist()}")
        base = max(out[k], 0)
        for hops, node in enumerate(reversed(path), start=1):
            out[node] = base + hops
        out[k] = base
    return out


def adjacency(parents):
    """The skeleton's adjacency with self-loops, (J, J) float64 of 0 and 1.

    Entry (i, j) is 1 where joints i and j are one bone apart or i = j: the
    neighbourhood over which SemGCN's edge weights are normalised.

    Examples
    --------
    >>> adjacency([-1, 0, 1]).astype(int).tolist()
    [[1, 1, 0], [1, 1, 1], [0, 1, 1]]
    """
    p = _parents(parents)
    a = np.eye(len(p))
    child = np.flatnonzero(p >= 0)
    a[child, p[child]] = a[p[child], child] = 1.0
    return a


def st_neighbour_classes(parents, frames):
    """The neighbour classes of the spatial-temporal graph of Cai et al.

    Nodes are (frame t, joint j), numbered ``t * J + j``. The neighbours of a
    node fall into five classes (Cai et al., ICCV 2019, section 3.2), each
    convolved with its own kernel:

    0. ``self``: the node itself;
    1. ``centripetal``: joints one bone away in the same frame that are closer
       to the root (in a tree, the parent);
    2. ``centrifugal``: joints one bone away in the same frame that are
       farther from the root (the children);
    3. ``past``: the same joint in the previous frame;
    4. ``future``: the same joint in the next frame.

    Parameters
    ----------
    parents : sequence of int, length J
        Parent of each joint, -1 for the root.
    frames : int
        Frames T of the graph.

    Returns
    -------
    (5, T * J, T * J) float64 ndarray
        ``classes[k, a, b] = 1`` where node b is a class-k neighbour of node a.

    Examples
    --------
    A two-joint chain over two frames (nodes: t0 j0, t0 j1, t1 j0, t1 j1):

    >>> c = st_neighbour_classes([-1, 0], 2).astype(int)
    >>> c[1].tolist()  # centripetal: each frame's joint 1 sees its parent
    [[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]
    >>> c[4].tolist()  # future: frame 0 sees frame 1
    [[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
    """
    p = _parents(parents)
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)):
        raise TypeError(f"frames: expected an int, got {type(frames).__name__}")
    if frames < 1:
        raise ValueError(f"frames: expected a positive int, got {frames}")
    j = len(p)
    d = depths(p)
    edge = adjacency(p) - np.eye(j)
    closer = edge * (d[None, :] < d[:, None])
    farther = edge * (d[None, :] > d[:, None])
    time = np.eye(frames)
    past = np.eye(frames, k=-1)  # row t, column t - 1
    future = np.eye(frames, k=1)
    eye = np.eye(j)
    return np.stack([
        np.kron(time, eye), np.kron(time, closer), np.kron(time, farther),
        np.kron(past, eye), np.kron(future, eye),
    ])  # fmt: skip


def body_parts(parents):
    """Joints grouped into body parts, the pooling of ST-GCN's local-to-global path.

    Each chain of joints that ends at a leaf and hangs from a branching joint
    (or the root) is a part (a limb, the head); the remaining joints, the
    root and the branching joints with what lies between them, form the
    torso, part 0. For Human3.6M-17: torso (pelvis, spine, thorax), right
    leg, left leg, neck and head, left arm, right arm.

    Parameters
    ----------
    parents : sequence of int, length J

    Returns
    -------
    part : (J,) int64 ndarray
        The part of each joint (0 the torso).
    part_parents : (P,) int64 ndarray
        The part each part hangs from (-1 for the torso): the parts' own tree.

    Examples
    --------
    >>> part, tree = body_parts([-1, 0, 1, 0, 3, 0])  # a root with three chains
    >>> part.tolist(), tree.tolist()
    ([0, 1, 1, 2, 2, 3], [-1, 0, 0, 0])
    """
    p = _parents(parents)
    children = np.bincount(p[p >= 0], minlength=len(p))
    # a joint is in a limb if every joint below it is a single chain to a leaf
    in_limb = children == 0
    for j in np.argsort(-depths(p)):  # deepest first: children before parents
        if children[j] == 1:
            in_limb[j] = in_limb[np.flatnonzero(p == j)[0]]
    root = int(np.flatnonzero(p == -1)[0])
    in_limb[root] = False
    part = np.zeros(len(p), dtype=np.int64)
    part_parents = [-1]
    for j in range(len(p)):  # limb heads, in joint order: parts 1, 2, ...
        if in_limb[j] and not in_limb[p[j]]:
            part_parents.append(0)
            part[j] = len(part_parents) - 1
    for j in np.argsort(depths(p)):  # the rest of each limb follows its head
        if in_limb[j] and in_limb[p[j]]:
            part[j] = part[p[j]]
    return part, np.array(part_parents, dtype=np.int64)
