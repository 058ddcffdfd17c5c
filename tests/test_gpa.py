"""gpa(): every backend against the NumPy oracle, and the oracle against loops."""

import numpy as np
import pytest
from conftest import make_case
from naive import gpa_paired, gpa_poseda

import gpa_arrays
from gpa_arrays import _config

DTYPES = [np.float32, np.float64]


def agree(backend, source, target, camera, **kwargs):
    """Run `backend` on its device; return the NumPy reference's result after
    checking that the backend's is the same, bit for bit."""
    ref = gpa_arrays.gpa(source, target, camera, backend="numpy", **kwargs)
    got = backend(gpa_arrays.gpa, source, target, camera, **kwargs)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    # bit-identical: same IEEE operations in the same order, no FMA, no FTZ
    np.testing.assert_array_equal(got, ref)
    return ref


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pairing", ["permutation", "random", "identity", "array"])
@pytest.mark.parametrize("mode", ["paired", "poseda"])
@pytest.mark.parametrize("chunks", ["default", "small"])
def test_backends_agree(rng, kernel_backend, dtype, pairing, mode, chunks, request):
    # more sources than targets and the other way round, where the mode and
    # pairing allow it; roots that are not joint 0; the default chunks, tiles
    # and blocks, and tiny ones that small inputs cross
    if chunks == "small":
        request.getfixturevalue("small_chunks")
    equal = mode == "poseda" or pairing == "identity"
    for n, m in [(203, 203)] if equal else [(203, 97), (97, 203)]:
        source, target, camera = make_case(rng, n, m, target_joints=15, dtype=dtype)
        kind = rng.integers(0, m, size=n) if pairing == "array" else pairing
        agree(kernel_backend, source, target, camera, pairing=kind, seed=5, mode=mode,
              root=5, target_root=14)  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("n", "m"), [(1, 1), (50, 7), (7, 50), (333, 333), (1000, 999)]
)
@pytest.mark.parametrize(
    "joints",
    # each joint count is a kernel specialisation of its own to compile: the
    # default run checks the skeleton's 17, CI every count
    [pytest.param(j, marks=pytest.mark.slow) for j in (2, 3, 16)] + [17],
)
def test_backends_agree_shapes(rng, kernel_backend, dtype, n, m, joints, small_chunks):
    source, target, camera = make_case(
        rng, n, m, joints=joints, target_joints=15, dtype=dtype
    )
    for pairing in ("permutation", "random"):
        agree(
            kernel_backend,
            source,
            target,
            camera,
            pairing=pairing,
            seed=1,
            root=joints - 1,
            target_root=14,
        )


@pytest.mark.slow  # the generic (joint count read at run time) kernels' compiles
@pytest.mark.parametrize("dtype", DTYPES)
def test_generic_kernels_agree(
    rng, kernel_backend, dtype, generic_kernels, small_chunks
):
    source, target, camera = make_case(
        rng, 111, 50, joints=17, target_joints=14, dtype=dtype
    )
    agree(kernel_backend, source, target, camera, seed=2, target_root=3)
    agree(kernel_backend, source, target, camera, seed=2, target_root=3,
          pairing="random")  # fmt: skip


@pytest.mark.slow  # compiles 21-joint specialised and generic kernels
def test_specialised_equals_generic(rng, monkeypatch):
    source, target, camera = make_case(rng, 64, 64, joints=21, dtype=np.float32)
    fast = gpa_arrays.gpa(source, target, camera, seed=3, backend="numba")
    monkeypatch.setattr(_config, "MAX_SPECIALIZED_JOINTS", 0)
    slow = gpa_arrays.gpa(source, target, camera, seed=3, backend="numba")
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("mode", ["paired", "poseda"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_oracle_equals_loops(rng, mode, dtype):
    n = 40
    source, target, camera = make_case(
        rng, n, n, joints=5, target_joints=6, dtype=dtype
    )
    index = gpa_arrays.pair_indices(n, n, seed=4)
    got = gpa_arrays.gpa(
        source,
        target,
        camera,
        seed=4,
        mode=mode,
        root=2,
        target_root=3,
        backend="numpy",
    )
    naive = gpa_paired if mode == "paired" else gpa_poseda
    want = naive(source, target, camera, index, 2, 3)
    np.testing.assert_array_equal(got, want)


def test_poseda_mode_by_hand(backend):
    # Two poses, two targets, a different camera per row, pairing swapped, so
    # that every camera read is distinguishable.
    source = np.array(
        [
            [[0.0, 0.0, 4.0], [0.4, 0.2, 4.0]],  # dx = 0.4, dy = 0.2
            [[1.0, 1.0, 6.0], [1.2, 1.6, 6.0]],  # dx = 0.2, dy = 0.6
        ]
    )
    target = np.array(
        [
            [
                [0.5, 0.25],
                [0.7, 0.55],
            ],  # w = 0.2, h = 0.3 -> 2s = 0.5, root (0.5, 0.25)
            [[-0.1, 0.2], [0.3, 0.4]],  # w = 0.4, h = 0.2 -> 2s = 0.6, root (-0.1, 0.2)
        ]
    )
    camera = np.array([[2.0, 3.0, 0.1, 0.05], [4.0, 5.0, -0.2, 0.3]])
    index = np.array([1, 0])
    out = backend(gpa_arrays.gpa, source, target, camera, pairing=index, mode="poseda")
    # pose 0 <- target 1; depth with ROW 0 focal: (2*0.4 + 3*0.2) / 0.6
    z0 = (2.0 * 0.4 + 3.0 * 0.2) / 0.6
    # unprojection with ROW 0 (the source index): ((-0.1 - 0.1) / 2, (0.2 - 0.05) / 3)
    root0 = np.array([z0 * (-0.1 - 0.1) / 2.0, z0 * (0.2 - 0.05) / 3.0, z0])
    # pose 1 <- target 0; depth still with row 0's focal: (2*0.2 + 3*0.6) / 0.5
    z1 = (2.0 * 0.2 + 3.0 * 0.6) / 0.5
    # unprojection with ROW 1: ((0.5 + 0.2) / 4, (0.25 - 0.3) / 5)
    root1 = np.array([z1 * (0.5 + 0.2) / 4.0, z1 * (0.25 - 0.3) / 5.0, z1])
    np.testing.assert_allclose(out[0, 0], root0, rtol=1e-15)
    np.testing.assert_allclose(out[1, 0], root1, rtol=1e-15)
    np.testing.assert_allclose(out[0, 1] - out[0, 0], [0.4, 0.2, 0.0], atol=1e-15)
    # paired mode instead uses the paired target's own camera row
    paired = backend(gpa_arrays.gpa, source, target, camera, pairing=index)
    z0p = (4.0 * 0.4 + 5.0 * 0.2) / 0.6
    np.testing.assert_allclose(
        paired[0, 0],
        [z0p * (-0.1 + 0.2) / 4.0, z0p * (0.2 - 0.3) / 5.0, z0p],
        rtol=1e-15,
    )


def test_paired_equals_poseda_for_one_camera(rng, backend):
    # with a single camera for everything the two modes coincide bit for bit
    source, target, camera = make_case(rng, 80, 80, per_target_camera=False)
    a = backend(gpa_arrays.gpa, source, target, camera, seed=6)
    b = backend(gpa_arrays.gpa, source, target, camera, seed=6, mode="poseda")
    np.testing.assert_array_equal(a, b)


def test_prepared_targets_equal_one_shot(rng, backend):
    for dtype in DTYPES:
        source, target, camera = make_case(rng, 300, 120, dtype=dtype)
        t, c = backend.device(target, camera)
        targets = gpa_arrays.prepare_targets(t, c, backend=backend.name)
        # the records live where the backend computes, and equal the reference's
        assert targets.backend == backend.name
        np.testing.assert_array_equal(
            backend.host(targets.records),
            gpa_arrays.prepare_targets(target, camera, backend="numpy").records,
        )
        a = backend(gpa_arrays.gpa, source, targets, seed=8)
        b = backend(gpa_arrays.gpa, source, target, camera, seed=8)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(
            a, gpa_arrays.gpa(source, target, camera, seed=8, backend="numpy")
        )


def test_targets_object(rng):
    _, target, camera = make_case(rng, 1, 30, target_joints=17, camera_cols=9)
    t = gpa_arrays.prepare_targets(target, camera, target_root=14)
    assert len(t) == 30 and t.root == 14 and t.n_joints == 17
    assert t.dtype == np.float64 and t.records.shape == (30, 8)
    assert "Targets(m=30" in repr(t)
    with pytest.raises(ValueError):
        t.records[0, 0] = 1.0  # read-only
    w = target[..., 0].max(1) - target[..., 0].min(1)
    h = target[..., 1].max(1) - target[..., 1].min(1)
    np.testing.assert_allclose(t.scale, (w + h) / 2, rtol=1e-15)
    np.testing.assert_array_equal(t.camera, camera[:, :4])
    np.testing.assert_allclose(
        t.root_ray[:, 0], (target[:, 14, 0] - camera[:, 2]) / camera[:, 0]
    )
    t32 = gpa_arrays.prepare_targets(target, camera, dtype=np.float32)
    assert t32.dtype == np.float32


def test_layouts_and_out(rng, backend, small_chunks):
    source, target, camera = make_case(rng, 90, 90)
    want = gpa_arrays.gpa(source, target, camera, seed=1, backend="numpy")
    xp = backend.xp
    s, t, c = backend.device(source, target, camera)
    views = {
        "fortran": xp.asfortranarray(s),
        "transposed copy": s.transpose(1, 0, 2).copy().transpose(1, 0, 2),
        "negative stride": s[::-1][::-1],
        "every other": xp.repeat(s, 2, axis=0)[::2],
        "reversed copy": s[::-1].copy()[::-1],
        "offset by one pose": xp.concatenate([s[:1], s])[1:],
    }
    for name, view in views.items():
        got = gpa_arrays.gpa(view, t, c, seed=1, backend=backend.name)
        np.testing.assert_array_equal(backend.host(got), want, err_msg=name)
    # strided sources
    got = backend(gpa_arrays.gpa, source[::2], target[:45], camera[:45], seed=1)
    np.testing.assert_array_equal(
        got,
        gpa_arrays.gpa(
            source[::2].copy(), target[:45], camera[:45], seed=1, backend="numpy"
        ),
    )
    # strided targets and cameras
    big_t, big_c = backend.device(np.repeat(target, 2, axis=0), np.repeat(camera, 2, 0))
    got = gpa_arrays.gpa(s, big_t[::2], big_c[::2], seed=1, backend=backend.name)
    np.testing.assert_array_equal(backend.host(got), want)
    # out=: fresh, in place, non-contiguous
    out = xp.empty_like(s)
    assert gpa_arrays.gpa(s, t, c, seed=1, out=out, backend=backend.name) is out
    np.testing.assert_array_equal(backend.host(out), want)
    inplace = s.copy()
    res = gpa_arrays.gpa(inplace, t, c, seed=1, out=inplace, backend=backend.name)
    assert res is inplace
    np.testing.assert_array_equal(backend.host(inplace), want)
    fout = xp.asfortranarray(xp.empty_like(s))
    gpa_arrays.gpa(s, t, c, seed=1, out=fout, backend=backend.name)
    np.testing.assert_array_equal(backend.host(fout), want)


def test_inputs_not_modified(rng, backend):
    source, target, camera = make_case(rng, 50, 50)
    arrays = backend.device(source, target, camera)
    for mode in ("paired", "poseda"):
        gpa_arrays.gpa(*arrays, seed=1, mode=mode, backend=backend.name)
    for a, b in zip(arrays, (source, target, camera), strict=True):
        np.testing.assert_array_equal(backend.host(a), b)


@pytest.mark.parametrize("cols", [4, 9])
def test_camera_shapes(rng, backend, cols):
    source, target, camera = make_case(rng, 60, 60, camera_cols=cols)
    per_row = agree(backend, source, target, camera, seed=2)
    single = agree(backend, source, target, camera[0], seed=2)
    repeated = agree(backend, source, target, np.tile(camera[0], (60, 1)), seed=2)
    np.testing.assert_array_equal(single, repeated)
    assert not np.array_equal(single, per_row)


def test_dtype_rules(rng):
    source, target, camera = make_case(rng, 20, 20)
    assert gpa_arrays.gpa(source.astype(np.float16), target, camera).dtype == np.float32
    ints = np.round(source * 1000).astype(np.int32)
    assert gpa_arrays.gpa(ints, target, camera).dtype == np.float64
    # float32 source, float64 targets: targets are rounded to float32 first
    s32 = source.astype(np.float32)
    mixed = gpa_arrays.gpa(s32, target, camera, seed=3)
    same = gpa_arrays.gpa(
        s32, target.astype(np.float32), camera.astype(np.float32), seed=3
    )
    assert mixed.dtype == np.float32
    np.testing.assert_array_equal(mixed, same)
    # non-native byte order (data read from files) computes natively
    big = gpa_arrays.gpa(source.astype(">f8"), target.astype(">f4"), camera, seed=3)
    assert big.dtype == np.float64
    np.testing.assert_array_equal(
        big, gpa_arrays.gpa(source, target.astype(np.float32), camera, seed=3)
    )
    with pytest.raises(
        TypeError,
        match="source_3d: expected a real floating or integer dtype, got complex128",
    ):
        gpa_arrays.gpa(source.astype(complex), target, camera)
    with pytest.raises(
        TypeError,
        match="source_3d: expected a real floating or integer dtype, got bool",
    ):
        gpa_arrays.gpa(source > 0, target, camera)
    t64 = gpa_arrays.prepare_targets(target, camera)
    with pytest.raises(TypeError, match="prepare them with dtype=float32"):
        gpa_arrays.gpa(s32, t64)


def test_empty_inputs(rng, backend):
    source, target, camera = make_case(rng, 0, 5)
    out = backend(gpa_arrays.gpa, source, target, camera)
    assert out.shape == (0, 17, 3)
    source, target, camera = make_case(rng, 6, 6)
    for pairing in ("permutation", np.zeros(6, dtype=np.int64)):
        with pytest.raises(ValueError, match="6 sources need at least one target"):
            backend(gpa_arrays.gpa, source, target[:0], camera[:0], pairing=pairing)
    # the backend is still usable (on a device: no illegal address poisoned
    # the context)
    np.testing.assert_array_equal(
        backend(gpa_arrays.gpa, source, target, camera, seed=1),
        gpa_arrays.gpa(source, target, camera, seed=1, backend="numpy"),
    )


def test_value_errors_and_check_false(rng, backend):
    source, target, camera = make_case(rng, 10, 10)
    bad = source.copy()
    bad[3, 4, 2] = np.nan
    with pytest.raises(
        ValueError, match=r"1 of 10 pose gives non-finite output .*index 3"
    ):
        backend(gpa_arrays.gpa, bad, target, camera, seed=0)
    out = backend(gpa_arrays.gpa, bad, target, camera, seed=0, check=False)
    assert np.isnan(out[3, 4, 2]) and np.isnan(out).sum() == 1
    index = np.arange(10)
    index[7] = 10
    with pytest.raises(ValueError, match=r"position 7 \(value 10\)"):
        backend(gpa_arrays.gpa, source, target, camera, pairing=index, check=False)


@pytest.mark.parametrize(
    ("n", "m"), [(1, 1), (1000, 1000), (1001, 1000), (13, 1000), (65537, 65537)]
)
def test_pair_indices_agree(kernel_backend, n, m):
    for kind in ("permutation", "random"):
        want = gpa_arrays.pair_indices(n, m, pairing=kind, seed=2**64 - 1)
        got = kernel_backend(gpa_arrays.pair_indices, n, m, pairing=kind,
                             seed=2**64 - 1)  # fmt: skip
        np.testing.assert_array_equal(got, want)


def test_list_inputs(rng):
    source, target, camera = make_case(rng, 3, 3)
    got = gpa_arrays.gpa(
        source.tolist(), target.tolist(), camera.tolist(), pairing=[2, 0, 1]
    )
    np.testing.assert_array_equal(
        got, gpa_arrays.gpa(source, target, camera, pairing=np.array([2, 0, 1]))
    )


def test_seed_reproducibility_and_none(rng):
    source, target, camera = make_case(rng, 100, 100)
    a = gpa_arrays.gpa(source, target, camera, seed=11)
    np.testing.assert_array_equal(a, gpa_arrays.gpa(source, target, camera, seed=11))
    b = gpa_arrays.gpa(source, target, camera)
    c = gpa_arrays.gpa(source, target, camera)
    assert not np.array_equal(b, c)
    # gpa pairs exactly as pair_indices says
    idx = gpa_arrays.pair_indices(100, 100, seed=11)
    np.testing.assert_array_equal(
        a, gpa_arrays.gpa(source, target, camera, pairing=idx)
    )


def test_fresh_pairing_changes_only_position(rng):
    source, target, camera = make_case(rng, 30, 30)
    a = gpa_arrays.gpa(source, target, camera, seed=1)
    rel = a - a[:, :1]
    np.testing.assert_allclose(rel, source - source[:, :1], atol=1e-12)


@pytest.mark.parametrize("kind", ["permutation", "random", "array"])
def test_chunked_kernel_calls_reproduce_the_whole(rng, kind, small_chunks):
    # what scale-out builds on: a block of poses aligned with its global offset
    from gpa_arrays import _pairing
    from gpa_arrays._backends import numba_, numpy_

    n, m = 500, 64
    source, target, camera = make_case(rng, n, m)
    pairing = rng.integers(0, m, n) if kind == "array" else kind
    whole = _pairing.resolve_pairing(pairing, n, m, 17)
    for backend in (numpy_, numba_):
        records, _ = backend.prepare_records(target, camera, 0)
        full = np.empty_like(source)
        backend.gpa_records(source, records, full, 0, whole)
        parts = []
        for lo in range(0, n, 111):
            count = min(n, lo + 111) - lo
            part = np.empty_like(source[lo : lo + count])
            backend.gpa_records(
                source[lo : lo + count], records, part, 0, whole.chunk(lo, count)
            )
            parts.append(part)
        np.testing.assert_array_equal(np.concatenate(parts), full)
