"""gpa_arrays.metrics: hand-checked values, the SVD oracle, invariances, backends."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from naive import p_mpjpe_pose

from gpa_arrays import metrics
from gpa_arrays.camera import quaternion_to_matrix

ERROR_METRICS = [metrics.mpjpe, metrics.n_mpjpe, metrics.p_mpjpe]


def random_rotations(rng, n):
    q = rng.normal(size=(n, 4))
    return quaternion_to_matrix(q / np.linalg.norm(q, axis=1, keepdims=True))


def same_as_twin(backend, got, metric, *args, **kwargs):
    """On a device, `got` equals the Numba kernels' result bit for bit: the
    CUDA kernels do their float64 operations in the same order (the NumPy
    reference fits by SVD, so it agrees to a tolerance only)."""
    if backend.on_device:
        twin = metric(*args, backend="numba", **kwargs)
        if isinstance(twin, tuple):
            for a, b in zip(got, twin, strict=True):
                np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_array_equal(got, twin)


def make_pair(rng, n, joints=17, noise=0.04):
    """Targets ~0.3 m poses; predictions rotated, scaled, shifted and noisy."""
    target = rng.normal(scale=0.3, size=(n, joints, 3))
    rotation = random_rotations(rng, n)
    predicted = 0.9 * np.einsum("nab,nkb->nka", rotation, target)
    predicted += rng.normal(scale=noise, size=predicted.shape)
    predicted += rng.normal(size=(n, 1, 3))
    return predicted, target


# --- hand-checkable -------------------------------------------------------------------


def test_mpjpe_by_hand(backend):
    t = np.zeros((2, 2, 3))
    p = np.array(
        [[[0.003, 0.004, 0.0], [0.0, 0.0, 0.010]], [[0.0, 0.0, 0.0], [0.0, 0.02, 0.0]]]
    )
    assert backend(metrics.mpjpe, p, t) == pytest.approx(8.75, rel=1e-14)
    np.testing.assert_allclose(
        backend(metrics.mpjpe, p, t, reduction="none"),
        [[5, 10], [0, 20]],
        rtol=1e-14,
    )
    np.testing.assert_allclose(
        backend(metrics.mpjpe, p, t, reduction="pose"), [7.5, 10], rtol=1e-14
    )
    np.testing.assert_allclose(
        backend(metrics.mpjpe, p, t, reduction="joint"), [2.5, 15], rtol=1e-14
    )
    # units: the same poses in millimetres and centimetres
    assert backend(metrics.mpjpe, p * 1000, t, unit="mm") == pytest.approx(8.75)
    assert backend(metrics.mpjpe, p * 100, t, unit="cm") == pytest.approx(8.75)
    # root: translating both poses by their root removes the offset
    shifted = p + np.full(3, 0.5)
    assert backend(metrics.mpjpe, shifted, t, root=0) == pytest.approx(
        np.mean([0, np.hypot(np.hypot(0.003, 0.004), 0.01) * 1000, 0, 20])
    )


def test_n_mpjpe_by_hand():
    t = np.array([[[1.0, 0, 0], [0, 1.0, 0]]])
    p = np.array([[[2.0, 0, 0], [0, 1.0, 0]]])
    # scale = (2 + 1) / (4 + 1) = 0.6: errors |1.2 - 1| and |0.6 - 1| metres
    assert metrics.n_mpjpe(p, t) == pytest.approx((200 + 400) / 2, rel=1e-13)


def test_pck_and_auc_by_hand(backend):
    t = np.zeros((1, 5, 3))
    offsets = np.array([0.0, 0.1, 0.14999, 0.15, 0.2])  # metres along x
    p = t.copy()
    p[0, :, 0] = offsets
    # strictly below 150 mm: 0, 100, 149.99 mm
    assert backend(metrics.pck, p, t) == pytest.approx(60.0)
    np.testing.assert_array_equal(
        backend(metrics.pck, p, t, reduction="none"),
        [[True, True, True, False, False]],
    )
    assert backend(metrics.pck, p, t, threshold=200.0001) == pytest.approx(100.0)
    # AUC: thresholds 0, 5, ..., 150 strictly above each error
    above = np.array([30, 10, 1, 0, 0])
    np.testing.assert_allclose(
        backend(metrics.auc, p, t, reduction="none")[0],
        above * 100 / 31,
        rtol=1e-14,
    )
    assert backend(metrics.auc, p, t) == pytest.approx(above.mean() * 100 / 31)
    assert len(metrics.AUC_THRESHOLDS) == 31 and metrics.AUC_THRESHOLDS[-1] == 150
    # perfect predictions: PCK 100, AUC 30/31 (nothing is below threshold 0)
    assert backend(metrics.pck, t, t) == 100.0
    assert backend(metrics.auc, t, t) == pytest.approx(3000 / 31)


# --- the oracle -----------------------------------------------------------------------


def test_p_mpjpe_against_textbook_loop(rng):
    predicted, target = make_pair(rng, 40)
    # a mirrored prediction too: the reflection must be removed, not used
    predicted[5] = target[5] * [-1, 1, 1]
    got = metrics.p_mpjpe(predicted, target, reduction="pose", backend="numpy")
    want = [p_mpjpe_pose(predicted[i], target[i]) * 1000 for i in range(40)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[5] > 50


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("metric", ERROR_METRICS)
def test_backends_agree(rng, kernel_backend, dtype, metric, small_chunks):
    predicted, target = make_pair(rng, 301)
    predicted[7] = rng.normal(size=(17, 1)) * rng.normal(size=(1, 3))  # collinear
    predicted, target = predicted.astype(dtype), target.astype(dtype)
    kwargs = {} if metric is metrics.p_mpjpe else {"root": 0}
    want = metric(predicted, target, reduction="none", backend="numpy", **kwargs)
    got = kernel_backend(metric, predicted, target, reduction="none", **kwargs)
    # same float64 arithmetic up to association; Procrustes by different
    # algorithms (SVD against Horn's quaternion): 1e-10 relative to the errors
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * want.mean())
    same_as_twin(kernel_backend, got, metric, predicted, target, reduction="none",
                 **kwargs)  # fmt: skip
    mean = kernel_backend(metric, predicted, target, **kwargs)
    assert isinstance(mean, float)
    assert mean == pytest.approx(metric(predicted, target, **kwargs), rel=1e-10)


@pytest.mark.parametrize(
    ("metric", "kwargs"),
    [(metrics.pck, {"root": 0}), (metrics.auc, {"root": 0, "align": "procrustes"})],
)
def test_backends_agree_on_pck_and_auc(
    rng, kernel_backend, metric, kwargs, small_chunks
):
    predicted, target = make_pair(rng, 301, noise=0.06)
    want = metric(predicted, target, reduction="none", backend="numpy", **kwargs)
    got = kernel_backend(metric, predicted, target, reduction="none", **kwargs)
    assert got.dtype == want.dtype
    # counts of errors under thresholds: no error lies within 1e-10 of one
    np.testing.assert_array_equal(got, want)
    same_as_twin(kernel_backend, got, metric, predicted, target, reduction="none",
                 **kwargs)  # fmt: skip


@pytest.mark.slow  # mixed-dtype kernels of their own to compile
def test_mixed_dtypes_agree(rng, kernel_backend):
    target = rng.normal(scale=0.3, size=(80, 17, 3))
    predicted = 0.9 * target + rng.normal(scale=0.03, size=target.shape)
    for p_dtype, t_dtype in ((np.float32, np.float64), (np.float64, np.float32)):
        p, t = predicted.astype(p_dtype), target.astype(t_dtype)
        for metric in ERROR_METRICS:
            want = metric(p, t, reduction="none", backend="numpy")
            got = kernel_backend(metric, p, t, reduction="none")
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * want.mean())
            same_as_twin(kernel_backend, got, metric, p, t, reduction="none")


def test_reductions_and_leading_axes(rng):
    predicted, target = make_pair(rng, 24)
    p = predicted.reshape(4, 6, 17, 3)
    t = target.reshape(4, 6, 17, 3)
    for metric in ERROR_METRICS:
        none = metric(p, t, reduction="none")
        assert none.shape == (4, 6, 17)
        np.testing.assert_allclose(metric(p, t, reduction="pose"), none.mean(-1))
        np.testing.assert_allclose(
            metric(p, t, reduction="joint"), none.reshape(-1, 17).mean(0)
        )
        assert metric(p, t) == pytest.approx(none.mean())
        np.testing.assert_allclose(
            none.reshape(24, 17), metric(predicted, target, reduction="none")
        )
    assert metrics.pck(p, t, reduction="pose").shape == (4, 6)
    assert metrics.auc(p, t, reduction="joint").shape == (17,)


def test_joint_subsets(rng):
    predicted, target = make_pair(rng, 30)
    full = metrics.mpjpe(predicted, target, reduction="none")
    sub = metrics.mpjpe(
        predicted,
        target,
        joints="mpi_inf_3dhp_14",
        skeleton="h36m_17",
        reduction="none",
    )
    keep = [k for k in range(17) if k not in (0, 7, 9)]
    np.testing.assert_array_equal(sub, full[:, keep])
    by_name = metrics.mpjpe(
        predicted,
        target,
        joints=["l_wrist", "r_wrist"],
        skeleton="h36m_17",
        reduction="none",
    )
    np.testing.assert_array_equal(by_name, full[:, [13, 16]])
    np.testing.assert_array_equal(
        metrics.mpjpe(predicted, target, joints=[13, -1], reduction="none"),
        full[:, [13, 16]],
    )
    # fits use the scored joints only
    p14 = metrics.p_mpjpe(
        predicted,
        target,
        joints="mpi_inf_3dhp_14",
        skeleton="h36m_17",
        reduction="pose",
    )
    np.testing.assert_allclose(
        p14, metrics.p_mpjpe(predicted[:, keep], target[:, keep], reduction="pose")
    )
    # root by name
    np.testing.assert_array_equal(
        metrics.mpjpe(predicted, target, root="pelvis", skeleton="h36m_17"),
        metrics.mpjpe(predicted, target, root=0),
    )


# --- invariances ----------------------------------------------------------------------


@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.01, 100.0))
def test_p_mpjpe_similarity_invariance(backend, seed, scale):
    rng = np.random.default_rng(seed)
    predicted, target = make_pair(rng, 8)
    rotation = random_rotations(rng, 1)[0]
    moved = scale * predicted @ rotation.T + rng.normal(scale=10.0, size=3)
    a = backend(metrics.p_mpjpe, predicted, target, reduction="pose")
    b = backend(metrics.p_mpjpe, moved, target, reduction="pose")
    np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9)


@given(seed=st.integers(0, 2**32 - 1))
def test_exact_similarity_copies_score_zero(backend, seed):
    rng = np.random.default_rng(seed)
    target = rng.normal(scale=0.3, size=(5, 17, 3))
    rotation = random_rotations(rng, 5)
    predicted = 2.5 * np.einsum("nab,nkb->nka", rotation, target) + 3.0
    assert backend(metrics.p_mpjpe, predicted, target) < 1e-9
    # a mirror image is not a similarity (det = -1): it cannot be aligned away
    mirrored = predicted * [1, 1, -1]
    assert backend(metrics.p_mpjpe, mirrored, target, reduction="pose").min() > 1


def test_n_mpjpe_and_mpjpe_invariances(rng):
    predicted, target = make_pair(rng, 20)
    a = metrics.n_mpjpe(predicted, target, root=0, reduction="pose")
    np.testing.assert_allclose(
        metrics.n_mpjpe(3.0 * predicted, target, root=0, reduction="pose"),
        a,
        rtol=1e-12,
    )
    shift = rng.normal(size=(20, 1, 3))
    np.testing.assert_allclose(
        metrics.mpjpe(predicted + shift, target + shift, root=0),
        metrics.mpjpe(predicted, target, root=0),
        rtol=1e-12,
    )
    # P-MPJPE <= N-MPJPE <= MPJPE on root-relative, similarly oriented poses
    p = target + rng.normal(scale=0.05, size=target.shape)
    assert metrics.p_mpjpe(p, target) <= metrics.n_mpjpe(p, target) + 1e-9
    assert metrics.n_mpjpe(p, target) <= metrics.mpjpe(p, target) + 1e-9


def test_degenerate_rotation_falls_back(rng, kernel_backend):
    # collinear predictions: the rotation about their line is free, the
    # eigenvalue of Horn's matrix repeats, and the kernel takes the Jacobi path;
    # every optimal rotation gives the same errors
    target = rng.normal(scale=0.3, size=(50, 17, 3))
    line = rng.normal(size=(50, 1, 3))
    predicted = rng.normal(size=(50, 17, 1)) * line
    for metric in (metrics.p_mpjpe,):
        want = metric(predicted, target, reduction="none", backend="numpy")
        got = kernel_backend(metric, predicted, target, reduction="none")
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_horn_quaternion_fallback_is_optimal(rng):
    from gpa_arrays._backends import numba_

    a = np.empty((4, 4))
    v = np.empty((4, 4))
    for case in range(20):
        left = rng.normal(size=(9, 3))
        if case % 2:
            left = rng.normal(size=(9, 1)) * rng.normal(size=3)  # collinear
        right = rng.normal(size=(9, 3))
        left -= left.mean(0)
        right -= right.mean(0)
        s = left.T @ right
        bound = np.sqrt((left**2).sum() * (right**2).sum())
        q = np.array(numba_._horn_quaternion(s, bound, a, v))
        r = quaternion_to_matrix(q / np.linalg.norm(q))
        sigma = np.linalg.svd(s, compute_uv=False)
        det = np.sign(np.linalg.det(s))
        best = sigma[0] + sigma[1] + det * sigma[2]
        np.testing.assert_allclose(np.trace(r @ s), best, rtol=1e-12, atol=1e-12)


def test_procrustes_alignment(rng, backend):
    target = rng.normal(scale=0.3, size=(10, 17, 3))
    rotation = random_rotations(rng, 10)
    predicted = 0.5 * np.einsum("nab,nkb->nka", rotation, target) - 2.0
    found = backend(metrics.procrustes, predicted, target)
    aligned, scale, rot, shift = found
    np.testing.assert_allclose(aligned, target, atol=1e-12)
    np.testing.assert_allclose(scale, 2.0, rtol=1e-12)
    np.testing.assert_allclose(rot, np.swapaxes(rotation, 1, 2), atol=1e-12)
    np.testing.assert_allclose(
        aligned,
        scale[:, None, None] * np.einsum("nab,nkb->nka", rot, predicted)
        + shift[:, None],
        atol=1e-12,
    )
    same_as_twin(backend, found, metrics.procrustes, predicted, target)


# --- errors ---------------------------------------------------------------------------


def test_metric_errors(rng):
    p, t = make_pair(rng, 4)
    with pytest.raises(ValueError, match=r"target: expected the shape of predicted"):
        metrics.mpjpe(p, t[:3])
    with pytest.raises(ValueError, match=r"predicted: expected shape \(\.\.\., J, 3\)"):
        metrics.mpjpe(p[..., :2], t[..., :2])
    with pytest.raises(ValueError, match="unit: expected one of 'm', 'cm', 'mm'"):
        metrics.mpjpe(p, t, unit="inch")
    with pytest.raises(ValueError, match="reduction: expected one of"):
        metrics.p_mpjpe(p, t, reduction="sum")
    with pytest.raises(ValueError, match="align: expected one of"):
        metrics.pck(p, t, align="rigid")
    with pytest.raises(ValueError, match="joints: a subset name needs a skeleton="):
        metrics.mpjpe(p, t, joints="mpi_inf_3dhp_14")
    with pytest.raises(
        ValueError, match="skeleton: h36m_16 has 16 joints, the poses have 17"
    ):
        metrics.mpjpe(p, t, skeleton="h36m_16")
    with pytest.raises(
        ValueError, match=r"joints: expected a joint index in \[0, 17\)"
    ):
        metrics.mpjpe(p, t, joints=[17])
    with pytest.raises(ValueError, match="root: joint names need a skeleton="):
        metrics.mpjpe(p, t, root="pelvis")
    with pytest.raises(ValueError, match="threshold: expected a finite value >= 0"):
        metrics.pck(p, t, threshold=-1)
    with pytest.raises(ValueError, match="thresholds: expected a non-empty 1-D"):
        metrics.auc(p, t, thresholds=[])


def test_metric_value_errors(rng, backend):
    p, t = make_pair(rng, 4)
    bad = p.copy()
    bad[2, 5, 1] = np.nan
    with pytest.raises(
        ValueError,
        match=r"1 of 4 pose has a non-finite coordinate .* first at index 2",
    ):
        backend(metrics.mpjpe, bad, t)
    # a joint outside the scored subset does not matter
    assert np.isfinite(backend(metrics.mpjpe, bad, t, joints=[0, 1]))
    flat = p.copy()
    flat[3] = 1.0
    for metric in (metrics.p_mpjpe, metrics.n_mpjpe):
        kwargs = {} if metric is metrics.p_mpjpe else {"root": 0}
        with pytest.raises(
            ValueError,
            match=r"1 of 4 pose has all scored joints at one point.* index 3",
        ):
            backend(metric, flat, t, **kwargs)
