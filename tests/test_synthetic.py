"""The built-in synthetic domains: plausible poses, sane cameras, determinism."""

import numpy as np
import pytest

import gpa_arrays
from gpa_arrays import stats, synthetic
from gpa_arrays.camera import project

PARENTS = np.array(synthetic.H36M17_PARENTS)
CHILDREN = np.arange(1, 17)


@pytest.fixture(scope="module")
def domains():
    return synthetic.make_domains(6000, 4000, seed=11)


def bone_lengths(poses):
    return np.linalg.norm(poses[:, CHILDREN] - poses[:, PARENTS[CHILDREN]], axis=-1)


def angle_at(poses, a, b, c):
    """Angle (degrees) between segments b->a and b->c, at joint b."""
    u = poses[:, a] - poses[:, b]
    v = poses[:, c] - poses[:, b]
    cos = (u * v).sum(-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_shapes_dtypes_and_finiteness(domains):
    d = domains
    assert d.source_3d.shape == (6000, 17, 3)
    assert d.source_2d.shape == (6000, 17, 2)
    assert d.source_camera.shape == (6000, 4)
    assert d.source_camera_id.shape == d.source_action.shape == (6000,)
    assert d.target_3d.shape == (4000, 17, 3)
    assert d.target_2d.shape == (4000, 17, 2)
    assert d.target_camera.shape == (4000, 4)
    assert d.target_aspect.shape == d.target_action.shape == (4000,)
    for name in ("source_3d", "source_2d", "source_camera", "target_3d", "target_2d"):
        array = getattr(d, name)
        assert array.dtype == np.float64, name
        assert np.isfinite(array).all(), name
    assert d.seed == 11


@pytest.mark.parametrize("side", ["source", "target"])
def test_bone_lengths_realistic(domains, side):
    poses = getattr(domains, f"{side}_3d")
    lengths = bone_lengths(poses)
    mean = np.asarray(synthetic.BONE_LENGTHS)[CHILDREN]
    ratio = lengths / mean
    # body size +-15 %, per bone +-10 %, asymmetry +-1.5 %
    assert ratio.min() >= 0.85 * 0.9 * 0.985 - 1e-12
    assert ratio.max() <= 1.15 * 1.1 * 1.015 + 1e-12
    # a realistic spread, not a fixed skeleton
    assert ratio.std(axis=0).min() > 0.04 and ratio.std(axis=0).max() < 0.1
    # left and right limbs nearly equal (column k - 1 is the bone ending at
    # joint k): thigh, shin, upper arm, forearm
    for right, left in ((2, 5), (3, 6), (15, 12), (16, 13)):
        np.testing.assert_allclose(
            lengths[:, right - 1], lengths[:, left - 1], rtol=0.035
        )
    # adult sizes: the chain ankle-knee-hip + pelvis-spine-thorax-nose-head top
    height = lengths[:, [1, 2, 6, 7, 8, 9]].sum(axis=1)
    assert height.min() > 1.2 and height.max() < 2.1


@pytest.mark.parametrize("side", ["source", "target"])
def test_joint_angles_within_human_limits(domains, side):
    poses = getattr(domains, f"{side}_3d")
    for hip, knee, foot in ((1, 2, 3), (4, 5, 6)):
        # knee flexion = 180 - interior angle at the knee
        flexion = 180 - angle_at(poses, hip, knee, foot)
        assert flexion.min() >= -1e-6 and flexion.max() <= 150 + 1e-6
    for shoulder, elbow, wrist in ((11, 12, 13), (14, 15, 16)):
        flexion = 180 - angle_at(poses, shoulder, elbow, wrist)
        assert flexion.min() >= -1e-6 and flexion.max() <= 150 + 1e-6
    # each spine segment carries half the lean (at most 90 degrees) and half the
    # side bend (at most 30): the segments meet at no less than 180 degrees minus
    # the tilt of a vector rotated by 45 degrees about x and 15 about y
    limit = 180 - np.degrees(np.arccos(np.cos(np.radians(45)) * np.cos(np.radians(15))))
    spine = angle_at(poses, 0, 7, 8)
    assert spine.min() >= limit - 1e-6
    # the head stays on the neck: nose-head top within 60 degrees of the thorax axis
    neck = angle_at(poses, 7, 8, 9)
    assert neck.min() > 90


def test_poses_upright_and_in_front_of_cameras(domains):
    d = domains
    assert d.source_3d[..., 2].min() > 2.5  # studio: 4.6-5.6 m cameras, 1 m area
    assert d.target_3d[..., 2].min() > 0.5
    standing = d.source_action == synthetic.ACTIONS.index("standing")
    # image y points down: a standing subject's head is above its pelvis
    assert (d.source_2d[standing, 10, 1] < d.source_2d[standing, 0, 1]).all()
    # feet on the ground, below the pelvis, for standing and walking poses
    upright = np.isin(d.target_action, [0, 1])
    assert (d.target_2d[upright, 3, 1] > d.target_2d[upright, 0, 1]).mean() > 0.95


def test_every_joint_inside_its_frame(domains):
    d = domains
    np.testing.assert_array_equal(
        d.source_2d, project(d.source_3d, d.source_camera[:, None])
    )
    np.testing.assert_array_equal(
        d.target_2d, project(d.target_3d, d.target_camera[:, None])
    )
    assert np.abs(d.source_2d).max() <= 1.0
    assert (np.abs(d.target_2d[..., 0]) <= 1.0).all()
    assert (np.abs(d.target_2d[..., 1]) <= d.target_aspect[:, None]).all()


def test_camera_domains_differ_as_documented(domains):
    d = domains
    # four fixed studio cameras with H36M-like focal lengths
    assert len(np.unique(d.source_camera, axis=0)) == 4
    assert set(np.unique(d.source_camera_id)) == {0, 1, 2, 3}
    assert np.allclose(d.source_camera[:, 0], 2.29, atol=0.02)
    # in-the-wild focal lengths: 3DHP's two and a continuum
    fx = d.target_camera[:, 0]
    assert np.isclose(fx, 1.465).mean() > 0.25
    assert np.isclose(fx, 1.754).mean() > 0.25
    assert fx.min() >= 1.1 and fx.max() <= 2.4
    assert set(np.round(np.unique(d.target_aspect), 4)) == {0.5625, 0.75, 1.0}
    # every action family occurs in both domains
    assert set(np.unique(d.source_action)) == set(range(len(synthetic.ACTIONS)))
    assert set(np.unique(d.target_action)) == set(range(len(synthetic.ACTIONS)))
    # studio subjects are centred, wild ones spread and smaller on average
    s, t = stats.pose_statistics(d.source_2d), stats.pose_statistics(d.target_2d)
    assert 0.4 < s.scale.mean() < 0.5 and t.scale.mean() < s.scale.mean() - 0.05
    assert t.root_x.std() > s.root_x.std() + 0.05
    assert t.root_y.std() > 2 * s.root_y.std()


def test_deterministic_per_seed_and_streams_independent():
    a = synthetic.make_domains(300, 200, seed=5)
    b = synthetic.make_domains(300, 200, seed=5)
    c = synthetic.make_domains(300, 200, seed=6)
    for name in ("source_3d", "target_2d", "target_camera", "source_action"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.source_3d, c.source_3d)
    # the source domain of a seed does not depend on the number of targets
    d = synthetic.make_domains(300, 50, seed=5)
    np.testing.assert_array_equal(a.source_3d, d.source_3d)


def test_float32_and_empty():
    d = synthetic.make_domains(100, 0, seed=0, dtype=np.float32)
    assert d.source_3d.dtype == d.target_2d.dtype == np.float32
    assert d.target_2d.shape == (0, 17, 2)
    assert synthetic.make_domains(0, 3).source_3d.shape == (0, 17, 3)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((-1,), {}, "n_source: expected a non-negative int"),
        ((10, 2.5), {}, "n_target: expected a non-negative int"),
        ((10,), {"dtype": np.int32}, "dtype: expected float32 or float64"),
    ],
)
def test_make_domains_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic.make_domains(*args, **kwargs)


def test_ready_for_gpa_and_matches_target_roots(domains):
    d = domains
    out = gpa_arrays.gpa(d.source_3d, d.target_2d, d.target_camera, seed=3)
    pair = gpa_arrays.pair_indices(len(d.source_3d), len(d.target_2d), seed=3)
    aligned = project(out, d.target_camera[pair][:, None])
    np.testing.assert_allclose(aligned[:, 0], d.target_2d[pair, 0], atol=1e-12)


def test_sample_poses_families(rng):
    for code, name in enumerate(synthetic.ACTIONS):
        mix = np.eye(len(synthetic.ACTIONS))[code]
        poses, action = synthetic.sample_poses(200, rng, mix=mix)
        assert (action == code).all()
        assert poses.shape == (200, 17, 3)
        np.testing.assert_array_equal(poses[:, 0], 0.0)  # root at the origin
        head_up = poses[:, 10, 2] - poses[:, 0, 2]
        if name in ("standing", "walking", "phoning", "arms_raised"):
            assert head_up.min() > 0.5, name
        if name == "sitting":
            # thighs roughly horizontal: knees near hip height
            assert np.abs(poses[:, [2, 5], 2] - poses[:, [1, 4], 2]).mean() < 0.2
        if name == "arms_raised":
            wrists_up = np.maximum(poses[:, 13, 2], poses[:, 16, 2])
            assert (wrists_up > poses[:, 8, 2]).mean() > 0.9
