"""Clip-consistent GPA: (N, T, J, 3) sources move as wholes."""

import numpy as np
import pytest
from conftest import make_case
from hypothesis import given
from hypothesis import strategies as st

import gpa_arrays
from gpa_arrays import camera as gcam
from gpa_arrays._validate import Options


def make_clips(rng, n, frames, m, joints=17, dtype=np.float64, camera_cols=4):
    """Clips that walk (a drifting root) and wave (per-frame joint motion)."""
    pose, target, camera = make_case(rng, n, m, joints=joints, camera_cols=camera_cols)
    pose[..., 2] = 5.0 + 0.5 * (pose[..., 2] - 5.0)
    walk = rng.normal(scale=0.05, size=(n, frames, 1, 3)).cumsum(axis=1)
    wave = rng.normal(scale=0.02, size=(n, frames, joints, 3))
    clips = pose[:, None] + walk + wave
    return clips.astype(dtype), target.astype(dtype), camera.astype(dtype)


def rel(clips, frame, root=0):
    """Every joint of every frame relative to the reference frame's root."""
    return clips - clips[:, frame : frame + 1, root : root + 1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reference_frame_is_the_per_pose_result(rng, backend, dtype):
    clips, target, camera = make_clips(rng, 40, 9, 31, dtype=dtype)
    for frame in (None, 0, 3, -1):
        out = backend(
            gpa_arrays.gpa, clips, target, camera, seed=5, reference_frame=frame
        )
        r = 4 if frame is None else frame % 9
        per_pose = backend(gpa_arrays.gpa, clips[:, r], target, camera, seed=5)
        np.testing.assert_array_equal(out[:, r], per_pose)
        assert out.shape == clips.shape and out.dtype == dtype


def test_one_frame_clips_are_the_per_pose_case(rng, backend):
    clips, target, camera = make_clips(rng, 33, 1, 20)
    for kw in ({}, {"return_2d": True}, {"depth": "perspective"}):
        got = backend(gpa_arrays.gpa, clips, target, camera, seed=2, **kw)
        want = backend(gpa_arrays.gpa, clips[:, 0], target, camera, seed=2, **kw)
        if kw.get("return_2d"):
            np.testing.assert_array_equal(got[0][:, 0], want[0])
            np.testing.assert_array_equal(got[1][:, 0], want[1])
        else:
            np.testing.assert_array_equal(got[:, 0], want)


def test_trajectory_and_motion_are_kept(rng, backend):
    clips, target, camera = make_clips(rng, 50, 16, 50)
    out = backend(gpa_arrays.gpa, clips, target, camera, seed=1)
    # each frame relative to the reference root: unchanged up to the two
    # roundings of (x - origin) + anchor, i.e. a few ulps of the output
    scale = np.abs(out).max()
    np.testing.assert_allclose(rel(out, 8), rel(clips, 8), rtol=0, atol=4e-16 * scale)
    # the translation is one vector per clip
    shift = out - clips
    np.testing.assert_allclose(
        shift, np.broadcast_to(shift[:, 8:9, :1], shift.shape), rtol=0, atol=1e-14
    )


def test_reference_root_lands_on_the_target_root(rng, backend):
    clips, target, camera = make_clips(rng, 30, 7, 30)
    index = gpa_arrays.pair_indices(30, 30, seed=9)
    out, out_2d = backend(
        gpa_arrays.gpa, clips, target, camera, seed=9, reference_frame=2,
        return_2d=True,
    )  # fmt: skip
    root_2d = gcam.project(out[:, 2, 0], camera[index])
    np.testing.assert_allclose(root_2d, target[index, 0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(out_2d[:, 2, 0], root_2d)
    # the 2D output is the projection of the 3D one through the paired camera
    want = gcam.project(out, camera[index][:, None, None, :])
    np.testing.assert_array_equal(out_2d, want)


@pytest.mark.parametrize("pairing", ["permutation", "random", "identity", "array"])
def test_pairing_is_per_clip(rng, backend, pairing):
    clips, target, camera = make_clips(rng, 25, 5, 25)
    if pairing == "array":
        pairing = rng.integers(0, 25, size=25)
    out = backend(gpa_arrays.gpa, clips, target, camera, seed=4, pairing=pairing)
    want = backend(gpa_arrays.gpa, clips[:, 2], target, camera, seed=4, pairing=pairing)
    np.testing.assert_array_equal(out[:, 2], want)


@pytest.mark.parametrize(
    ("dtype", "cols"),
    # each is a set of kernel specialisations to compile: the default run
    # checks one, CI all four
    [(np.float64, 4)]
    + [
        pytest.param(dtype, cols, marks=pytest.mark.slow)
        for dtype, cols in [(np.float64, 9), (np.float32, 4), (np.float32, 9)]
    ],
)
def test_backends_agree_bit_for_bit_on_every_option(
    rng, kernel_backend, dtype, cols, small_chunks
):
    options = ({}, {"return_2d": True}, {"depth": "perspective"},
               {"reference_frame": -1})  # fmt: skip
    clips, target, camera = make_clips(rng, 60, 6, 41, dtype=dtype, camera_cols=cols)
    for kw in options:
        a = gpa_arrays.gpa(clips, target, camera, seed=3, backend="numpy", **kw)
        b = kernel_backend(gpa_arrays.gpa, clips, target, camera, seed=3, **kw)
        pairs = zip(a, b, strict=True) if isinstance(a, tuple) else [(a, b)]
        for x, y in pairs:
            np.testing.assert_array_equal(x, y)


def test_strides_out_and_in_place(rng, backend):
    clips, target, camera = make_clips(rng, 20, 8, 20)
    want, want_2d = backend(
        gpa_arrays.gpa, clips, target, camera, seed=6, return_2d=True
    )
    xp = backend.xp
    c, t, cam = backend.device(clips, target, camera)
    kw = dict(seed=6, backend=backend.name)
    # every other frame of a longer clip, in Fortran order
    wide = xp.zeros((20, 16, 17, 3))
    wide[:, ::2] = c
    strided = wide[:, ::2]
    got = gpa_arrays.gpa(strided, t, cam, reference_frame=4, **kw)
    np.testing.assert_array_equal(backend.host(got), want)
    fortran = xp.asfortranarray(c)
    out = xp.empty_like(c)
    out_2d = xp.asfortranarray(xp.empty((20, 8, 17, 2)))
    got = gpa_arrays.gpa(fortran, t, cam, return_2d=True, out=(out, out_2d), **kw)
    assert got[0] is out and got[1] is out_2d
    np.testing.assert_array_equal(backend.host(out), want)
    np.testing.assert_array_equal(backend.host(out_2d), want_2d)
    inplace = c.copy()
    got = gpa_arrays.gpa(inplace, t, cam, out=inplace, **kw)
    assert got is inplace
    np.testing.assert_array_equal(backend.host(inplace), want)


def test_caller_arrays_are_not_modified(rng, backend):
    clips, target, camera = make_clips(rng, 10, 4, 10)
    arrays = backend.device(clips, target, camera)
    gpa_arrays.gpa(*arrays, seed=0, backend=backend.name, return_2d=True)
    for a, b in zip(arrays, (clips, target, camera), strict=True):
        np.testing.assert_array_equal(backend.host(a), b)


def test_target_clips_use_their_reference_frame(rng, backend):
    clips, _, camera = make_clips(rng, 12, 5, 12)
    target_clips = rng.uniform(-0.5, 0.5, size=(12, 7, 17, 2))
    got = backend(gpa_arrays.gpa, clips, target_clips, camera, seed=1)
    # default: each argument's own centre frame
    want = backend(gpa_arrays.gpa, clips, target_clips[:, 3], camera, seed=1)
    np.testing.assert_array_equal(got, want)
    got = backend(
        gpa_arrays.gpa, clips, target_clips, camera, seed=1, reference_frame=1
    )
    want = backend(
        gpa_arrays.gpa, clips, target_clips[:, 1], camera, seed=1, reference_frame=1
    )
    np.testing.assert_array_equal(got, want)
    # prepared once, with the frame the sources use
    targets = gpa_arrays.prepare_targets(
        *backend.device(target_clips, camera), reference_frame=1, backend=backend.name
    )
    got = backend(gpa_arrays.gpa, clips, targets, seed=1, reference_frame=1)
    np.testing.assert_array_equal(got, want)
    # single-frame sources may pair with target clips too
    got = backend(gpa_arrays.gpa, clips[:, 2], target_clips, camera, seed=1)
    want = backend(gpa_arrays.gpa, clips[:, 2], target_clips[:, 3], camera, seed=1)
    np.testing.assert_array_equal(got, want)


def test_fresh_seed_is_one_pairing_for_every_pass(rng):
    # seed=None draws once: the 2D output must be the projection of the 3D
    # output through the camera the reference frame was placed with
    clips, target, camera = make_clips(rng, 30, 5, 3)
    camera = np.array([[1.2, 1.2, 0, 0], [1.9, 1.9, 0.05, 0], [2.3, 2.3, -0.05, 0]])
    out, out_2d = gpa_arrays.gpa(clips, target, camera, return_2d=True)
    fits = [
        np.abs(gcam.project(out[:, 2, 0], camera[k]) - out_2d[:, 2, 0]).max(axis=1)
        for k in range(3)
    ]
    assert (np.min(fits, axis=0) == 0).all()


def test_bad_clips_are_reported_by_clip(rng, backend):
    clips, target, camera = make_clips(rng, 20, 6, 20)
    bad = clips.copy()
    bad[7, 5, 3, 1] = np.nan  # not the reference frame (3)
    bad[11, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 of 20 poses give non-finite .*index 7"):
        backend(gpa_arrays.gpa, bad, target, camera, seed=0)
    out = backend(gpa_arrays.gpa, bad, target, camera, seed=0, check=False)
    assert np.isnan(out[7, 5, 3, 1]) and np.isfinite(np.delete(out, [7, 11], 0)).all()
    flat = clips.copy()
    flat[4, 3, :, :2] = 0.0  # degenerate reference frame
    with pytest.raises(ValueError, match=r"1 of 20 pose has zero extent.*index 4"):
        backend(gpa_arrays.gpa, flat, target, camera, seed=0)
    # a frame far behind the reference reaches the camera plane
    deep = clips.copy()
    deep[9, 0] -= [0, 0, 40.0]
    for return_2d in (True, False):  # projected or not
        with pytest.raises(
            ValueError, match=r"source_3d: 1 of 20 aligned pose .*index 9"
        ):
            backend(gpa_arrays.gpa, deep, target, camera, seed=0, return_2d=return_2d)
    backend(gpa_arrays.gpa, deep, target, camera, seed=0, check=False)


def test_argument_errors(rng):
    clips, target, camera = make_clips(rng, 4, 3, 4)
    with pytest.raises(ValueError, match=r"reference_frame: .*\[-3, 3\) .* got 3"):
        gpa_arrays.gpa(clips, target, camera, reference_frame=3)
    with pytest.raises(TypeError, match="reference_frame: expected an integer"):
        gpa_arrays.gpa(clips, target, camera, reference_frame=1.0)
    with pytest.raises(ValueError, match="reference_frame: only for clips"):
        gpa_arrays.gpa(clips[:, 0], target, camera, reference_frame=0)
    with pytest.raises(ValueError, match=r"mode: 'poseda' .* use mode='paired'"):
        gpa_arrays.gpa(clips, target, camera, mode="poseda")
    with pytest.raises(ValueError, match=r"source_3d: expected shape .*\(N, T, J, 3\)"):
        gpa_arrays.gpa(clips[..., :2], target, camera)
    with pytest.raises(ValueError, match=r"source_3d: .*at least one frame"):
        gpa_arrays.gpa(clips[:, :0], target, camera)
    with pytest.raises(ValueError, match=r"out: expected shape \(4, 3, 17, 3\)"):
        gpa_arrays.gpa(clips, target, camera, out=np.empty((4, 17, 3)))
    with pytest.raises(
        ValueError, match=r"target_2d: expected shape .*\(M, Tt, Jt, 2\)"
    ):
        gpa_arrays.gpa(clips, np.zeros((4, 3, 17, 3)), camera)
    with pytest.raises(ValueError, match="reference_frame: only for clips, target_2d"):
        gpa_arrays.prepare_targets(target, camera, reference_frame=0)
    with pytest.raises(ValueError, match="pairing: expected"):
        gpa_arrays.gpa(clips, target, camera, pairing=np.arange(3))
    empty = gpa_arrays.gpa(clips[:0], target, camera, seed=0)
    assert empty.shape == (0, 3, 17, 3)


def test_torch_clips_round_trip(rng):
    torch = pytest.importorskip("torch")
    clips, target, camera = make_clips(rng, 8, 5, 8, dtype=np.float32)
    got = gpa_arrays.gpa(torch.from_numpy(clips), torch.from_numpy(target),
                         torch.from_numpy(camera), seed=3)  # fmt: skip
    assert isinstance(got, torch.Tensor) and got.shape == (8, 5, 17, 3)
    np.testing.assert_array_equal(
        got.numpy(), gpa_arrays.gpa(clips, target, camera, seed=3)
    )


@pytest.mark.slow  # every joint count 2..6 in both dtypes is a kernel to compile
@given(
    n=st.integers(1, 12),
    frames=st.integers(1, 6),
    joints=st.integers(1, 5),
    frame=st.integers(-6, 5),
    seed=st.integers(0, 2**64 - 1),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_clip_invariants_property(kernel_backend, n, frames, joints, frame, seed,
                                  dtype):  # fmt: skip
    rng = np.random.default_rng(seed % 2**32)
    frame = frame % frames
    clips, target, camera = make_clips(
        rng, n, frames, 7, joints=joints + 1, dtype=dtype
    )
    kw = dict(seed=seed, reference_frame=frame)
    out = kernel_backend(gpa_arrays.gpa, clips, target, camera, **kw)
    np.testing.assert_array_equal(
        out, gpa_arrays.gpa(clips, target, camera, backend="numpy", **kw)
    )
    # determinism, the per-pose reference frame, the kept motion
    np.testing.assert_array_equal(
        out, kernel_backend(gpa_arrays.gpa, clips, target, camera, **kw)
    )
    np.testing.assert_array_equal(
        out[:, frame],
        kernel_backend(gpa_arrays.gpa, clips[:, frame], target, camera, seed=seed),
    )
    eps = np.finfo(dtype).eps
    atol = 4 * eps * max(1.0, float(np.abs(out).max()))
    np.testing.assert_allclose(rel(out, frame), rel(clips, frame), rtol=0, atol=atol)


def test_gpa_object_moves_clips(rng, backend):
    clips, target, camera = make_clips(rng, 16, 5, 20)
    target_clips = target[:, None] + rng.normal(scale=0.01, size=(20, 3, 17, 2))
    c, cam = backend.device(clips, camera)
    for targets, frame in ((target, None), (target_clips, 1), (target_clips, None)):
        aug = gpa_arrays.GPA(
            backend.device(targets), cam, seed=4, reference_frame=frame,
            return_2d=True, backend=backend.name,
        )  # fmt: skip
        for step in range(2):
            got = backend.host(aug(c))
            # the NumPy reference with the object's step
            options = Options.make("paired", "weak", True, True, "numpy")
            want = gpa_arrays._api._gpa(
                clips, targets, camera, "permutation", 4, step, 0, None, frame,
                options, None,
            )  # fmt: skip
            for a, b in zip(got, want, strict=True):
                np.testing.assert_array_equal(a, b)
        # pose batches ignore the reference frame
        single = backend.host(aug(c[:, 2]))
        assert single[0].shape == (16, 17, 3)
    with pytest.raises(ValueError, match="reference_frame: mode='poseda'"):
        gpa_arrays.GPA(target, camera, reference_frame=0, mode="poseda")
    with pytest.raises(TypeError, match="reference_frame: expected an integer"):
        gpa_arrays.GPA(target, camera, reference_frame=0.5)
    with pytest.raises(ValueError, match="reference_frame: expected a frame index"):
        gpa_arrays.GPA(target_clips, camera, reference_frame=3)
    aug = gpa_arrays.GPA(target, camera, reference_frame=9)
    with pytest.raises(ValueError, match="reference_frame: expected a frame index"):
        aug(clips)
