"""Every documented error: the argument, what was expected, what came."""

import numpy as np
import pytest
from conftest import CPU_BACKENDS, make_case

import gpa_arrays

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
