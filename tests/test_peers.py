"""The peers the benchmarks time us against compute what we compute.

The published-formula peers (NumPy, eager torch, torch.compile, jax.jit) must
give gpa(..., mode="poseda") for the same pairing, so that a peer computing
something else cannot flatter us; and the Procrustes peer (P-MPJPE by batched
numpy.linalg.svd) the metrics are timed against.
"""

import numpy as np
import pytest
from conftest import make_case

import gpa_arrays
from gpa_arrays._peers import (
    FORMULA_PEERS,
    PeerUnavailable,
    formula_peer,
    formula_peers,
    p_mpjpe_numpy_svd,
    published_numpy,
)


def poseda_case(rng, n, dtype):
    source, target, camera = make_case(rng, n, n, dtype=dtype)
    index = gpa_arrays.pair_indices(n, n, seed=7)
    want = gpa_arrays.gpa(source, target, camera, mode="poseda", pairing=index)
    return (source, target, camera), index, want


def assert_peer_gives_poseda(name, rng, dtype, n=301):
    data, index, want = poseda_case(rng, n, dtype)
    before = [a.copy() for a in data]
    peer = formula_peer(name, *data, index)
    assert peer.name == name and peer.device == "cpu"
    got = peer.result()
    assert got.shape == want.shape and got.dtype == want.dtype
    if name == "jax.jit":
        # XLA contracts fx * dx + fy * dy into one fused multiply-add: the
        # depth (about 5 m here) may round differently, by an ulp. A peer that
        # paired, focused or unprojected differently would be off by
        # centimetres, far beyond this bound.
        bound = 4 * np.finfo(dtype).eps * np.abs(want).max()
        assert np.abs(got - want).max() <= bound
        # ... and the pairing and everything but that rounding are the same:
        # the root's offsets from the other joints agree to the same bound
        offsets = got - got[:, :1]
        np.testing.assert_allclose(offsets, want - want[:, :1], rtol=0, atol=bound)
    else:
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(peer.result(), got)  # steady calls agree
    for a, b in zip(data, before, strict=True):  # inputs are left alone
        np.testing.assert_array_equal(a, b)
    return peer


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_published_numpy_is_poseda_bit_for_bit(rng, dtype):
    data, index, want = poseda_case(rng, 500, dtype)
    np.testing.assert_array_equal(published_numpy(*data, index), want)
    peer = assert_peer_gives_poseda("numpy (published)", rng, dtype)
    assert peer.compile_s is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eager_torch_peer_is_poseda_bit_for_bit(rng, dtype):
    pytest.importorskip("torch")
    peer = assert_peer_gives_poseda("torch eager", rng, dtype)
    assert peer.compile_s is None


@pytest.mark.slow  # torch.compile: about 20 s the first time in a process
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_torch_peer_is_poseda_bit_for_bit(rng, dtype):
    pytest.importorskip("torch")
    peer = assert_peer_gives_poseda("torch.compile", rng, dtype)
    assert peer.compile_s > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_jax_jit_peer_is_poseda_to_an_ulp(rng, dtype):
    pytest.importorskip("jax")
    peer = assert_peer_gives_poseda("jax.jit", rng, dtype)
    assert peer.compile_s > 0


def test_jax_peer_leaves_jax_settings_alone(rng):
    jax = pytest.importorskip("jax")
    before = jax.config.jax_enable_x64
    assert_peer_gives_poseda("jax.jit", rng, np.float64, n=20)
    assert jax.config.jax_enable_x64 == before


def test_peers_on_missing_frameworks_and_devices_are_skipped_with_a_reason(rng):
    data, index, _ = poseda_case(rng, 10, np.float64)
    peers, skipped = formula_peers(*data, index, names=("numpy (published)",))
    assert list(peers) == ["numpy (published)"] and skipped == {}
    peers, skipped = formula_peers(*data, index, device="cuda")
    assert set(peers) | set(skipped) == set(FORMULA_PEERS)
    assert skipped["numpy (published)"] == "NumPy computes on the host only"
    for name in skipped:
        assert skipped[name]  # a reason, one line
    with pytest.raises(PeerUnavailable, match="host only"):
        formula_peer("numpy (published)", *data, index, device="cuda")


def test_missing_torch_or_jax_is_named(rng, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_frameworks(name, *args, **kwargs):
        if name.split(".")[0] in ("torch", "jax"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_frameworks)
    data, index, _ = poseda_case(rng, 10, np.float64)
    peers, skipped = formula_peers(*data, index)
    assert list(peers) == ["numpy (published)"]
    assert skipped == {
        "torch eager": "torch is not installed",
        "torch.compile": "torch is not installed",
        "jax.jit": "jax is not installed",
    }


def test_bad_peer_names_and_devices_raise(rng):
    data, index, _ = poseda_case(rng, 10, np.float64)
    with pytest.raises(ValueError, match="name: expected one of"):
        formula_peer("numba", *data, index)
    with pytest.raises(ValueError, match="device: expected 'cpu' or 'cuda'"):
        formula_peer("torch eager", *data, index, device="mps")


def test_published_numpy_rejects_unequal_sizes(rng):
    source, target, camera = make_case(rng, 10, 12)
    with pytest.raises(ValueError, match="same size"):
        published_numpy(source, target, camera, np.arange(10))


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
