"""The cached call plan of ``gpa(batch, targets, seed=int, out=...)``.

The plan must be invisible: the same results and the same errors as the general
path (reached here by passing ``check``-equivalent arguments that the fast path
does not take, e.g. ``pairing`` as a list or ``seed`` as a NumPy integer).
"""

import numpy as np
import pytest

import gpa_arrays
from gpa_arrays import _api


def _inputs(rng, dtype=np.float64):
    source = rng.normal(scale=0.3, size=(64, 17, 3)) + np.array([0.0, 0.0, 5.0])
    target = rng.uniform(-0.5, 0.5, (40, 1, 2)) + rng.normal(0, 0.15, (40, 17, 2))
    camera = np.tile([1.4, 1.4, 0.0, 0.0], (40, 1))
    targets = gpa_arrays.prepare_targets(target.astype(dtype), camera.astype(dtype))
    return source.astype(dtype), targets


@pytest.fixture
def batch(rng):
    return _inputs(rng)


def _general(source, targets, **kwargs):
    """The same call through the general path (a NumPy integer seed)."""
    seed = np.uint64(kwargs.pop("seed"))
    return gpa_arrays.gpa(source, targets, seed=seed, **kwargs)


@pytest.mark.parametrize("pairing", ["permutation", "random"])
@pytest.mark.parametrize("root", [0, 3, -1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_planned_equals_general(rng, pairing, root, dtype):
    source, targets = _inputs(rng, dtype)
    _api._plans.clear()
    for seed in (0, 1, 2**64 - 1):
        want = _general(source, targets, seed=seed, pairing=pairing, root=root)
        out = np.empty_like(want)
        got = gpa_arrays.gpa(
            source, targets, seed=seed, pairing=pairing, root=root, out=out
        )
        assert got is out
        np.testing.assert_array_equal(got, want)
        fresh = gpa_arrays.gpa(source, targets, seed=seed, pairing=pairing, root=root)
        np.testing.assert_array_equal(fresh, want)
    assert _api._plans  # the fast path ran and kept its plan


def _message(call):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    return type(info.value), str(info.value)


@pytest.mark.parametrize(
    "case",
    [
        "seed_negative",
        "seed_huge",
        "out_shape",
        "out_dtype",
        "out_readonly",
        "out_overlaps",
        "root",
        "pairing_name",
        "identity_counts",
        "source_shape",
        "targets_dtype",
        "nonfinite",
    ],
)
def test_planned_errors_equal_general(batch, case):
    source, targets = batch
    kwargs = {"seed": 1}
    if case == "seed_negative":
        kwargs["seed"] = -1
    elif case == "seed_huge":
        kwargs["seed"] = 2**64
    elif case == "out_shape":
        kwargs["out"] = np.empty((3, 17, 3))
    elif case == "out_dtype":
        kwargs["out"] = np.empty(source.shape, np.float32)
    elif case == "out_readonly":
        out = np.empty(source.shape)
        out.flags.writeable = False
        kwargs["out"] = out
    elif case == "out_overlaps":
        big = np.concatenate([source, source])
        source = big[:64]
        kwargs["out"] = big[1:65]
    elif case == "root":
        kwargs["root"] = 17
    elif case == "pairing_name":
        kwargs["pairing"] = "shuffle"
    elif case == "identity_counts":
        kwargs["pairing"] = "identity"
    elif case == "source_shape":
        source = source[..., :2]
    elif case == "targets_dtype":
        source = source.astype(np.float32)
    elif case == "nonfinite":
        source = source.copy()
        source[5, 2, 1] = np.nan
    fast = _message(lambda: gpa_arrays.gpa(source, targets, **kwargs))
    # the general path: the same call with a pairing list instead of a name
    # is not planned; for the pairing cases a NumPy-typed root does it
    general_kwargs = dict(kwargs)
    general_kwargs["root"] = np.int64(kwargs.get("root", 0))
    general = _message(lambda: gpa_arrays.gpa(source, targets, **general_kwargs))
    assert fast == general


def test_plans_stay_bounded(rng):
    target = rng.uniform(-0.5, 0.5, (8, 2, 2))
    targets = gpa_arrays.prepare_targets(target, np.tile([1.0, 1.0, 0, 0], (8, 1)))
    _api._plans.clear()
    for n in range(1, 150):
        source = np.zeros((n, 2, 3)) + np.array([0.1, 0.0, 4.0])
        source[:, 1] += 0.2
        gpa_arrays.gpa(source, targets, seed=n)
    assert 0 < len(_api._plans) <= 64


def test_gpa_object_planned_equals_general(rng):
    source, targets = _inputs(rng)
    planned = gpa_arrays.GPA(targets, seed=5, root=2)
    auto, _ = _api._resolve_backend("auto")  # what "auto" is on the host
    general = gpa_arrays.GPA(targets, seed=5, root=2, backend=auto)
    assert planned._plannable and not general._plannable
    out = np.empty_like(source)
    for _ in range(3):  # consecutive steps of the stream
        want = general(source)
        np.testing.assert_array_equal(planned(source, out=out), want)
        np.testing.assert_array_equal(
            planned.pair_indices(64, step=planned.step - 1),
            general.pair_indices(64, step=general.step - 1),
        )
