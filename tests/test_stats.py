"""Distribution statistics against hand-checked values, SciPy and the NumPy oracle."""

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gpa_arrays import camera as gcamera
from gpa_arrays import stats
from gpa_arrays._backends import numba_stats, numpy_stats

# --- pose statistics ---------------------------------------------------------------


def test_pose_statistics_hand_checked(backend):
    poses = np.array(
        [
            [[0.1, 0.2], [0.5, -0.4], [-0.3, 0.6]],  # w 0.8, h 1.0 -> 0.9
            [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]],  # a point -> 0
            [[-1.0, 0.5], [1.0, 0.5], [0.0, 0.5]],  # a horizontal line -> 1
        ]
    )
    st_ = backend(stats.pose_statistics, poses)
    np.testing.assert_allclose(st_.scale, [0.9, 0.0, 1.0], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(st_.root_x, [0.1, 0.0, -1.0])
    np.testing.assert_array_equal(st_.root_y, [0.2, 0.0, 0.5])
    other_root = backend(stats.pose_statistics, poses, root=-1)
    np.testing.assert_array_equal(other_root.root_x, [-0.3, 0.0, 0.0])
    np.testing.assert_array_equal(other_root.root_y, [0.6, 0.0, 0.5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("joints", [1, 2, 17, 70])
def test_pose_statistics_backends_bit_identical(rng, kernel_backend, dtype, joints):
    poses = rng.normal(size=(3001, joints, 2)).astype(dtype)
    want = numpy_stats.pose_statistics(poses, 0)
    got = kernel_backend(stats.pose_statistics, poses)
    for k, column in enumerate(got):
        assert column.dtype == dtype
        np.testing.assert_array_equal(column, want[:, k])
    # any strides
    view = kernel_backend.xp.asfortranarray(kernel_backend.device(poses))[::2]
    a = stats.pose_statistics(poses[::2], root=joints - 1, backend="numpy")
    b = stats.pose_statistics(view, root=joints - 1, backend=kernel_backend.name)
    for x, y in zip(a, kernel_backend.host(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_numba_pose_statistics_kernel_equals_reference(rng):
    poses = rng.normal(size=(3001, 17, 2))
    want = numpy_stats.pose_statistics(poses, 0)
    np.testing.assert_array_equal(numba_stats.pose_statistics(poses, 0), want)


def test_pose_statistics_matches_gpa_scale(rng):
    # the box scale is the one GPA matches: the records of prepare_targets
    import gpa_arrays

    poses = rng.uniform(-0.7, 0.7, size=(500, 17, 2))
    targets = gpa_arrays.prepare_targets(poses, [1.5, 1.5, 0.0, 0.0])
    np.testing.assert_array_equal(stats.pose_statistics(poses).scale, targets.scale)


@pytest.mark.parametrize("camera_rows", ["one", "per-pose", "nine"])
def test_pose_statistics_of_3d_poses_through_a_camera(rng, backend, camera_rows):
    poses = rng.normal(scale=0.3, size=(200, 17, 3))
    poses[..., 2] += 4.0
    camera = np.array([1.5, 1.6, 0.02, -0.03])
    if camera_rows == "per-pose":
        camera = camera * rng.uniform(0.9, 1.1, size=(200, 4))
    elif camera_rows == "nine":
        camera = np.concatenate([camera, np.zeros(5)])
    rows = camera if camera.ndim == 1 else camera[:, None]
    direct = stats.pose_statistics(gcamera.project(poses, rows), backend="numpy")
    via = backend(stats.pose_statistics, poses, camera)
    for x, y in zip(direct, via, strict=True):
        np.testing.assert_array_equal(x, y)
    # the projection itself, by hand for one pose and joint
    f, c = camera[..., :2], camera[..., 2:4]
    if camera.ndim == 2:
        f, c = f[7], c[7]
    np.testing.assert_allclose(
        gcamera.project(poses, rows)[7, 3], f * poses[7, 3, :2] / poses[7, 3, 2] + c
    )


def test_pose_statistics_integer_and_float16_inputs():
    poses = np.array([[[0, 0], [2, 4]]], dtype=np.int32)
    st_ = stats.pose_statistics(poses)
    assert st_.scale.dtype == np.float64 and st_.scale[0] == 3.0
    st16 = stats.pose_statistics(poses.astype(np.float16))
    assert st16.scale.dtype == np.float64


@pytest.mark.parametrize(
    ("poses", "kwargs", "error", "match"),
    [
        (np.zeros((5, 17)), {}, ValueError, r"poses: expected shape \(N, J, 2\)"),
        (np.zeros((5, 0, 2)), {}, ValueError, r"J >= 1, got \(5, 0, 2\)"),
        (np.zeros((5, 17, 4)), {}, ValueError, "poses: expected shape"),
        (np.zeros((5, 17, 2)), {"root": 17}, ValueError, r"root: .*\[0, 17\)"),
        (np.zeros((5, 17, 2)), {"root": True}, TypeError, "root: .*bool"),
        (np.zeros((5, 17, 3)), {}, TypeError, "camera: required with 3D poses"),
        (
            np.zeros((5, 17, 2)),
            {"camera": [1.0, 1, 0, 0]},
            ValueError,
            "camera: only used with 3D poses",
        ),
        (
            np.ones((5, 17, 3)),
            {"camera": np.ones((4, 4))},
            ValueError,
            r"camera: expected shape .*got \(4, 4\)",
        ),
        (np.zeros((5, 17, 2), dtype=complex), {}, TypeError, "poses: expected a real"),
        (np.zeros((5, 17, 2), dtype=bool), {}, TypeError, "poses: expected a real"),
    ],
)
def test_pose_statistics_errors(poses, kwargs, error, match):
    with pytest.raises(error, match=match):
        stats.pose_statistics(poses, **kwargs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_pose_statistics_rejects_non_finite(rng, backend, bad):
    poses = rng.normal(size=(50, 17, 2))
    poses[7, 3, 1] = bad
    poses[30, 0, 0] = bad
    with pytest.raises(
        ValueError,
        match=r"poses: 2 of 50 poses have a non-finite coordinate or statistic; .*7",
    ):
        backend(stats.pose_statistics, poses)


def test_pose_statistics_does_not_modify_input(rng):
    poses = rng.normal(size=(20, 17, 2))
    before = poses.copy()
    stats.pose_statistics(poses)
    np.testing.assert_array_equal(poses, before)


# --- summary -----------------------------------------------------------------------


def test_summary_hand_checked():
    s = stats.summary([1.0, 2.0, 3.0, 4.0], quantiles=(0.0, 0.5, 1.0))
    assert s.n == 4
    assert s.mean == 2.5
    assert s.std == pytest.approx(np.sqrt(1.25), rel=1e-15)  # population sd
    assert (s.min, s.max) == (1.0, 4.0)
    assert s.quantiles == {0.0: 1.0, 0.5: 2.5, 1.0: 4.0}


def test_summary_matches_numpy_and_pose_statistics_summary(rng):
    values = rng.normal(size=1001).astype(np.float32)
    s = stats.summary(values)
    v64 = values.astype(np.float64)
    assert s.mean == pytest.approx(v64.mean(), rel=1e-14)
    assert s.std == pytest.approx(v64.std(), rel=1e-14)
    for q, v in s.quantiles.items():
        assert v == pytest.approx(np.quantile(v64, q), rel=1e-14)
    table = stats.pose_statistics(rng.normal(size=(100, 17, 2))).summary()
    assert set(table) == {"scale", "root_x", "root_y"}
    assert all(isinstance(v, stats.Summary) for v in table.values())


@pytest.mark.parametrize(
    ("values", "kwargs", "match"),
    [
        ([], {}, "values: expected at least one value"),
        ([[1.0, 2.0]], {}, "values: expected a 1-D sample"),
        ([1.0, np.nan], {}, r"values: 1 of 2 value is non-finite; first at index 1"),
        ([1.0, 2.0], {"quantiles": (1.5,)}, r"quantiles: expected levels in \[0, 1\]"),
    ],
)
def test_summary_errors(values, kwargs, match):
    with pytest.raises(ValueError, match=match):
        stats.summary(values, **kwargs)


# --- Wasserstein-1 -----------------------------------------------------------------


def test_wasserstein_hand_checked():
    # a shift moves every unit of mass by the shift
    assert stats.wasserstein([0.0, 1.0, 3.0], [5.0, 6.0, 8.0]) == 5.0
    # the same distribution at different sample sizes
    assert stats.wasserstein([0.0, 1.0], [0.0, 0.0, 1.0, 1.0]) == 0.0
    # half the mass moves by 1
    assert stats.wasserstein([0.0, 0.0], [0.0, 1.0]) == 0.5
    # one point against two: |F_a - F_b| = 1/2 on [0, 1), 1/2 on [1, 2)... by hand:
    # a = {1}, b = {0, 2}: integral = 0.5 * 1 + 0.5 * 1 = 1
    assert stats.wasserstein([1.0], [0.0, 2.0]) == 1.0


@pytest.mark.parametrize(
    ("n", "m"), [(1, 1), (1, 9), (7, 3), (1000, 1000), (5000, 777)]
)
def test_wasserstein_matches_scipy(rng, backend, n, m):
    a = rng.normal(size=n)
    b = rng.normal(0.3, 1.5, size=m)
    # ties within and across the samples
    a[::3] = np.round(a[::3], 1)
    b[::2] = np.round(b[::2], 1)
    want = scipy.stats.wasserstein_distance(a, b)
    got = backend(stats.wasserstein, a, b)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


@given(
    a=hnp.arrays(
        np.float64,
        st.integers(1, 60),
        elements=st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
    ),
    b=hnp.arrays(
        np.float64,
        st.integers(1, 60),
        elements=st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
    ),
)
def test_wasserstein_property_scipy_and_backends(backend, a, b):
    want = scipy.stats.wasserstein_distance(a, b)
    tol = 1e-12 * (1 + np.abs(np.concatenate([a, b])).max())
    assert backend(stats.wasserstein, a, b) == pytest.approx(want, abs=tol)
    # a metric: symmetric, zero on itself, a shift moves by the shift
    assert stats.wasserstein(b, a) == pytest.approx(stats.wasserstein(a, b), abs=tol)
    assert stats.wasserstein(a, a) == 0.0
    assert stats.wasserstein(a, a + 2.5) == pytest.approx(2.5, abs=tol)


def test_wasserstein_numba_merge_matches_numpy_at_scale(rng):
    a = np.sort(rng.normal(size=200_000))
    b = np.sort(rng.normal(0.1, 1.1, size=130_001))
    want = numpy_stats.wasserstein_sorted(a, b)
    assert numba_stats.wasserstein_sorted(a, b) == pytest.approx(want, rel=1e-12)


def test_wasserstein_accepts_float32_and_lists_and_keeps_inputs(rng):
    a = rng.normal(size=100).astype(np.float32)
    b = rng.normal(size=50).astype(np.float32)
    a_before, b_before = a.copy(), b.copy()
    got = stats.wasserstein(a, b)
    assert got == pytest.approx(
        scipy.stats.wasserstein_distance(a.astype(float), b.astype(float)), rel=1e-12
    )
    np.testing.assert_array_equal(a, a_before)  # not sorted in place
    np.testing.assert_array_equal(b, b_before)
    assert stats.wasserstein(list(a), list(b)) == got


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        ([], [1.0], "a: expected at least one value"),
        ([1.0], [], "b: expected at least one value"),
        ([[1.0]], [1.0], "a: expected a 1-D sample"),
        ([1.0, np.inf], [1.0], "a: 1 of 2 value is non-finite; first at index 1"),
        (
            [1.0],
            [np.nan, 0, np.nan],
            "b: 2 of 3 values are non-finite; first at index 0",
        ),
    ],
)
def test_wasserstein_errors(a, b, match):
    with pytest.raises(ValueError, match=match):
        stats.wasserstein(a, b)


def test_pose_statistics_wasserstein_table(rng):
    a = stats.pose_statistics(rng.normal(size=(300, 17, 2)))
    b = stats.pose_statistics(rng.normal(0.2, 1.0, size=(200, 17, 2)))
    table = a.wasserstein(b)
    for name in ("scale", "root_x", "root_y"):
        assert table[name] == pytest.approx(
            scipy.stats.wasserstein_distance(getattr(a, name), getattr(b, name)),
            rel=1e-12,
        )
    with pytest.raises(TypeError, match="other: expected PoseStatistics"):
        a.wasserstein(np.zeros(3))


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        stats.wasserstein([1.0], [2.0], backend="fortran")


def test_pose_statistics_project_with_distortion(rng):
    poses = rng.normal(scale=0.3, size=(40, 17, 3))
    poses[..., 2] += 4.0
    camera = np.array([1.5, 1.6, 0.02, -0.03, 0.1, -0.05, 0.01, 0.002, -0.001])
    got = stats.pose_statistics(poses, camera, root=3)
    want = stats.pose_statistics(gcamera.project(poses, camera), root=3)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_array_equal(x, y)
    pinhole = stats.pose_statistics(poses, camera[:4], root=3)
    assert not np.allclose(got.scale, pinhole.scale)


def test_pose_statistics_returns_the_callers_type(rng):
    torch = pytest.importorskip("torch")
    poses = rng.normal(size=(30, 17, 2))
    got = stats.pose_statistics(torch.from_numpy(poses), root=2)
    want = stats.pose_statistics(poses, root=2)
    for x, y in zip(got, want, strict=True):
        assert isinstance(x, torch.Tensor)
        np.testing.assert_array_equal(x.numpy(), y)
    assert stats.wasserstein(torch.from_numpy(want.scale), want.root_x) == (
        stats.wasserstein(want.scale, want.root_x)
    )


def test_pose_statistics_check_false_keeps_non_finite(rng):
    poses = rng.normal(size=(10, 17, 2))
    poses[4, 2, 0] = np.nan
    got = stats.pose_statistics(poses, check=False)
    assert np.isnan(got.scale[4]) and np.isfinite(np.delete(got.scale, 4)).all()
