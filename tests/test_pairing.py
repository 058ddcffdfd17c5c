"""The counter-based pairing: contracts, cross-backend identity, statistics."""

import numpy as np
import pytest
from scipy import stats

import gpa_arrays
from gpa_arrays import _pairing as P
from gpa_arrays._backends import numba_, numpy_

SIZES = [
    (1, 1),
    (2, 2),
    (3, 3),
    (7, 7),
    (10, 10),
    (17, 17),
    (100, 100),
    (1000, 1000),
    (5, 50),
    (13, 1000),
    (50, 5),
    (1000, 13),
    (1001, 1000),
    (99, 100),
]


@pytest.mark.parametrize(("n", "m"), SIZES)
@pytest.mark.parametrize("kind", ["permutation", "random"])
def test_numba_equals_numpy(n, m, kind):
    for seed in (0, 1, 2**63 + 5, 2**64 - 1):
        spec = P.resolve_pairing(kind, n, m, seed)
        np.testing.assert_array_equal(
            numba_.pair_indices(spec), numpy_.pair_indices(spec)
        )


@pytest.mark.parametrize(("n", "m"), SIZES)
def test_permutation_contract(n, m):
    for seed in range(5):
        idx = gpa_arrays.pair_indices(n, m, seed=seed)
        assert idx.dtype == np.int64 and idx.shape == (n,)
        assert idx.min() >= 0 and idx.max() < m
        counts = np.bincount(idx, minlength=m)
        if n == m:
            assert (counts == 1).all()  # a permutation
        elif n < m:
            assert counts.max() == 1  # distinct targets
        else:  # balanced: floor(n/m) or ceil(n/m) uses each
            assert counts.min() >= n // m and counts.max() <= -(-n // m)


def test_cycle_walking_domains():
    # k just above a perfect square forces a*b - k points to walk
    for k in (2, 3, 5, 10, 17, 26, 101, 1025, 65537, 99_991):
        spec = P.resolve_pairing("permutation", k, k, 3)
        assert spec.a * spec.b >= k and spec.a * spec.b - k < spec.a
        idx = numba_.pair_indices(spec)
        assert np.array_equal(np.sort(idx), np.arange(k))
        np.testing.assert_array_equal(idx, numpy_.pair_indices(spec))


def test_large_permutation_is_a_bijection():
    n = 1_234_567
    idx = gpa_arrays.pair_indices(n, n, seed=42)
    assert np.array_equal(np.bincount(idx, minlength=n), np.ones(n, dtype=np.int64))


def test_deterministic_and_seed_sensitive():
    a = gpa_arrays.pair_indices(500, 500, seed=7)
    np.testing.assert_array_equal(a, gpa_arrays.pair_indices(500, 500, seed=7))
    assert not np.array_equal(a, gpa_arrays.pair_indices(500, 500, seed=8))
    assert not np.array_equal(a, np.arange(500))


def test_step_changes_the_pairing():
    base = numpy_.pair_indices(P.resolve_pairing("permutation", 300, 300, 9, step=0))
    nxt = numpy_.pair_indices(P.resolve_pairing("permutation", 300, 300, 9, step=1))
    assert not np.array_equal(base, nxt)
    assert np.array_equal(np.sort(nxt), np.arange(300))


def test_seed_none_draws_fresh_entropy():
    draws = {tuple(gpa_arrays.pair_indices(50, 50)) for _ in range(5)}
    assert len(draws) == 5


def test_generator_seed_advances_and_reproduces():
    g1 = np.random.default_rng(3)
    g2 = np.random.default_rng(3)
    a = gpa_arrays.pair_indices(64, 64, seed=g1)
    b = gpa_arrays.pair_indices(64, 64, seed=g1)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, gpa_arrays.pair_indices(64, 64, seed=g2))


def test_identity_and_array():
    np.testing.assert_array_equal(
        gpa_arrays.pair_indices(4, 4, pairing="identity"), np.arange(4)
    )
    idx = np.array([3, 0, 0, 2], dtype=np.int32)
    out = gpa_arrays.pair_indices(4, 5, pairing=idx)
    assert out.dtype == np.int64 and out.tolist() == [3, 0, 0, 2]
    out[0] = 1
    assert idx[0] == 3  # a copy, not a view of the caller's array


def test_random_in_range_and_repeats():
    idx = gpa_arrays.pair_indices(5000, 100, pairing="random", seed=1)
    assert idx.min() >= 0 and idx.max() < 100
    # independent draws: some targets used more than ceil(n/m) times
    assert np.bincount(idx, minlength=100).max() > 50


@pytest.mark.parametrize("n", [6, 8, 11])
def test_permutation_uniformity_over_seeds(n):
    # Each source position should land on each target with probability 1/n.
    seeds = 3000
    counts = np.zeros((n, n))
    for seed in range(seeds):
        idx = gpa_arrays.pair_indices(n, n, seed=seed, backend="numpy")
        counts[np.arange(n), idx] += 1
    _, p = stats.chisquare(counts.ravel(), np.full(n * n, seeds / n))
    assert p > 1e-4, p


def test_permutation_fixed_points_are_poisson():
    # a uniform random permutation has Poisson(1)-distributed fixed points
    n, seeds = 200, 2000
    fixed = np.array(
        [
            (gpa_arrays.pair_indices(n, n, seed=s) == np.arange(n)).sum()
            for s in range(seeds)
        ]
    )
    assert abs(fixed.mean() - 1.0) < 0.1
    assert abs(fixed.var() - 1.0) < 0.15


def test_random_uniformity():
    m = 37
    idx = gpa_arrays.pair_indices(m * 2000, m, pairing="random", seed=11)
    _, p = stats.chisquare(np.bincount(idx, minlength=m))
    assert p > 1e-4


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"pairing": "shuffle"}, ValueError, "pairing: expected 'permutation'"),
        ({"pairing": 3}, TypeError, "or an integer array, got int"),
        (
            {"pairing": np.zeros(4)},
            TypeError,
            "pairing: expected an integer array, got dtype float64",
        ),
        (
            {"pairing": np.zeros(3, dtype=int)},
            ValueError,
            r"pairing: expected shape \(4,\)",
        ),
        (
            {"pairing": np.array([0, 1, 2, 9])},
            ValueError,
            r"1 of 4 target index outside \[0, 4\); first at position 3 \(value 9\)",
        ),
        (
            {"pairing": np.array([0, -1, 2, 3])},
            ValueError,
            r"outside \[0, 4\); first at position 1 \(value -1\)",
        ),
        (
            {"seed": -1},
            ValueError,
            r"seed: expected an integer in \[0, 2\*\*64\), got -1",
        ),
        ({"seed": 2**64}, ValueError, "seed: expected an integer"),
        (
            {"seed": 1.5},
            TypeError,
            "seed: expected None, an int or a numpy.random.Generator, got float",
        ),
        ({"seed": True}, TypeError, "got bool"),
    ],
)
def test_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        gpa_arrays.pair_indices(4, 4, **kwargs)


def test_size_errors():
    with pytest.raises(ValueError, match="n: expected a non-negative int, got -1"):
        gpa_arrays.pair_indices(-1, 4)
    with pytest.raises(TypeError, match="m: expected a non-negative int, got float"):
        gpa_arrays.pair_indices(4, 4.0)
    with pytest.raises(ValueError, match="'identity' needs as many targets as sources"):
        gpa_arrays.pair_indices(4, 5, pairing="identity")
    with pytest.raises(ValueError, match="4 sources need at least one target, got 0"):
        gpa_arrays.pair_indices(4, 0)
    with pytest.raises(ValueError, match="at most"):
        gpa_arrays.pair_indices(2**49, 4)
    assert gpa_arrays.pair_indices(0, 0).shape == (0,)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_no_targets_is_refused_for_every_pairing_kind(backend, rng):
    # before any backend, with one message: an index array used to reach the
    # kernels (IndexError on NumPy, an index error on Numba, a null read on CUDA)
    message = "target_2d: 5 sources need at least one target, got 0"
    for pairing in ("permutation", "random", "identity", np.zeros(5, np.int64)):
        with pytest.raises(ValueError, match=message):
            P.resolve_pairing(pairing, 5, 0, 1)
        with pytest.raises(ValueError, match=message):
            gpa_arrays.pair_indices(5, 0, pairing=pairing, backend=backend)
        source = rng.normal(size=(5, 4, 3))
        source[..., 2] += 5.0
        with pytest.raises(ValueError, match=message):
            gpa_arrays.gpa(source, np.zeros((0, 4, 2)), np.zeros((0, 4)),
                           pairing=pairing, backend=backend)  # fmt: skip
    # no sources and no targets stays a valid, empty call
    assert P.resolve_pairing(np.zeros(0, np.int64), 0, 0, 1).count == 0


def test_feistel_pass_is_a_bijection_on_the_rectangle():
    keys = np.empty(P.ROUNDS + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        P.round_keys(np.uint64(5), np.uint64(0), keys)
    a, b = np.uint64(7), np.uint64(11)
    x = P.feistel(np.arange(77, dtype=np.uint64), keys, a, b)
    assert np.array_equal(np.sort(x), np.arange(77, dtype=np.uint64))


def test_mulhi64_against_python_ints():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2**64, size=1000, dtype=np.uint64)
    y = rng.integers(0, 2**64, size=1000, dtype=np.uint64)
    got = P.mulhi64(x, y)
    want = [(int(a) * int(b)) >> 64 for a, b in zip(x, y, strict=True)]
    assert got.tolist() == want


def test_fast_divmod_is_exact():
    rng = np.random.default_rng(1)
    for d in (1, 2, 3, 7, 1000, 16_777_213, 2**24, 2**47 + 9):
        x = rng.integers(0, 2**48, size=2000, dtype=np.uint64)
        x[:3] = [0, d - 1 if d > 1 else 0, 2**48 - 1]
        q, r = numba_._divmod_exact_array(x, d)
        np.testing.assert_array_equal(q, x // np.uint64(d))
        np.testing.assert_array_equal(r, x % np.uint64(d))


@pytest.mark.parametrize("kind", ["permutation", "random", "identity"])
def test_chunks_reproduce_the_whole(kind):
    n, m = 1000, 1000 if kind == "identity" else 77
    whole = P.resolve_pairing(kind, n, m, 31)
    for backend in (numpy_, numba_):
        full = backend.pair_indices(whole)
        parts = [
            backend.pair_indices(whole.chunk(lo, min(n, lo + 130) - lo))
            for lo in range(0, n, 130)
        ]
        np.testing.assert_array_equal(np.concatenate(parts), full)
    with pytest.raises(ValueError, match=r"chunk: poses \[990, 1020\) are not inside"):
        whole.chunk(990, 30)
