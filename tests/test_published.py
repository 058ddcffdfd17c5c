"""mode="poseda" reproduces the published function bit for bit (PyTorch peer)."""

import numpy as np
import pytest
from conftest import CPU_BACKENDS, make_case

import gpa_arrays
from gpa_arrays._peers import published_torch, straightforward_numpy

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_poseda_equals_published(rng, backend, dtype):
    n = 257
    source, target, camera = make_case(rng, n, n, dtype=dtype)
    index = gpa_arrays.pair_indices(n, n, seed=12)
    args = [torch.from_numpy(a.copy()) for a in (source, target, camera)]
    before = [a.clone() for a in args]
    want = published_torch(*args, index=torch.from_numpy(index)).numpy()
    for a, b in zip(
        args, before, strict=True
    ):  # the published function is non-mutating too
        assert torch.equal(a, b)
    got = gpa_arrays.gpa(
        source, target, camera, mode="poseda", pairing=index, backend=backend
    )
    np.testing.assert_array_equal(got, want)
    got = gpa_arrays.gpa(
        source, target, camera, mode="poseda", seed=12, backend=backend
    )
    np.testing.assert_array_equal(got, want)


def test_published_with_randperm_is_a_permutation_of_pairings(rng):
    n = 64
    source, target, camera = make_case(rng, n, n, per_target_camera=False)
    camera = np.tile(camera, (n, 1))
    out = published_torch(*(torch.from_numpy(a) for a in (source, target, camera)))
    assert out.shape == (n, 17, 3)


def test_straightforward_numpy_peer_matches(rng):
    source, target, camera = make_case(rng, 90, 40, target_joints=15)
    index = gpa_arrays.pair_indices(90, 40, seed=1)
    want = gpa_arrays.gpa(source, target, camera, pairing=index, root=3, target_root=14)
    got = straightforward_numpy(source, target, camera, index, root=3, target_root=14)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
