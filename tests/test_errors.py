"""Every documented error: the argument, what was expected, what came."""

import numpy as np
import pytest
from conftest import CPU_BACKENDS, make_case

import gpa_arrays
from gpa_arrays import camera, metrics, stats

S, T, C = make_case(np.random.default_rng(0), 10, 10)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (
            (S[0], T, C),
            {},
            ValueError,
            r"source_3d: expected shape \(N, J, 3\) \(poses, joints, xyz\), got \(17, 3\)",
        ),
        (
            (S[..., :2], T, C),
            {},
            ValueError,
            r"source_3d: expected shape \(N, J, 3\).*got \(10, 17, 2\)",
        ),
        ((S[:, :0], T, C), {}, ValueError, "source_3d: expected at least one joint"),
        (
            (S, T[..., :1], C),
            {},
            ValueError,
            r"target_2d: expected shape \(M, Jt, 2\).*got \(10, 17, 1\)",
        ),
        (
            (S, T.astype(complex), C),
            {},
            TypeError,
            "target_2d: expected a real floating or integer dtype, got complex128",
        ),
        ((S, T), {}, TypeError, "camera: required with a target_2d array"),
        (
            (S, T, C[:, :3]),
            {},
            ValueError,
            r"camera: expected shape \(4,\), \(9,\), \(10, 4\) or \(10, 9\) \(one row per target pose\), got \(10, 3\)",
        ),
        ((S, T, C[:5]), {}, ValueError, r"camera: expected shape .* got \(5, 4\)"),
        ((S, T, C[:5]), {"mode": "poseda"}, ValueError, r"one row per source pose"),
        (
            (S, T, C),
            {"root": 17},
            ValueError,
            r"root: expected a joint index in \[0, 17\), got 17",
        ),
        (
            (S, T, C),
            {"root": -18},
            ValueError,
            r"root: expected a joint index in \[0, 17\), got -18",
        ),
        (
            (S, T, C),
            {"root": 1.0},
            TypeError,
            "root: expected an integer joint index, got float",
        ),
        (
            (S, T, C),
            {"root": True},
            TypeError,
            "root: expected an integer joint index, got bool",
        ),
        (
            (S, T[:, :5], C),
            {"root": 7},
            ValueError,
            r"target_root: expected a joint index in \[0, 5\), got 7",
        ),
        (
            (S, T, C),
            {"target_root": 99},
            ValueError,
            r"target_root: expected a joint index in \[0, 17\), got 99",
        ),
        (
            (S, T, C),
            {"mode": "published"},
            ValueError,
            "mode: expected one of 'paired', 'poseda', got 'published'",
        ),
        (
            (S, T[:9], C[:9]),
            {"mode": "poseda"},
            ValueError,
            "mode='poseda' needs as many targets as sources, got 9 targets for 10 sources",
        ),
        (
            (S, T, C),
            {"backend": "cuda"},
            ValueError,
            "backend: expected 'auto' or one of 'numpy', 'numba', 'cupy', got 'cuda'",
        ),
        ((S, T, C), {"backend": 3}, TypeError, "backend: expected a str, got int"),
        (
            (S, T, C),
            {"out": np.empty((10, 17, 3), np.float32)},
            TypeError,
            "out: expected dtype float64, got float32",
        ),
        (
            (S, T, C),
            {"out": np.empty((10, 16, 3))},
            ValueError,
            r"out: expected shape \(10, 17, 3\), got \(10, 16, 3\)",
        ),
        (
            (S, T, C),
            {"out": [[0.0]]},
            TypeError,
            r"out: expected an array \(NumPy, CuPy, torch or another DLPack array\), got list",
        ),
        ((S, T, C), {"pairing": "identity", "mode": "paired", "seed": "x"}, None, None),
    ],
)
def test_argument_errors(args, kwargs, error, match):
    if error is None:  # identity ignores the seed entirely
        gpa_arrays.gpa(*args, **kwargs)
        return
    with pytest.raises(error, match=match):
        gpa_arrays.gpa(*args, **kwargs)


def test_out_overlap_and_readonly():
    source = S.copy()
    with pytest.raises(
        ValueError, match="out: overlaps source_3d without being the same view"
    ):
        gpa_arrays.gpa(source[1:], T[:9], C[:9], out=source[:9])
    ro = np.empty_like(S)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out: the array is read-only"):
        gpa_arrays.gpa(S, T, C, out=ro)
    # a poseda camera that shares memory with the output it would be read after
    buf = np.zeros(510 + 30)
    out = buf[:510].reshape(10, 17, 3)
    cam = buf[500:540].reshape(10, 4)
    cam[:] = C
    with pytest.raises(
        ValueError, match="out: overlaps camera, which the kernels read"
    ):
        gpa_arrays.gpa(S, T, cam, out=out, mode="poseda")


def test_targets_argument_errors():
    targets = gpa_arrays.prepare_targets(T, C, target_root=3)
    with pytest.raises(TypeError, match="camera: must be None with a Targets object"):
        gpa_arrays.gpa(S, targets, C)
    with pytest.raises(TypeError, match="does not accept a Targets object"):
        gpa_arrays.gpa(S, targets, mode="poseda")
    with pytest.raises(
        ValueError, match="target_root: the Targets were prepared with root 3, got 4"
    ):
        gpa_arrays.gpa(S, targets, target_root=4)
    gpa_arrays.gpa(S, targets, target_root=3)  # consistent: accepted
    with pytest.raises(TypeError, match="target_2d: already a Targets object"):
        gpa_arrays.prepare_targets(targets, C)
    with pytest.raises(
        TypeError, match="dtype: expected float32 or float64, got int32"
    ):
        gpa_arrays.prepare_targets(T, C, dtype=np.int32)
    with pytest.raises(
        TypeError, match="camera: a Targets object is only accepted as target_2d"
    ):
        gpa_arrays.gpa(S, T, targets)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_value_errors(backend, dtype):
    s, t, c = (a.astype(dtype) for a in (S, T, C))

    def fails(match, source=s, target=t, camera=c, **kw):
        with pytest.raises(ValueError, match=match):
            gpa_arrays.gpa(source, target, camera, seed=0, backend=backend, **kw)

    bad = s.copy()
    bad[3, 4, 2] = np.nan
    bad[7, 0, 0] = np.inf
    fails(r"source_3d: 2 of 10 poses give non-finite output .*; first at index 3", bad)
    flat = s.copy()
    flat[6, :, :2] = 0.25  # zero x and y extent
    fails(
        r"source_3d: 1 of 10 pose has zero extent in both x and y.*first at index 6",
        flat,
    )
    bt = t.copy()
    bt[2, 3, 1] = -np.inf
    fails(
        r"target_2d: 1 of 10 target has non-finite coordinates; first at index 2",
        target=bt,
    )
    dt = t.copy()
    dt[5] = 0.1
    dt[8] = 0.3
    fails(
        r"target_2d: 2 of 10 targets have a degenerate 2D box .*first at index 5",
        target=dt,
    )
    for value in (0.0, -1.5, np.inf, np.nan):
        bc = c.copy()
        bc[4, 1] = value
        fails(
            r"camera: 1 of 10 row has a focal length that is not finite and positive or a non-finite centre; first at row 4",
            camera=bc,
        )
    bc = c.copy()
    bc[9, 3] = np.nan
    fails("first at row 9", camera=bc)
    fails("first at row 9", camera=bc, mode="poseda")
    # huge values overflow: flagged rather than returned as inf
    huge = s.copy()
    huge[1, 2, 0] = np.finfo(dtype).max
    huge[1, 3, 0] = -np.finfo(dtype).max
    fails("first at index 1", huge)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_check_false(backend):
    bad = S.copy()
    bad[3, 4, 2] = np.nan
    out = gpa_arrays.gpa(bad, T, C, seed=0, check=False, backend=backend)
    assert np.isnan(out[3]).any()
    good = np.delete(np.arange(10), 3)
    ref = gpa_arrays.gpa(S, T, C, seed=0, backend=backend)
    np.testing.assert_array_equal(out[good], ref[good])
    dt = T.copy()
    dt[:] = dt[0]
    dt[:, :, :] = 0.2  # every box degenerate: depth infinite
    out = gpa_arrays.gpa(S, dt, C, seed=0, check=False, backend=backend)
    assert not np.isfinite(out).all()
    # explicit indices are range-checked even without check
    with pytest.raises(ValueError, match="pairing: 1 of 10 target index outside"):
        gpa_arrays.gpa(
            S, T, C, pairing=np.r_[np.arange(9), 10], check=False, backend=backend
        )


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_bad_index_in_parallel_chunks(backend, small_chunks):
    s, t, c = make_case(np.random.default_rng(1), 500, 20)
    idx = np.random.default_rng(2).integers(0, 20, 500)
    idx[[77, 300, 301]] = [20, -1, 10**9]
    with pytest.raises(
        ValueError,
        match=r"3 of 500 target indices outside \[0, 20\); first at position 77 \(value 20\)",
    ):
        gpa_arrays.gpa(s, t, c, pairing=idx, backend=backend)


def test_named_backend_that_cannot_load(monkeypatch):
    from gpa_arrays import _api, _backends

    monkeypatch.setitem(_backends._failed, "numba", "ImportError: no numba here")
    monkeypatch.setattr(_api, "_resolved", {})
    monkeypatch.delitem(_backends._loaded, "numba")
    with pytest.raises(
        RuntimeError,
        match="backend 'numba' is not usable here: ImportError: no numba here",
    ):
        gpa_arrays.gpa(S, T, C, backend="numba")
    # auto quietly uses the reference instead, and backends() says so
    assert gpa_arrays.backends() == ("numpy",)
    gpa_arrays.gpa(S, T, C)


def test_check_false_nonfinite_target_poisons_every_backend():
    # a NaN in a non-root joint: numpy's max would propagate it, a kernel's
    # min/max might skip it; the record is poisoned the same way everywhere
    t = T.copy()
    t[4, 7, 0] = np.nan
    t[6, 2, 1] = np.inf
    index = np.arange(10)
    results = [
        gpa_arrays.gpa(S, t, C, pairing=index, check=False, backend=b)
        for b in CPU_BACKENDS
    ]
    for r in results:
        assert np.isnan(r[[4, 6]]).all()
        assert np.isfinite(np.delete(r, [4, 6], axis=0)).all()
    np.testing.assert_array_equal(results[0], results[1])


# --- one table: every documented error of camera, metrics and stats ------------------
#
# Each row is a call that must fail, the exception type and the whole message
# (argument, what was expected, what came; for bad values the count and the first
# index). Functions that take `backend=` run the row through every backend they
# accept, with the same message required from each; the CuPy rows need a device.


def put(a, index, value):
    """A float copy of `a` with `value` at `index`."""
    a = np.array(a, dtype=float, copy=True)
    a[index] = value
    return a


_rng = np.random.default_rng(0)
P3 = _rng.normal(scale=0.3, size=(6, 5, 3)) + np.array([0.0, 0.0, 5.0])  # metres
P2 = _rng.normal(scale=0.2, size=(6, 5, 2))  # 2D poses, normalised
CAM = np.tile([1.5, 1.5, 0.0, 0.0], (6, 1))
CAM9 = np.tile([1.5, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], (6, 1))
PRED, TRUE = _rng.normal(size=(2, 4, 5, 3))
PRED17, TRUE17 = _rng.normal(size=(2, 2, 17, 3))
XY = _rng.uniform(0.0, 600.0, size=(3, 5, 2))  # pixels
W = np.array([1000.0, 800.0, 640.0])
H = np.array([1000.0, 600.0, 480.0])
K = np.array([[1e3, 0.0, 500.0], [0.0, 1e3, 400.0], [0.0, 0.0, 1.0]])
Q = [1.0, 0.0, 0.0, 0.0]
ORIGIN = [0.0, 0.0, 0.0]
X = _rng.normal(size=(4, 3))

BACKEND_ROWS = [
    pytest.param(
        camera.project,
        (P3[..., :2], CAM),
        {},
        ValueError,
        "points_3d: expected shape (..., 3) (camera-space x, y, z), got (6, 5, 2)",
        id="project/points shape",
    ),
    pytest.param(
        camera.project,
        (P3.astype(complex), CAM),
        {},
        TypeError,
        "points_3d: expected a real floating or integer dtype, got complex128",
        id="project/points dtype",
    ),
    pytest.param(
        camera.project,
        (P3, CAM[:, :3]),
        {},
        ValueError,
        "camera: expected shape (..., 4) or (..., 9) (fx, fy, cx, cy[, k1, k2, k3, p1, p2]), got (6, 3)",
        id="project/camera shape",
    ),
    pytest.param(
        camera.project,
        (P3, CAM.astype(complex)),
        {},
        TypeError,
        "camera: expected a real floating or integer dtype, got complex128",
        id="project/camera dtype",
    ),
    pytest.param(
        camera.project,
        (P3, CAM[:4]),
        {},
        ValueError,
        "camera: batch axes of camera (4, 1) do not match the leading axes of points_3d (6, 5, 3) (per-frame parameters are aligned with the leading axes)",
        id="project/camera batch",
    ),
    pytest.param(
        camera.project,
        (P3, put(CAM, (3, 0), -1.0)),
        {},
        ValueError,
        "camera: 1 of 6 row has a focal length that is not positive and finite or a non-finite centre or distortion coefficient; first at index 3",
        id="project/camera focal",
    ),
    pytest.param(
        camera.project,
        (P3, put(CAM, (3, 2), np.nan)),
        {},
        ValueError,
        "camera: 1 of 6 row has a focal length that is not positive and finite or a non-finite centre or distortion coefficient; first at index 3",
        id="project/camera centre",
    ),
    pytest.param(
        camera.project,
        (P3, put(CAM9, (1, 6), np.inf)),
        {},
        ValueError,
        "camera: 1 of 6 row has a focal length that is not positive and finite or a non-finite centre or distortion coefficient; first at index 1",
        id="project/camera distortion",
    ),
    pytest.param(
        camera.project,
        (put(P3, (2, 3, 1), np.nan), CAM),
        {},
        ValueError,
        "points_3d: 1 of 30 point has a non-finite coordinate or projection; first at index (2, 3)",
        id="project/points non-finite",
    ),
    pytest.param(
        camera.project,
        (put(P3, (4, 1, 2), 0.0), CAM),
        {},
        ValueError,
        "points_3d: 1 of 30 point lies at or behind the camera plane (z <= 0), where the projection is undefined; first at index (4, 1)",
        id="project/points behind",
    ),
    pytest.param(
        camera.project,
        (P3, CAM),
        {"out": np.empty((6, 5, 2), np.float32)},
        TypeError,
        "out: expected dtype float64, got float32",
        id="project/out dtype",
    ),
    pytest.param(
        camera.project,
        (P3, CAM),
        {"out": np.empty((6, 5, 3))},
        ValueError,
        "out: expected shape (6, 5, 2), got (6, 5, 3)",
        id="project/out shape",
    ),
    pytest.param(
        camera.project,
        (P3, CAM),
        {"out": [[0.0]]},
        TypeError,
        "out: expected an array (NumPy, CuPy, torch or another DLPack array), got list",
        id="project/out type",
    ),
    pytest.param(
        camera.project,
        (P3, CAM),
        {"check": "yes"},
        TypeError,
        "check: expected a bool, got str",
        id="project/check",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED[..., :2], TRUE[..., :2]),
        {},
        ValueError,
        "predicted: expected shape (..., J, 3) with J >= 1, got (4, 5, 2)",
        id="mpjpe/shape",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED[:, :0], TRUE[:, :0]),
        {},
        ValueError,
        "predicted: expected shape (..., J, 3) with J >= 1, got (4, 0, 3)",
        id="mpjpe/no joints",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED, TRUE[:3]),
        {},
        ValueError,
        "target: expected the shape of predicted (4, 5, 3), got (3, 5, 3)",
        id="mpjpe/shapes differ",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED.astype(complex), TRUE),
        {},
        TypeError,
        "predicted: expected a real floating or integer dtype, got complex128",
        id="mpjpe/dtype",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED, TRUE),
        {"unit": "km"},
        ValueError,
        "unit: expected one of 'm', 'cm', 'mm', got 'km'",
        id="mpjpe/unit",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED, TRUE),
        {"reduction": "sum"},
        ValueError,
        "reduction: expected one of 'mean', 'pose', 'joint', 'none', got 'sum'",
        id="mpjpe/reduction",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED, TRUE),
        {"root": 5},
        ValueError,
        "root: expected a joint index in [0, 5), got 5",
        id="mpjpe/root",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED17, TRUE17),
        {"root": "nose", "skeleton": "h36m_17"},
        ValueError,
        "root: 'nose' is not a joint of h36m_17; its joints are pelvis, r_hip, r_knee, r_foot, l_hip, l_knee, l_foot, spine, thorax, neck_nose, head, l_shoulder, l_elbow, l_wrist, r_shoulder, r_elbow, r_wrist",
        id="mpjpe/root name",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED, TRUE),
        {"root": "pelvis"},
        ValueError,
        "root: joint names need a skeleton=, got 'pelvis'",
        id="mpjpe/root name without skeleton",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED, TRUE),
        {"joints": [0, 7]},
        ValueError,
        "joints: expected a joint index in [0, 5), got 7",
        id="mpjpe/joints index",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED, TRUE),
        {"joints": []},
        ValueError,
        "joints: expected at least one joint, got an empty sequence",
        id="mpjpe/joints empty",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED, TRUE),
        {"joints": "mpi_inf_3dhp_14"},
        ValueError,
        "joints: a subset name needs a skeleton=, got 'mpi_inf_3dhp_14' (known subsets: 'all', 'mpi_inf_3dhp_14')",
        id="mpjpe/joints subset without skeleton",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED17, TRUE17),
        {"joints": "eval", "skeleton": "h36m_17"},
        ValueError,
        "joints: 'eval' is not a subset of h36m_17; known: all, mpi_inf_3dhp_14",
        id="mpjpe/joints unknown subset",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED17, TRUE17),
        {"joints": ["pelvis", "nose"], "skeleton": "h36m_17"},
        ValueError,
        "joints: 'nose' is not a joint of h36m_17; its joints are pelvis, r_hip, r_knee, r_foot, l_hip, l_knee, l_foot, spine, thorax, neck_nose, head, l_shoulder, l_elbow, l_wrist, r_shoulder, r_elbow, r_wrist",
        id="mpjpe/joints unknown name",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED, TRUE),
        {"skeleton": "h36m"},
        ValueError,
        "skeleton: 'h36m' is not known; known: h36m_17, h36m_16, mpi_inf_3dhp_17",
        id="mpjpe/skeleton unknown",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED, TRUE),
        {"skeleton": "h36m_17"},
        ValueError,
        "skeleton: h36m_17 has 17 joints, the poses have 5",
        id="mpjpe/skeleton joints",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED, TRUE),
        {"skeleton": 17},
        TypeError,
        "skeleton: expected a name or a Skeleton, got int",
        id="mpjpe/skeleton type",
    ),
    pytest.param(
        metrics.mpjpe,
        (put(PRED, (2, 1, 0), np.nan), TRUE),
        {},
        ValueError,
        "predicted, target: 1 of 4 pose has a non-finite coordinate in the scored joints; first at index 2",
        id="mpjpe/non-finite predicted",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED, put(TRUE, (3, 4, 2), np.inf)),
        {},
        ValueError,
        "predicted, target: 1 of 4 pose has a non-finite coordinate in the scored joints; first at index 3",
        id="mpjpe/non-finite target",
    ),
    pytest.param(
        metrics.mpjpe,
        (put(PRED, (3, 0, 0), np.nan).reshape(2, 2, 5, 3), TRUE.reshape(2, 2, 5, 3)),
        {},
        ValueError,
        "predicted, target: 1 of 4 pose has a non-finite coordinate in the scored joints; first at index (1, 1)",
        id="mpjpe/non-finite batch",
    ),
    pytest.param(
        metrics.mpjpe,
        (PRED, TRUE),
        {"check": "no"},
        TypeError,
        "check: expected a bool, got str",
        id="mpjpe/check",
    ),
    pytest.param(
        metrics.n_mpjpe,
        (put(PRED, (1,), 0.0), TRUE),
        {},
        ValueError,
        "predicted: 1 of 4 pose has all scored joints at one point, so the alignment scale is undefined; first at index 1",
        id="n_mpjpe/coincident",
    ),
    pytest.param(
        metrics.n_mpjpe,
        (PRED, put(TRUE, (0, 0, 1), np.nan)),
        {},
        ValueError,
        "predicted, target: 1 of 4 pose has a non-finite coordinate in the scored joints; first at index 0",
        id="n_mpjpe/non-finite",
    ),
    pytest.param(
        metrics.p_mpjpe,
        (put(PRED, (1,), 0.5), TRUE),
        {},
        ValueError,
        "predicted: 1 of 4 pose has all scored joints at one point, so the alignment scale is undefined; first at index 1",
        id="p_mpjpe/coincident",
    ),
    pytest.param(
        metrics.p_mpjpe,
        (put(PRED, (2, 1, 0), -np.inf), TRUE),
        {},
        ValueError,
        "predicted, target: 1 of 4 pose has a non-finite coordinate in the scored joints; first at index 2",
        id="p_mpjpe/non-finite",
    ),
    pytest.param(
        metrics.p_mpjpe,
        (PRED, TRUE),
        {"reduction": "max"},
        ValueError,
        "reduction: expected one of 'mean', 'pose', 'joint', 'none', got 'max'",
        id="p_mpjpe/reduction",
    ),
    pytest.param(
        metrics.pck,
        (PRED, TRUE),
        {"threshold": -1},
        ValueError,
        "threshold: expected a finite value >= 0 mm, got -1.0",
        id="pck/threshold negative",
    ),
    pytest.param(
        metrics.pck,
        (PRED, TRUE),
        {"threshold": np.inf},
        ValueError,
        "threshold: expected a finite value >= 0 mm, got inf",
        id="pck/threshold infinite",
    ),
    pytest.param(
        metrics.pck,
        (PRED, TRUE),
        {"threshold": "x"},
        TypeError,
        "threshold: expected a number of millimetres, got str",
        id="pck/threshold type",
    ),
    pytest.param(
        metrics.pck,
        (PRED, TRUE),
        {"align": "rigid"},
        ValueError,
        "align: expected one of 'none', 'scale', 'procrustes', got 'rigid'",
        id="pck/align",
    ),
    pytest.param(
        metrics.pck,
        (put(PRED, (2,), 1.0), TRUE),
        {"align": "procrustes"},
        ValueError,
        "predicted: 1 of 4 pose has all scored joints at one point, so the alignment scale is undefined; first at index 2",
        id="pck/coincident",
    ),
    pytest.param(
        metrics.pck,
        (put(PRED, (3, 4, 2), np.nan), TRUE),
        {},
        ValueError,
        "predicted, target: 1 of 4 pose has a non-finite coordinate in the scored joints; first at index 3",
        id="pck/non-finite",
    ),
    pytest.param(
        metrics.auc,
        (PRED, TRUE),
        {"thresholds": []},
        ValueError,
        "thresholds: expected a non-empty 1-D array of millimetres, got shape (0,)",
        id="auc/thresholds empty",
    ),
    pytest.param(
        metrics.auc,
        (PRED, TRUE),
        {"thresholds": [1.0, -1.0]},
        ValueError,
        "thresholds: expected a finite value >= 0 mm, got -1.0",
        id="auc/thresholds negative",
    ),
    pytest.param(
        metrics.auc,
        (PRED, TRUE),
        {"align": "affine"},
        ValueError,
        "align: expected one of 'none', 'scale', 'procrustes', got 'affine'",
        id="auc/align",
    ),
    pytest.param(
        metrics.auc,
        (PRED, put(TRUE, (1, 2, 0), np.nan)),
        {},
        ValueError,
        "predicted, target: 1 of 4 pose has a non-finite coordinate in the scored joints; first at index 1",
        id="auc/non-finite",
    ),
    pytest.param(
        metrics.procrustes,
        (PRED, TRUE[..., :2]),
        {},
        ValueError,
        "target: expected shape (..., J, 3) with J >= 1, got (4, 5, 2)",
        id="procrustes/shape",
    ),
    pytest.param(
        metrics.procrustes,
        (put(PRED, (2,), 0.1), TRUE),
        {},
        ValueError,
        "predicted: 1 of 4 pose has all scored joints at one point, so the alignment scale is undefined; first at index 2",
        id="procrustes/coincident",
    ),
    pytest.param(
        metrics.procrustes,
        (put(PRED, (2, 0, 0), np.nan).reshape(2, 2, 5, 3), TRUE.reshape(2, 2, 5, 3)),
        {},
        ValueError,
        "predicted, target: 1 of 4 pose has a non-finite coordinate in the scored joints; first at index (1, 0)",
        id="procrustes/non-finite batch",
    ),
    pytest.param(
        stats.pose_statistics,
        (P2[..., :1],),
        {},
        ValueError,
        "poses: expected shape (N, J, 2) or (N, J, 3) with J >= 1, got (6, 5, 1)",
        id="pose_statistics/shape",
    ),
    pytest.param(
        stats.pose_statistics,
        (P2.astype(complex),),
        {},
        TypeError,
        "poses: expected a real floating or integer dtype, got complex128",
        id="pose_statistics/dtype",
    ),
    pytest.param(
        stats.pose_statistics,
        (P2,),
        {"root": 9},
        ValueError,
        "root: expected a joint index in [0, 5), got 9",
        id="pose_statistics/root",
    ),
    pytest.param(
        stats.pose_statistics,
        (P2,),
        {"root": 1.0},
        TypeError,
        "root: expected an integer joint index, got float",
        id="pose_statistics/root type",
    ),
    pytest.param(
        stats.pose_statistics,
        (P2, CAM),
        {},
        ValueError,
        "camera: only used with 3D poses; got 2D poses and a camera",
        id="pose_statistics/camera with 2D",
    ),
    pytest.param(
        stats.pose_statistics,
        (P3,),
        {},
        TypeError,
        "camera: required with 3D poses (they are projected through it)",
        id="pose_statistics/camera missing",
    ),
    pytest.param(
        stats.pose_statistics,
        (P3, CAM[:4]),
        {},
        ValueError,
        "camera: expected shape (4,), (9,), (6, 4) or (6, 9) (one row per pose), got (4, 4)",
        id="pose_statistics/camera shape",
    ),
    pytest.param(
        stats.pose_statistics,
        (P3, put(CAM, (2, 1), 0.0)),
        {},
        ValueError,
        "camera: 1 of 6 row has a focal length that is not positive and finite or a non-finite centre or distortion coefficient; first at index 2",
        id="pose_statistics/camera focal",
    ),
    pytest.param(
        stats.pose_statistics,
        (P3, [1.5, np.nan, 0.0, 0.0]),
        {},
        ValueError,
        "camera: 1 of 1 row has a focal length that is not positive and finite or a non-finite centre or distortion coefficient; first at index 0",
        id="pose_statistics/camera one row",
    ),
    pytest.param(
        stats.pose_statistics,
        (put(P2, (4, 2, 1), np.nan),),
        {},
        ValueError,
        "poses: 1 of 6 pose has a non-finite coordinate or statistic; first at index 4",
        id="pose_statistics/non-finite 2D",
    ),
    pytest.param(
        stats.pose_statistics,
        (put(P3, (4, 2, 1), np.inf), CAM),
        {},
        ValueError,
        "poses: 1 of 6 pose has a non-finite coordinate or statistic; first at index 4",
        id="pose_statistics/non-finite 3D",
    ),
    pytest.param(
        stats.pose_statistics,
        (put(P3, (5, 2, 2), -1.0), CAM),
        {},
        ValueError,
        "poses: 1 of 6 pose has a joint at or behind the camera plane (z <= 0), where the projection is undefined; first at index 5",
        id="pose_statistics/behind",
    ),
    pytest.param(
        stats.wasserstein,
        (np.zeros(0), np.ones(3)),
        {},
        ValueError,
        "a: expected at least one value, got an empty sample",
        id="wasserstein/empty",
    ),
    pytest.param(
        stats.wasserstein,
        (np.ones(3), np.zeros((2, 2))),
        {},
        ValueError,
        "b: expected a 1-D sample, got shape (2, 2)",
        id="wasserstein/not 1-D",
    ),
    pytest.param(
        stats.wasserstein,
        (np.ones(3), [1.0, np.nan, np.inf]),
        {},
        ValueError,
        "b: 2 of 3 values are non-finite; first at index 1",
        id="wasserstein/non-finite",
    ),
    pytest.param(
        stats.wasserstein,
        (np.ones(3, complex), np.ones(3)),
        {},
        TypeError,
        "a: expected a real floating or integer dtype, got complex128",
        id="wasserstein/dtype",
    ),
]
HOST_ROWS = [
    pytest.param(
        camera.normalize_screen,
        (XY[..., :1], W, H),
        {},
        ValueError,
        "xy: expected shape (..., 2) (x, y in pixels), got (3, 5, 1)",
        id="normalize_screen/shape",
    ),
    pytest.param(
        camera.normalize_screen,
        (XY.astype(complex), W, H),
        {},
        TypeError,
        "xy: expected a real floating or integer dtype, got complex128",
        id="normalize_screen/dtype",
    ),
    pytest.param(
        camera.normalize_screen,
        (XY, put(W, 1, 0.0), H),
        {},
        ValueError,
        "w: expected positive, finite image sizes in pixels, got 0.0 at index 1",
        id="normalize_screen/width",
    ),
    pytest.param(
        camera.normalize_screen,
        (XY, W, put(H, 2, np.nan)),
        {},
        ValueError,
        "h: expected positive, finite image sizes in pixels, got nan at index 2",
        id="normalize_screen/height",
    ),
    pytest.param(
        camera.normalize_screen,
        (XY, -1.0, 5.0),
        {},
        ValueError,
        "w: expected positive, finite image sizes in pixels, got -1.0",
        id="normalize_screen/size scalar",
    ),
    pytest.param(
        camera.normalize_screen,
        (XY, W[:2], H[:2]),
        {},
        ValueError,
        "w, h: batch axes of w/h (2, 1) do not match the leading axes of xy (3, 5, 2) (per-frame parameters are aligned with the leading axes)",
        id="normalize_screen/batch",
    ),
    pytest.param(
        camera.normalize_screen,
        (XY, np.ones((3, 5, 1)), H),
        {},
        ValueError,
        "w: has 3 batch axes (shape (3, 5, 1)) but xy has only 2",
        id="normalize_screen/batch axes",
    ),
    pytest.param(
        camera.normalize_screen,
        (XY, W, H),
        {"rule": "height"},
        ValueError,
        "rule: expected one of 'width', 'poseda', got 'height'",
        id="normalize_screen/rule",
    ),
    pytest.param(
        camera.image_coordinates,
        (XY[..., :1], W, H),
        {},
        ValueError,
        "xy: expected shape (..., 2) (normalised x, y), got (3, 5, 1)",
        id="image_coordinates/shape",
    ),
    pytest.param(
        camera.image_coordinates,
        (XY, put(W, 1, np.inf), H),
        {},
        ValueError,
        "w: expected positive, finite image sizes in pixels, got inf at index 1",
        id="image_coordinates/width",
    ),
    pytest.param(
        camera.image_coordinates,
        (XY, W, H),
        {"rule": "x"},
        ValueError,
        "rule: expected one of 'width', 'poseda', got 'x'",
        id="image_coordinates/rule",
    ),
    pytest.param(
        camera.normalize_intrinsics,
        ([0.0, 1000.0], [500.0, 500.0], 1000.0, 1000.0),
        {},
        ValueError,
        "f_px: 1 focal length(s) not positive and finite",
        id="normalize_intrinsics/focal",
    ),
    pytest.param(
        camera.normalize_intrinsics,
        (np.array([[1e3, 1e3], [1e3, -1.0]]), np.full((2, 2), 500.0), W[:2], H[:2]),
        {},
        ValueError,
        "f_px: 1 focal length(s) not positive and finite; first at index 1",
        id="normalize_intrinsics/focal batch",
    ),
    pytest.param(
        camera.normalize_intrinsics,
        ([1e3, 1e3, 3.0], [500.0, 500.0], 1000.0, 1000.0),
        {},
        ValueError,
        "f_px: expected shape (..., 1) or (..., 2) (fx, fy in pixels, or one focal length), got (3,)",
        id="normalize_intrinsics/focal shape",
    ),
    pytest.param(
        camera.normalize_intrinsics,
        ([1e3, 1e3], [np.nan, 500.0], 1000.0, 1000.0),
        {},
        ValueError,
        "c_px: 1 non-finite principal point",
        id="normalize_intrinsics/centre",
    ),
    pytest.param(
        camera.normalize_intrinsics,
        ([1e3, 1e3], [500.0], 1000.0, 1000.0),
        {},
        ValueError,
        "c_px: expected shape (..., 2) (cx, cy in pixels), got (1,)",
        id="normalize_intrinsics/centre shape",
    ),
    pytest.param(
        camera.normalize_intrinsics,
        ([1e3, 1e3], [500.0, 500.0], 0.0, 1000.0),
        {},
        ValueError,
        "w: expected positive, finite image sizes in pixels, got 0.0",
        id="normalize_intrinsics/size",
    ),
    pytest.param(
        camera.normalize_intrinsics,
        ([1e3, 1e3], [500.0, 500.0], 1000.0, 1000.0),
        {"distortion": [0, 0, np.inf, 0, 0]},
        ValueError,
        "distortion: 1 non-finite distortion coefficients",
        id="normalize_intrinsics/distortion",
    ),
    pytest.param(
        camera.normalize_intrinsics,
        ([1e3, 1e3], [500.0, 500.0], 1000.0, 1000.0),
        {"distortion": [0, 0, 0]},
        ValueError,
        "distortion: expected shape (..., 5) (k1, k2, k3, p1, p2), got (3,)",
        id="normalize_intrinsics/distortion shape",
    ),
    pytest.param(
        camera.normalize_intrinsics,
        (np.full((3, 2), 1e3), np.full((2, 2), 500.0), W, H),
        {},
        ValueError,
        "w, h: batch axes (3,) / (3,) do not match the intrinsics' batch (3,)",
        id="normalize_intrinsics/batch",
    ),
    pytest.param(
        camera.normalize_intrinsics,
        ([1e3, 1e3], [500.0, 500.0], 1000.0, 1000.0),
        {"rule": "x"},
        ValueError,
        "rule: expected one of 'width', 'poseda', got 'x'",
        id="normalize_intrinsics/rule",
    ),
    pytest.param(
        camera.intrinsics_from_matrix,
        (np.eye(2), 1000.0, 1000.0),
        {},
        ValueError,
        "matrix: expected shape (..., 3, 3), got (2, 2)",
        id="intrinsics_from_matrix/shape",
    ),
    pytest.param(
        camera.intrinsics_from_matrix,
        (put(K, (0, 1), 1.0), 1000.0, 1000.0),
        {},
        ValueError,
        "matrix: expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew), got [[1000.0, 1.0, 500.0], [0.0, 1000.0, 400.0], [0.0, 0.0, 1.0]]",
        id="intrinsics_from_matrix/skew",
    ),
    pytest.param(
        camera.intrinsics_from_matrix,
        (np.stack([K, put(K, (2, 2), 2.0)]), W[:2], H[:2]),
        {},
        ValueError,
        "matrix: expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (no skew), got [[1000.0, 0.0, 500.0], [0.0, 1000.0, 400.0], [0.0, 0.0, 2.0]] at index 1",
        id="intrinsics_from_matrix/skew batch",
    ),
    pytest.param(
        camera.intrinsics_from_matrix,
        (put(K, (0, 0), -1e3), 1000.0, 1000.0),
        {},
        ValueError,
        "f_px: 1 focal length(s) not positive and finite",
        id="intrinsics_from_matrix/focal",
    ),
    pytest.param(
        camera.quaternion_to_matrix,
        ([1.0, 0.0, 0.0],),
        {},
        ValueError,
        "quaternion: expected shape (..., 4) (a quaternion w, x, y, z), got (3,)",
        id="quaternion_to_matrix/shape",
    ),
    pytest.param(
        camera.quaternion_to_matrix,
        (np.ones(4, complex),),
        {},
        TypeError,
        "quaternion: expected a real floating or integer dtype, got complex128",
        id="quaternion_to_matrix/dtype",
    ),
    pytest.param(
        camera.quaternion_to_matrix,
        ([2.0, 0.0, 0.0, 0.0],),
        {},
        ValueError,
        "quaternion: expected unit quaternions (w, x, y, z); 1 with norm 2",
        id="quaternion_to_matrix/norm",
    ),
    pytest.param(
        camera.quaternion_to_matrix,
        ([[1.0, 0, 0, 0], [0.0, 0, 0, 0]],),
        {},
        ValueError,
        "quaternion: expected unit quaternions (w, x, y, z); 1 with norm 0, first at index 1",
        id="quaternion_to_matrix/norm batch",
    ),
    pytest.param(
        camera.world_to_camera,
        (np.zeros((4, 2)), Q, ORIGIN),
        {},
        ValueError,
        "points: expected shape (..., 3) (x, y, z in metres), got (4, 2)",
        id="world_to_camera/points",
    ),
    pytest.param(
        camera.world_to_camera,
        (X, [1.0, 0.0, 0.0], ORIGIN),
        {},
        ValueError,
        "rotation: expected a quaternion (..., 4) (w, x, y, z) or a matrix (..., 3, 3), got shape (3,)",
        id="world_to_camera/rotation shape",
    ),
    pytest.param(
        camera.world_to_camera,
        (X, [1.0, 0.1, 0.0, 0.0], ORIGIN),
        {},
        ValueError,
        "rotation: expected unit quaternions (w, x, y, z); 1 with norm 1.00499",
        id="world_to_camera/quaternion norm",
    ),
    pytest.param(
        camera.world_to_camera,
        (X, np.diag([1.0, 1.0, -1.0]), ORIGIN),
        {},
        ValueError,
        "rotation: expected proper rotation matrices (R^T R = I, det R = 1); 1 is not",
        id="world_to_camera/reflection",
    ),
    pytest.param(
        camera.world_to_camera,
        (X, np.ones((4, 2, 4)) / 2, ORIGIN),
        {},
        ValueError,
        "rotation: has 2 batch axes (shape (4, 2, 3, 3)) but points has only 1",
        id="world_to_camera/rotation batch axes",
    ),
    pytest.param(
        camera.world_to_camera,
        (X, np.tile(Q, (3, 1)), ORIGIN),
        {},
        ValueError,
        "rotation: batch axes of rotation (3,) do not match the leading axes of points (4, 3) (per-frame parameters are aligned with the leading axes)",
        id="world_to_camera/rotation batch",
    ),
    pytest.param(
        camera.world_to_camera,
        (X, Q, [0.0, 0.0]),
        {},
        ValueError,
        "position: expected shape (..., 3) (the camera centre x, y, z in metres), got (2,)",
        id="world_to_camera/position shape",
    ),
    pytest.param(
        camera.world_to_camera,
        (X, Q, np.zeros((2, 3))),
        {},
        ValueError,
        "position: batch axes of position (2,) do not match the leading axes of points (4, 3) (per-frame parameters are aligned with the leading axes)",
        id="world_to_camera/position batch",
    ),
    pytest.param(
        camera.camera_to_world,
        (X, np.ones((3, 3)), ORIGIN),
        {},
        ValueError,
        "rotation: expected proper rotation matrices (R^T R = I, det R = 1); 1 is not",
        id="camera_to_world/rotation",
    ),
    pytest.param(
        camera.camera_to_world,
        (X, np.stack([np.eye(3), np.ones((3, 3)), 2 * np.eye(3), np.eye(3)]), ORIGIN),
        {},
        ValueError,
        "rotation: expected proper rotation matrices (R^T R = I, det R = 1); 2 are not, first at index 1",
        id="camera_to_world/rotations",
    ),
    pytest.param(
        stats.summary,
        (np.zeros(0),),
        {},
        ValueError,
        "values: expected at least one value, got an empty sample",
        id="summary/empty",
    ),
    pytest.param(
        stats.summary,
        (np.zeros((2, 2)),),
        {},
        ValueError,
        "values: expected a 1-D sample, got shape (2, 2)",
        id="summary/not 1-D",
    ),
    pytest.param(
        stats.summary,
        ([1.0, np.nan, 2.0, np.inf],),
        {},
        ValueError,
        "values: 2 of 4 values are non-finite; first at index 1",
        id="summary/non-finite",
    ),
    pytest.param(
        stats.summary,
        ([1.0, 2.0],),
        {"quantiles": (0.5, 1.5)},
        ValueError,
        "quantiles: expected levels in [0, 1], got [0.5, 1.5]",
        id="summary/quantiles",
    ),
]


BACKENDS = [*CPU_BACKENDS, pytest.param("cupy", marks=pytest.mark.gpu)]


def _on(backend, value):
    """`value` on the backend's device: NumPy arrays become CuPy arrays there."""
    if backend == "cupy" and isinstance(value, np.ndarray):
        import cupy

        return cupy.asarray(value)
    return value


def _raises(call, error, message):
    with pytest.raises(error) as caught:
        call()
    assert str(caught.value) == message


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("function", "args", "kwargs", "error", "message"), BACKEND_ROWS
)
def test_every_documented_error_through_every_backend(
    backend, function, args, kwargs, error, message
):
    if backend == "cupy" and function is stats.wasserstein:
        pytest.skip("wasserstein has no CUDA backend (backend: auto, numba, numpy)")
    args = [_on(backend, a) for a in args]
    kwargs = {name: _on(backend, value) for name, value in kwargs.items()}
    _raises(lambda: function(*args, backend=backend, **kwargs), error, message)


@pytest.mark.parametrize(("function", "args", "kwargs", "error", "message"), HOST_ROWS)
def test_every_documented_error_of_the_host_functions(
    function, args, kwargs, error, message
):
    _raises(lambda: function(*args, **kwargs), error, message)


def test_the_table_covers_every_public_function():
    tested = {p.values[0] for p in BACKEND_ROWS + HOST_ROWS}
    public = {
        getattr(module, name)
        for module in (camera, metrics, stats)
        for name in module.__all__
        if callable(getattr(module, name))
        and not isinstance(getattr(module, name), type)
    }
    assert public - tested == set()
