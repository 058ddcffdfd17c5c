"""The Procrustes peer (P-MPJPE by batched numpy.linalg.svd) the metrics are timed against."""

import numpy as np
import pytest

from gpa_arrays._peers import p_mpjpe_numpy_svd


def random_rotations(rng, n):
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack(
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1
            ),
            np.stack(
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1
            ),
            np.stack(
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1
            ),
        ],
        axis=1,
    )


def test_similarity_transforms_are_removed(rng):
    target = rng.normal(scale=0.3, size=(50, 17, 3))
    rot = random_rotations(rng, 50)
    scale = rng.uniform(0.5, 2.0, size=(50, 1, 1))
    shift = rng.normal(size=(50, 1, 3))
    predicted = scale * np.einsum("nij,nkj->nki", rot, target) + shift
    assert p_mpjpe_numpy_svd(predicted, target) == pytest.approx(0, abs=1e-9)


def test_reflection_is_not_a_rotation(rng):
    target = rng.normal(scale=0.3, size=(20, 17, 3))
    mirrored = target * np.array([-1.0, 1.0, 1.0])
    assert p_mpjpe_numpy_svd(mirrored, target) > 10  # mm: cannot be aligned away


def test_matches_a_per_pose_search_and_beats_centering(rng):
    # the optimum can only be better than centring alone, and equals the
    # error of the per-pose closed form computed one pose at a time
    target = rng.normal(scale=0.3, size=(30, 17, 3))
    predicted = target + rng.normal(scale=0.05, size=target.shape)
    value = p_mpjpe_numpy_svd(predicted, target)
    centred = (
        predicted - predicted.mean(1, keepdims=True) + target.mean(1, keepdims=True)
    )
    assert value < np.linalg.norm(centred - target, axis=-1).mean() * 1000
    per_pose = [
        p_mpjpe_numpy_svd(p[None], t[None])
        for p, t in zip(predicted, target, strict=True)
    ]
    assert value == pytest.approx(np.mean(per_pose), rel=1e-12)
