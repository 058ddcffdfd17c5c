"""gpa_arrays.skeletons: the layouts and maps of CONVENTIONS.md."""

import numpy as np
import pytest

from gpa_arrays import skeletons
from gpa_arrays.skeletons import H36M_16, H36M_17, MPI_INF_3DHP_17

# the index maps the field uses (VideoPose3D / PoseAug data preparation)
HP3D_TO_H36M17 = [14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]
H36M17_TO_HP3D = [10, 8, 14, 15, 16, 11, 12, 13, 1, 2, 3, 4, 5, 6, 0, 7, 9]


def test_layouts():
    assert len(H36M_17) == 17 and H36M_17.root == 0
    assert H36M_17.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    assert len(H36M_16) == 16 and "neck_nose" not in H36M_16.joints
    assert H36M_16.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14)
    assert len(MPI_INF_3DHP_17) == 17 and MPI_INF_3DHP_17.root == 14
    assert MPI_INF_3DHP_17.joints[MPI_INF_3DHP_17.root] == "pelvis"
    assert MPI_INF_3DHP_17.index(["head_top", "neck", "spine", "head"]).tolist() == [
        0,
        1,
        15,
        16,
    ]
    for skel in (H36M_17, H36M_16, MPI_INF_3DHP_17):
        # a tree: every joint reaches the root
        for k in range(len(skel)):
            seen = 0
            while k != skel.root:
                k = skel.parents[k]
                seen += 1
                assert seen < len(skel)
        assert skel.bones.shape == (len(skel) - 1, 2)
        assert skel is skeletons.get(skel.name)
        assert skel.name in skeletons.names()


def test_mappings_match_the_field():
    assert skeletons.mapping("mpi_inf_3dhp_17", "h36m_17").tolist() == HP3D_TO_H36M17
    assert skeletons.mapping(H36M_17, MPI_INF_3DHP_17).tolist() == H36M17_TO_HP3D
    np.testing.assert_array_equal(
        np.asarray(HP3D_TO_H36M17)[H36M17_TO_HP3D], np.arange(17)
    )
    assert skeletons.mapping("h36m_17", "h36m_16").tolist() == [
        *range(9),
        *range(10, 17),
    ]
    assert skeletons.mapping("h36m_17", "h36m_17").tolist() == list(range(17))
    # 3DHP -> H36M-16 composes the two
    np.testing.assert_array_equal(
        skeletons.mapping("mpi_inf_3dhp_17", "h36m_16"),
        np.asarray(HP3D_TO_H36M17)[skeletons.mapping("h36m_17", "h36m_16")],
    )
    with pytest.raises(
        ValueError, match="h36m_17 has joints that h36m_16 lacks: neck_nose"
    ):
        skeletons.mapping("h36m_16", "h36m_17")


def test_parents_agree_under_the_mapping():
    # the 3DHP toolkit's tree and H36M's differ only around the head
    idx = skeletons.mapping("mpi_inf_3dhp_17", "h36m_17")
    inverse = np.argsort(idx)
    for k in range(17):
        h36m_parent = H36M_17.parents[k]
        hp3d_parent = MPI_INF_3DHP_17.parents[idx[k]]
        if H36M_17.joints[k] in ("head", "neck_nose"):
            continue
        assert (h36m_parent == -1 and hp3d_parent == -1) or inverse[
            hp3d_parent
        ] == h36m_parent, H36M_17.joints[k]


def test_left_right_and_flip():
    pairs = H36M_17.left_right
    assert {tuple(p) for p in pairs.tolist()} == {
        (4, 1),
        (5, 2),
        (6, 3),
        (11, 14),
        (12, 15),
        (13, 16),
    }
    for skel in (H36M_17, H36M_16, MPI_INF_3DHP_17):
        perm = skel.flip_permutation
        np.testing.assert_array_equal(perm[perm], np.arange(len(skel)))
        for left, right in skel.left_right:
            assert skel.joints[left][2:] == skel.joints[right][2:]
            assert perm[left] == right
    assert len(MPI_INF_3DHP_17.left_right) == 6


def test_subsets():
    hp = MPI_INF_3DHP_17.subset("mpi_inf_3dhp_14")
    assert hp.tolist() == list(range(14))
    # the same 14 joints in every layout, by meaning
    for skel in (H36M_17, H36M_16):
        sub = skel.subset("mpi_inf_3dhp_14")
        assert len(sub) == 14
        meanings = {skel.meaning[k] for k in sub}
        assert meanings == {MPI_INF_3DHP_17.meaning[k] for k in hp}
    assert H36M_17.subset("all").tolist() == list(range(17))
    with pytest.raises(KeyError, match="'eval' is not a subset of h36m_17"):
        H36M_17.subset("eval")
    with pytest.raises(KeyError, match="'nose' is not a joint of h36m_17"):
        H36M_17.index("nose")
    with pytest.raises(KeyError, match="skeleton: 'coco' is not known"):
        skeletons.get("coco")
    with pytest.raises(TypeError, match="skeleton: expected a name or a Skeleton"):
        skeletons.get(17)


def test_layout_validation():
    with pytest.raises(ValueError, match="joint names are not unique"):
        skeletons.Skeleton("x", ("a", "a"), (-1, 0), 0, ("a", "b"))
    with pytest.raises(ValueError, match="the root must have parent -1"):
        skeletons.Skeleton("x", ("a", "b"), (1, 0), 0, ("a", "b"))
