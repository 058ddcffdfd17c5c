"""Statistical quality of the counter-based pairing.

Each test computes a statistic over many seeds (or one large pairing) and bounds
it at a level a uniformly random permutation passes with near certainty (p-value
floors of 1e-6, correlation bounds of six standard errors). Each statistic is
also applied to a deliberately weak pairing, a few affine maps
``(c * i + s) mod n`` that read "random" to a casual look, which it must
reject: the tests can fail.
"""

import numpy as np
import pytest
from scipy import stats

import gpa_arrays

P_FLOOR = 1e-6


def _pairings(n, m, seeds, kind="permutation"):
    """(seeds, n) target indices, one row per seed."""
    return np.stack(
        [
            gpa_arrays.pair_indices(n, m, pairing=kind, seed=s, backend="numba")
            for s in range(seeds)
        ]
    )


def _affine(n, m, seeds):
    """A weak pairing: ``(c * i + s) mod n`` folded onto ``[0, m)``.

    Only 15 distinct maps (``c in {1, 3, 5}``, shift ``s mod 5``), each with a
    linear structure: each test's statistic must reject it.
    """
    i = np.arange(n)
    rows = [((2 * (s % 3) + 1) * i + s % 5) % max(n, m) % m for s in range(seeds)]
    return np.stack(rows)


def occupancy_p(rows, m):
    """Chi-square p-value of the (source, target) pair counts over the rows.

    For a uniform pairing each source meets target ``t`` with the probability
    ``c_t / K`` over seeds, where ``c_t`` counts the points of ``[0, K)``,
    ``K = max(n, m)``, that fold onto ``t`` (``1 / m`` unless ``n > m``).
    """
    seeds, n = rows.shape
    counts = np.zeros((n, m))
    np.add.at(counts, (np.broadcast_to(np.arange(n), rows.shape), rows), 1)
    k = max(n, m)
    share = np.bincount(np.arange(k) % m, minlength=m) / k
    expected = np.broadcast_to(seeds * share, (n, m)).ravel()
    return stats.chisquare(counts.ravel(), expected).pvalue


def neighbour_p(rows, m):
    """Chi-square p-value of the targets of sources 0 and 1 jointly over rows.

    For a permutation with ``n <= m`` the pair ``(pair(0), pair(1))`` is
    uniform over the ``m (m - 1)`` ordered pairs of distinct targets.
    """
    seeds = rows.shape[0]
    counts = np.zeros((m, m))
    np.add.at(counts, (rows[:, 0], rows[:, 1]), 1)
    off = ~np.eye(m, dtype=bool)
    expected = np.full(int(off.sum()), seeds / (m * (m - 1)))
    return stats.chisquare(counts[off], expected).pvalue


def max_abs_correlation(x, y):
    """Largest of |Pearson|, |Spearman| between two index sequences."""
    return max(
        abs(stats.pearsonr(x, y).statistic), abs(stats.spearmanr(x, y).statistic)
    )


@pytest.mark.parametrize(("n", "m"), [(12, 12), (9, 30), (40, 7)])
def test_pair_occupancy_is_uniform_over_seeds(n, m):
    rows = _pairings(n, m, 4000)
    assert occupancy_p(rows, m) > P_FLOOR
    assert occupancy_p(_affine(n, m, 4000), m) < P_FLOOR


@pytest.mark.parametrize(("n", "m"), [(10, 10), (6, 16)])
def test_neighbouring_sources_get_independent_targets(n, m):
    rows = _pairings(n, m, 6000)
    assert neighbour_p(rows, m) > P_FLOOR
    assert neighbour_p(_affine(n, m, 6000), m) < P_FLOOR


@pytest.mark.parametrize(("n", "m"), [(100_000, 100_000), (100_000, 3_000)])
def test_source_and_target_indices_are_uncorrelated(n, m):
    # one large pairing: six standard errors of a correlation of n samples
    bound = 6 / np.sqrt(n)
    i = np.arange(n)
    for seed in range(3):
        j = gpa_arrays.pair_indices(n, m, seed=seed, backend="numba")
        assert max_abs_correlation(i, j) < bound
        # neighbours: target of source i against target of source i + 1
        assert max_abs_correlation(j[:-1], j[1:]) < bound
    weak = _affine(n, m, 1)[0]
    assert (
        max(max_abs_correlation(i, weak), max_abs_correlation(weak[:-1], weak[1:]))
        > bound
    )


def test_neighbouring_seeds_and_steps_are_independent():
    n = 50_000
    bound = 6 / np.sqrt(n)
    a = gpa_arrays.pair_indices(n, n, seed=1000, backend="numba")
    b = gpa_arrays.pair_indices(n, n, seed=1001, backend="numba")
    assert max_abs_correlation(a, b) < bound
    # agreements between two independent permutations: Poisson(1)
    assert (a == b).sum() < 10
    aug = gpa_arrays.GPA(
        np.zeros((n, 1, 2)) + np.linspace(-0.3, 0.3, n)[:, None, None],
        np.tile([1.0, 1.0, 0.0, 0.0], (n, 1)),
        seed=1000,
    )
    steps = [aug.pair_indices(n, step=s) for s in (0, 1)]
    assert max_abs_correlation(*steps) < bound


def test_fold_balances_every_target():
    # N > M: every target used floor(N/M) or ceil(N/M) times, for every seed
    n, m = 10_007, 97
    for seed in range(20):
        counts = np.bincount(gpa_arrays.pair_indices(n, m, seed=seed), minlength=m)
        assert counts.min() == n // m and counts.max() == -(-n // m)
