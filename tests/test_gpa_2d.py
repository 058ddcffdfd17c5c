"""gpa(return_2d=True) and gpa(depth="perspective")."""

import numpy as np
import pytest
from conftest import make_case
from hypothesis import given
from hypothesis import strategies as st
from naive import perspective_depth_bisection, projected_box_scale

import gpa_arrays
from gpa_arrays import camera as cam_module

DTYPES = [np.float32, np.float64]
slow = pytest.mark.slow


def sweep(names, combos, default):
    """`combos` as parameters, those outside `default` marked slow: every
    kernel specialisation (dtype, camera width, depth, chunking) costs a Numba
    compile, so the default run checks a diagonal and CI the whole sweep."""
    return pytest.mark.parametrize(
        names,
        [pytest.param(*c, marks=() if c in default else slow) for c in combos],
    )


def centred_case(rng, n, m, joints=17, dtype=np.float64, camera_cols=4, spread=0.6):
    """Poses whose root is inside the body (the joint mean), so that a joint,
    not the root, is nearest to the camera and a perspective depth exists."""
    source, target, camera = make_case(
        rng, n, m, joints=joints, dtype=np.float64, camera_cols=camera_cols
    )
    source[:, 0] = source[:, 1:].mean(axis=1)
    target = rng.uniform(-spread, spread, size=target.shape)
    return source.astype(dtype), target.astype(dtype), camera.astype(dtype)


def pinhole_box_scale(poses, camera):
    """Box scale of the unclamped pinhole projection, one camera row per pose."""
    f = camera[:, None, :2]
    c = camera[:, None, 2:4]
    return box_scale(f * poses[..., :2] / poses[..., 2:] + c)


def pad_joints(poses, joints):
    """`poses` with copies of their last joint up to `joints` joints: a copy
    changes no extent, box, depth or nearest joint, so the case is the same
    with the skeleton's joint count (whose kernels the suite compiles anyway)."""
    if joints is None:
        return poses
    extra = np.repeat(poses[..., -1:, :], joints - poses.shape[-2], axis=-2)
    return np.concatenate([poses, extra], axis=-2)


# the by-hand cases below with the skeleton's 17 joints in the default run, and
# with their own few joints (kernels of their own to compile) in CI
HAND_JOINTS = pytest.mark.parametrize(
    "joints", [17, pytest.param(None, marks=slow, id="own")]
)


def box_scale(points_2d):
    w = points_2d[..., 0].max(-1) - points_2d[..., 0].min(-1)
    h = points_2d[..., 1].max(-1) - points_2d[..., 1].min(-1)
    return (w + h) / 2


# --- return_2d ------------------------------------------------------------------------


@sweep(
    ("dtype", "depth", "cols"),
    # float32 perspective placement is covered by the backend agreement tests;
    # each combination here is a kernel specialisation to compile
    [
        (dtype, depth, cols)
        for dtype, depth in [
            (np.float32, "weak"),
            (np.float64, "weak"),
            (np.float64, "perspective"),
        ]
        for cols in (4, 9)
    ],
    default=[(np.float64, "perspective", 4)],
)
def test_return_2d_equals_gpa_then_project(
    rng, backend, dtype, cols, depth, small_chunks
):
    n, m = 157, 61
    source, target, camera = centred_case(rng, n, m, dtype=dtype, camera_cols=cols)
    index = gpa_arrays.pair_indices(n, m, seed=3)
    kw = dict(seed=3, depth=depth, check=False)
    aligned, projected = backend(
        gpa_arrays.gpa, source, target, camera, return_2d=True, **kw
    )
    assert projected.shape == (n, 17, 2) and projected.dtype == dtype
    np.testing.assert_array_equal(
        aligned, backend(gpa_arrays.gpa, source, target, camera, **kw)
    )
    # one fused pass, the same arithmetic as the separate projection
    want = backend(cam_module.project, aligned, camera[index], check=False)
    np.testing.assert_array_equal(projected, want)
    # prepared targets carry the distortion coefficients
    t, c = backend.device(target, camera)
    targets = gpa_arrays.prepare_targets(t, c, backend=backend.name)
    assert (targets.distortion is None) == (cols == 4)
    again = backend(gpa_arrays.gpa, source, targets, return_2d=True, **kw)
    np.testing.assert_array_equal(again[0], aligned)
    np.testing.assert_array_equal(again[1], projected)


@sweep(
    ("dtype", "cols", "mode", "depth", "chunks"),
    [
        (dtype, cols, mode, depth, chunks)
        for dtype in DTYPES
        for cols in (4, 9)
        for mode, depth in [
            ("paired", "weak"),
            ("paired", "perspective"),
            ("poseda", "weak"),
        ]
        for chunks in ("default", "small")
    ],
    default=[
        (np.float64, 9, "paired", "weak", "default"),
        (np.float64, 4, "paired", "perspective", "small"),
        (np.float32, 4, "paired", "weak", "small"),
    ],
)
def test_return_2d_backends_bit_identical(
    rng, kernel_backend, dtype, cols, mode, depth, chunks, request
):
    if chunks == "small":  # tiny chunks, tiles and blocks that 203 poses cross
        request.getfixturevalue("small_chunks")
    n = 203
    case = centred_case if depth == "perspective" else make_case
    source, target, camera = case(rng, n, n, dtype=dtype, camera_cols=cols)
    kw = dict(seed=5, mode=mode, depth=depth, return_2d=True, check=False)
    a = gpa_arrays.gpa(source, target, camera, backend="numpy", **kw)
    b = kernel_backend(gpa_arrays.gpa, source, target, camera, **kw)
    # bit-identical: placement and projection are the same IEEE operations in
    # the same order, and so is the float64 depth solve (no FMA, correctly
    # rounded division); its documented contract is the tolerance only
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    if mode == "paired":
        # prepared targets, and out= pairs (a Fortran-ordered 2D one)
        xp = kernel_backend.xp
        s, t, c = kernel_backend.device(source, target, camera)
        targets = gpa_arrays.prepare_targets(t, c, backend=kernel_backend.name)
        assert (targets.distortion is None) == (cols == 4)
        out = (xp.empty_like(s), xp.asfortranarray(xp.empty((n, 17, 2), dtype)))
        again = gpa_arrays.gpa(
            s, targets, seed=5, depth=depth, return_2d=True, out=out,
            backend=kernel_backend.name,
        )  # fmt: skip
        assert again[0] is out[0] and again[1] is out[1]
        np.testing.assert_array_equal(kernel_backend.host(out[0]), a[0])
        np.testing.assert_array_equal(kernel_backend.host(out[1]), a[1])


def test_return_2d_root_lands_on_target_root(rng, backend):
    source, target, camera = centred_case(rng, 300, 300)
    index = gpa_arrays.pair_indices(300, 300, seed=1)
    for depth in ("weak", "perspective"):
        _, projected = backend(
            gpa_arrays.gpa, source, target, camera, seed=1, depth=depth,
            return_2d=True, check=False,
        )  # fmt: skip
        np.testing.assert_allclose(projected[:, 0], target[index, 0], atol=1e-14)


@pytest.mark.parametrize("cols", [4, 9])
def test_return_2d_poseda_uses_camera_row_i(rng, backend, cols):
    source, target, camera = make_case(rng, 50, 50, camera_cols=cols)
    aligned, projected = backend(
        gpa_arrays.gpa, source, target, camera, seed=2, mode="poseda", return_2d=True,
        check=False,
    )  # fmt: skip
    np.testing.assert_array_equal(
        projected, cam_module.project(aligned, camera, check=False)
    )
    if cols == 4:  # pinhole: the root lands on the paired target's root
        index = gpa_arrays.pair_indices(50, 50, seed=2)
        np.testing.assert_allclose(projected[:, 0], target[index, 0], atol=1e-14)


def test_return_2d_out_pairs(rng, backend):
    source, target, camera = make_case(rng, 40, 40)
    want = gpa_arrays.gpa(
        source, target, camera, seed=1, return_2d=True, check=False, backend="numpy"
    )
    xp = backend.xp
    s, t, c = backend.device(source, target, camera)
    kw = dict(seed=1, return_2d=True, check=False, backend=backend.name)
    out3, out2 = xp.empty_like(s), xp.empty((40, 17, 2))
    got = gpa_arrays.gpa(s, t, c, out=(out3, out2), **kw)
    assert got[0] is out3 and got[1] is out2
    np.testing.assert_array_equal(backend.host(out2), want[1])
    fortran = xp.asfortranarray(xp.empty((40, 17, 2)))
    got = gpa_arrays.gpa(s, t, c, out=[None, fortran], **kw)
    assert got[1] is fortran
    np.testing.assert_array_equal(backend.host(fortran), want[1])
    np.testing.assert_array_equal(backend.host(got[0]), want[0])
    inplace = s.copy()
    got = gpa_arrays.gpa(inplace, t, c, out=(inplace, None), **kw)
    assert got[0] is inplace
    np.testing.assert_array_equal(backend.host(inplace), want[0])
    np.testing.assert_array_equal(backend.host(got[1]), want[1])
    empty = backend(gpa_arrays.gpa, source[:0], target, camera, return_2d=True)
    assert empty[0].shape == (0, 17, 3) and empty[1].shape == (0, 17, 2)


def test_return_2d_argument_errors(rng):
    s, t, c = make_case(rng, 10, 10)
    with pytest.raises(TypeError, match="return_2d: expected a bool, got int"):
        gpa_arrays.gpa(s, t, c, return_2d=1)
    with pytest.raises(TypeError, match=r"out: with return_2d=True expected a pair"):
        gpa_arrays.gpa(s, t, c, return_2d=True, out=np.empty_like(s))
    with pytest.raises(TypeError, match="out: a pair of arrays needs return_2d=True"):
        gpa_arrays.gpa(s, t, c, out=(np.empty_like(s), None))
    with pytest.raises(ValueError, match=r"out_2d: expected shape \(10, 17, 2\)"):
        gpa_arrays.gpa(s, t, c, return_2d=True, out=(None, np.empty((10, 17, 3))))
    with pytest.raises(TypeError, match="out_2d: expected dtype float64"):
        gpa_arrays.gpa(
            s, t, c, return_2d=True, out=(None, np.empty((10, 17, 2), np.float32))
        )
    with pytest.raises(TypeError, match=r"out_2d: expected an array .* got list"):
        gpa_arrays.gpa(s, t, c, return_2d=True, out=(None, [0]))
    shared = np.empty((10, 17, 5))
    with pytest.raises(ValueError, match="out_2d: overlaps out_3d"):
        gpa_arrays.gpa(s, t, c, return_2d=True, out=(shared[..., :3], shared[..., 3:]))
    with pytest.raises(
        ValueError, match="depth: expected one of 'weak', 'perspective'"
    ):
        gpa_arrays.gpa(s, t, c, depth="full")
    with pytest.raises(ValueError, match="depth: 'perspective' needs mode='paired'"):
        gpa_arrays.gpa(s, t, c, depth="perspective", mode="poseda")


@HAND_JOINTS
def test_behind_camera_is_reported(backend, joints):
    # a joint 1 m in front of the root; a large target box puts the root at
    # weak depth 0.45 m, so that joint ends up behind the camera
    source = pad_joints(np.array([[[0.0, 0.0, 3.0], [0.3, 0.3, 2.0]]]), joints)
    target = pad_joints(np.array([[[0.0, 0.0], [1.0, 1.0]]]), joints)
    camera = np.array([1.5, 1.5, 0.0, 0.0])
    aligned = backend(gpa_arrays.gpa, source, target, camera, check=False)
    assert aligned[0, 0, 2] == pytest.approx(0.45) and aligned[0, 1, 2] < 0
    # refused by the default check, with or without the projection
    for return_2d in (False, True):
        with pytest.raises(
            ValueError, match=r"source_3d: 1 of 1 aligned pose has a joint"
        ):
            backend(gpa_arrays.gpa, source, target, camera, return_2d=return_2d)
    _, projected = backend(
        gpa_arrays.gpa, source, target, camera, return_2d=True, check=False
    )
    assert np.isfinite(projected).all()
    # the perspective depth keeps every joint in front
    aligned, projected = backend(
        gpa_arrays.gpa, source, target, camera, return_2d=True, depth="perspective"
    )
    assert (aligned[..., 2] > 0).all()
    assert box_scale(projected)[0] == pytest.approx(1.0, rel=1e-12)


def test_distortion_validation(rng):
    s, t, c = make_case(rng, 10, 10, camera_cols=9)
    c[4, 6] = np.nan
    with pytest.raises(
        ValueError, match=r"camera: 1 of 10 row has a non-finite distortion .* row 4"
    ):
        gpa_arrays.prepare_targets(t, c)
    with pytest.raises(ValueError, match="non-finite distortion"):
        gpa_arrays.gpa(s, t, c, mode="poseda", return_2d=True)
    targets = gpa_arrays.prepare_targets(t, c, check=False)
    np.testing.assert_array_equal(targets.distortion[5], c[5, 4:])


# --- depth="perspective" --------------------------------------------------------------


@pytest.mark.parametrize("root", [0, 5])
def test_perspective_box_scale_equals_target(rng, backend, root, small_chunks):
    source, target, camera = centred_case(rng, 400, 150)
    if root == 5:
        source[:, [0, 5]] = source[:, [5, 0]]
    aligned = backend(
        gpa_arrays.gpa, source, target, camera, seed=7, root=root, depth="perspective"
    )
    index = gpa_arrays.pair_indices(400, 150, seed=7)
    want = box_scale(target[index])
    got = pinhole_box_scale(aligned, camera[index])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # in fact to float64 rounding
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # the root still lands on the target root and the pose is unchanged
    projected = cam_module.project(aligned, camera[index])
    np.testing.assert_allclose(projected[:, root], target[index, root], atol=1e-14)
    np.testing.assert_allclose(
        aligned - aligned[:, root : root + 1],
        source - source[:, root : root + 1],
        atol=1e-14,
    )
    # while the published depth is off by percents here (close, deep poses)
    weak = backend(gpa_arrays.gpa, source, target, camera, seed=7, root=root)
    error = pinhole_box_scale(weak, camera[index]) / want - 1
    assert np.abs(error).max() > 0.05


@given(
    seed=st.integers(0, 2**32 - 1),
    focal=st.floats(0.5, 4.0),
    spread=st.floats(0.01, 1.0),
    size=st.floats(0.1, 2.0),
)
def test_perspective_box_scale_property(backend, seed, focal, spread, size):
    rng = np.random.default_rng(seed)
    source = rng.normal(scale=size, size=(20, 17, 3))
    source[:, 0] = source[:, 1:].mean(axis=1)
    target = rng.uniform(-spread, spread, size=(20, 17, 2)) + rng.uniform(
        -0.5, 0.5, size=(20, 1, 2)
    )
    camera = np.array([focal, focal * 1.01, 0.02, -0.01])
    aligned = backend(
        gpa_arrays.gpa, source, target, camera, seed=seed, depth="perspective"
    )
    index = gpa_arrays.pair_indices(20, 20, seed=seed)
    got = pinhole_box_scale(aligned, np.tile(camera, (20, 1)))
    np.testing.assert_allclose(got, box_scale(target[index]), rtol=1e-6)


def test_perspective_depth_against_bisection(rng, backend):
    source, target, camera = centred_case(rng, 30, 30)
    index = gpa_arrays.pair_indices(30, 30, seed=4)
    aligned = backend(
        gpa_arrays.gpa, source, target, camera, seed=4, depth="perspective"
    )
    for i in (0, 13, 29):
        j = index[i]
        cam = camera[j]
        ray = (target[j, 0] - cam[2:4]) / cam[:2]
        want = perspective_depth_bisection(source[i], 0, ray, cam, box_scale(target[j]))
        assert aligned[i, 0, 2] == pytest.approx(want, rel=1e-12)
        assert projected_box_scale(aligned[i], cam) == pytest.approx(
            box_scale(target[j]), rel=1e-12
        )


@slow  # generic kernels with 19 joints: compiles of their own
@pytest.mark.parametrize("dtype", DTYPES)
def test_perspective_backends_agree(
    rng, kernel_backend, dtype, small_chunks, generic_kernels
):
    source, target, camera = centred_case(rng, 333, 100, joints=19, dtype=dtype)
    kw = dict(seed=9, depth="perspective", return_2d=True, check=False)
    a = gpa_arrays.gpa(source, target, camera, backend="numpy", **kw)
    b = kernel_backend(gpa_arrays.gpa, source, target, camera, **kw)
    # the same float64 operations in the same order: identical
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_perspective_float32_box_scale(rng):
    source, target, camera = centred_case(rng, 200, 200, dtype=np.float32)
    aligned = gpa_arrays.gpa(source, target, camera, seed=2, depth="perspective")
    assert aligned.dtype == np.float32
    index = gpa_arrays.pair_indices(200, 200, seed=2)
    got = pinhole_box_scale(aligned.astype(np.float64), camera[index].astype(float))
    # the depth is solved in float64; the placement is rounded to float32
    np.testing.assert_allclose(got, box_scale(target[index]), rtol=1e-5)


@HAND_JOINTS
def test_perspective_without_solution(backend, joints):
    # the root is the joint nearest the camera and the other joints lie 1 m
    # behind it: however close the pose comes, its box scale stays below
    # 0.3, and the target asks for 0.5
    source = np.array(
        [
            [[0, 0, 5], [0.1, 0.1, 6], [-0.1, -0.1, 6]],  # no solution
            [[0, 0, 5], [0.1, 0.1, 4], [-0.1, -0.1, 6]],  # a joint in front: fine
        ],
        dtype=float,
    )
    source = pad_joints(source, joints)
    target = pad_joints(np.array([[[0.0, 0.0], [0.5, 0.5]]] * 2), joints)
    camera = np.array([1.5, 1.5, 0.0, 0.0])
    kw = dict(pairing="identity", depth="perspective")
    with pytest.raises(
        ValueError, match=r"depth: 1 of 2 poses* ha[sv]e* no depth .* first at index 0"
    ):
        backend(gpa_arrays.gpa, source, target, camera, **kw)
    got = backend(gpa_arrays.gpa, source, target, camera, check=False, **kw)
    weak = backend(
        gpa_arrays.gpa, source, target, camera, pairing="identity", check=False
    )
    np.testing.assert_array_equal(got[0], weak[0])  # fell back to the weak depth
    assert projected_box_scale(got[1], camera) == pytest.approx(0.5, rel=1e-12)


def test_perspective_reports_degenerate_and_index_errors(rng, backend):
    source, target, camera = centred_case(rng, 10, 10)
    source[3] = 1.0  # zero extent: weak depth 0, not attempted
    with pytest.raises(ValueError, match="zero extent in both x and y"):
        backend(gpa_arrays.gpa, source, target, camera, depth="perspective", seed=0)
    with pytest.raises(ValueError, match="pairing: 1 of 10 target index outside"):
        backend(
            gpa_arrays.gpa, source, target, camera, depth="perspective",
            pairing=np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 10]), check=False,
        )  # fmt: skip


@pytest.mark.parametrize("mode", ["paired", "poseda"])
def test_return_2d_single_camera_row(rng, backend, mode):
    # a single 9-value row is broadcast (stride 0) to every pose
    source, target, camera = make_case(rng, 60, 60, camera_cols=9)
    kw = dict(seed=3, mode=mode, return_2d=True, check=False)
    single = backend(gpa_arrays.gpa, source, target, camera[0], **kw)
    tiled = backend(gpa_arrays.gpa, source, target, np.tile(camera[0], (60, 1)), **kw)
    np.testing.assert_array_equal(single[0], tiled[0])
    np.testing.assert_array_equal(single[1], tiled[1])
