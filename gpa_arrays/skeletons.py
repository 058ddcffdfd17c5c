"""Joint layouts of the datasets GPA is used with, and the mappings between them.

So that ``root``/``target_root`` and the metrics' joint subsets come from names,
not magic numbers::

    >>> from gpa_arrays import skeletons
    >>> skeletons.MPI_INF_3DHP_17.root
    14
    >>> skeletons.H36M_17.index("r_wrist")
    16

Layouts
-------
``H36M_17``
    Human3.6M, 17 joints in the order of VideoPose3D (Pavllo et al., CVPR 2019):
    pelvis (root), right leg, left leg, spine, thorax, neck/nose, head, left
    arm, right arm. Joint 9 is called "Neck/Nose" by SemGCN; here
    ``"neck_nose"``.
``H36M_16``
    The same without joint 9, as SemGCN (Zhao et al., CVPR 2019) and PoseAug
    (Gong et al., CVPR 2021) use it.
``MPI_INF_3DHP_17``
    The MPI-INF-3DHP test-set order, the toolkit's "relevant" joint set
    (``util/mpii_get_joint_set.m`` of the dataset's release; Mehta et al., 3DV
    2017): head top, neck, right arm, left arm, right leg, left leg, pelvis
    (root), spine, head. Parents are the toolkit's first-order parents.

Correspondence
--------------
Joints of different datasets are matched by meaning, each layout naming its
joints in its own dataset's words: 3DHP ``head_top`` is H36M ``head``, 3DHP
``neck`` is H36M ``thorax``, 3DHP ``head`` is H36M ``neck_nose``, and 3DHP
ankles are H36M feet. This reproduces the index maps the field uses
(3DHP -> H36M-17 ``[14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]``
and its inverse); :func:`mapping` returns them.

Subsets
-------
``"mpi_inf_3dhp_14"``
    The 14 joints the official MPI-INF-3DHP evaluation scores: all but pelvis,
    spine and head (3DHP names). Defined on every layout that has them
    (H36M-17 drops pelvis, spine and neck_nose; H36M-16 pelvis and spine).
``"all"``
    Every joint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "H36M_16",
    "H36M_17",
    "MPI_INF_3DHP_17",
    "Skeleton",
    "get",
    "mapping",
    "names",
]


@dataclass(frozen=True, eq=False)
class Skeleton:
    """A joint layout: names, tree, root, left/right pairs and named subsets.

    Attributes
    ----------
    name : str
        Registry name (``"h36m_17"``, ``"h36m_16"``, ``"mpi_inf_3dhp_17"``).
    joints : tuple of str
        Joint names in array order.
    parents : tuple of int
        Parent of each joint; -1 for the root.
    root : int
        Index of the root joint.
    meaning : tuple of str
        Each joint's name in the shared vocabulary (the H36M-17 names) used
        to map between layouts.
    subsets : dict of str to tuple of str
        Named joint subsets (joint names of this layout).
    """

    name: str
    joints: tuple
    parents: tuple
    root: int
    meaning: tuple
    subsets: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.joints)
        if len(set(self.joints)) != n:
            raise ValueError(f"{self.name}: joint names are not unique")
        if len(self.parents) != n or len(self.meaning) != n:
            raise ValueError(f"{self.name}: parents/meaning must have {n} entries")
        if self.parents[self.root] != -1:
            raise ValueError(f"{self.name}: the root must have parent -1")

    def __len__(self) -> int:
        return len(self.joints)

    def __repr__(self) -> str:
        return f"Skeleton({self.name!r}, {len(self)} joints, root={self.root})"

    def index(self, joint):
        """Index of a joint name, or an int64 array of indices for a sequence.

        Parameters
        ----------
        joint : str or sequence of str

        Raises
        ------
        KeyError
            A name that is not a joint of this layout (the message lists them).

        Examples
        --------
        >>> from gpa_arrays.skeletons import H36M_17
        >>> H36M_17.index(["l_wrist", "r_wrist"])
        array([13, 16])
        """
        if isinstance(joint, str):
            try:
                return self.joints.index(joint)
            except ValueError:
                raise KeyError(
                    f"joint: {joint!r} is not a joint of {self.name}; its joints are "
                    f"{', '.join(self.joints)}"
                ) from None
        return np.array([self.index(j) for j in joint], dtype=np.int64)

    def subset(self, name):
        """Indices of a named subset (``"all"``, ``"mpi_inf_3dhp_14"``, ...).

        Raises
        ------
        KeyError
            An unknown subset (the message lists the known ones).

        Examples
        --------
        >>> from gpa_arrays.skeletons import MPI_INF_3DHP_17
        >>> MPI_INF_3DHP_17.subset("mpi_inf_3dhp_14")
        array([ 0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13])
        """
        if name == "all":
            return np.arange(len(self), dtype=np.int64)
        if name not in self.subsets:
            known = ", ".join(["all", *self.subsets])
            raise KeyError(
                f"joints: {name!r} is not a subset of {self.name}; known: {known}"
            )
        return self.index(self.subsets[name])

    @property
    def left_right(self):
        """(K, 2) int64 array of ``(left, right)`` joint pairs (``l_*``, ``r_*``)."""
        pairs = [
            (k, self.joints.index("r_" + j[2:]))
            for k, j in enumerate(self.joints)
            if j.startswith("l_") and "r_" + j[2:] in self.joints
        ]
        return np.array(pairs, dtype=np.int64).reshape(-1, 2)

    @property
    def flip_permutation(self):
        """(J,) int64 permutation that swaps left and right joints.

        ``pose[..., skeleton.flip_permutation, :]`` relabels a mirrored pose
        (for horizontal-flip augmentation: negate x, then permute).
        """
        perm = np.arange(len(self), dtype=np.int64)
        for left, right in self.left_right:
            perm[left], perm[right] = right, left
        return perm

    @property
    def bones(self):
        """(J - 1, 2) int64 array of ``(parent, child)`` pairs."""
        pairs = [(p, k) for k, p in enumerate(self.parents) if p >= 0]
        return np.array(pairs, dtype=np.int64)


_H36M_17_NAMES = (
    "pelvis",
    "r_hip",
    "r_knee",
    "r_foot",
    "l_hip",
    "l_knee",
    "l_foot",
    "spine",
    "thorax",
    "neck_nose",
    "head",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
)

H36M_17 = Skeleton(
    name="h36m_17",
    joints=_H36M_17_NAMES,
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    root=0,
    meaning=_H36M_17_NAMES,
    subsets={
        "mpi_inf_3dhp_14": tuple(
            j for j in _H36M_17_NAMES if j not in ("pelvis", "spine", "neck_nose")
        ),
    },
)

_H36M_16_NAMES = tuple(j for j in _H36M_17_NAMES if j != "neck_nose")

H36M_16 = Skeleton(
    name="h36m_16",
    joints=_H36M_16_NAMES,
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14),
    root=0,
    meaning=_H36M_16_NAMES,
    subsets={
        "mpi_inf_3dhp_14": tuple(
            j for j in _H36M_16_NAMES if j not in ("pelvis", "spine")
        ),
    },
)

_3DHP_NAMES = (
    "head_top",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "pelvis",
    "spine",
    "head",
)

#: 3DHP joint names in the shared (H36M-17) vocabulary.
_3DHP_MEANING = tuple(
    {
        "head_top": "head",
        "neck": "thorax",
        "head": "neck_nose",
        "r_ankle": "r_foot",
        "l_ankle": "l_foot",
    }.get(j, j)
    for j in _3DHP_NAMES
)

MPI_INF_3DHP_17 = Skeleton(
    name="mpi_inf_3dhp_17",
    joints=_3DHP_NAMES,
    parents=(1, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1),
    root=14,
    meaning=_3DHP_MEANING,
    subsets={"mpi_inf_3dhp_14": _3DHP_NAMES[:14]},
)

_REGISTRY = {s.name: s for s in (H36M_17, H36M_16, MPI_INF_3DHP_17)}


def names():
    """Registry names of the known layouts."""
    return tuple(_REGISTRY)


def get(skeleton):
    """A :class:`Skeleton` from its registry name (or the object itself).

    Raises
    ------
    KeyError
        An unknown name (the message lists the known ones).
    TypeError
        Neither a str nor a Skeleton.
    """
    if isinstance(skeleton, Skeleton):
        return skeleton
    if not isinstance(skeleton, str):
        raise TypeError(
            f"skeleton: expected a name or a Skeleton, got {type(skeleton).__name__}"
        )
    try:
        return _REGISTRY[skeleton]
    except KeyError:
        raise KeyError(
            f"skeleton: {skeleton!r} is not known; known: {', '.join(_REGISTRY)}"
        ) from None


def mapping(source, target):
    """Indices that reorder `source`-layout joints into the `target` layout.

    ``poses_target = poses_source[..., mapping(source, target), :]``.

    Parameters
    ----------
    source, target : str or Skeleton

    Returns
    -------
    (len(target),) int64 ndarray

    Raises
    ------
    ValueError
        If `target` has a joint that `source` lacks (e.g. H36M-16 to H36M-17:
        neck_nose); the message names it.

    Examples
    --------
    >>> from gpa_arrays import skeletons
    >>> skeletons.mapping("mpi_inf_3dhp_17", "h36m_17").tolist()
    [14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]
    """
    src = get(source)
    dst = get(target)
    where = {m: k for k, m in enumerate(src.meaning)}
    missing = [dst.joints[k] for k, m in enumerate(dst.meaning) if m not in where]
    if missing:
        raise ValueError(
            f"target: {dst.name} has joints that {src.name} lacks: {', '.join(missing)}"
        )
    return np.array([where[m] for m in dst.meaning], dtype=np.int64)
