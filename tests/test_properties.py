"""Hypothesis properties of GPA: the invariants the method promises."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import gpa_arrays

backends = st.sampled_from(["numpy", "numba"])
dtypes = st.sampled_from([np.float32, np.float64])


@st.composite
def cases(draw):
    n = draw(st.integers(1, 40))
    m = draw(st.integers(1, 40))
    joints = draw(st.sampled_from([2, 3, 17]))
    target_joints = draw(st.sampled_from([2, 14, 17]))
    dtype = draw(dtypes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    size = draw(st.floats(0.05, 2.0))  # pose size, metres
    source = rng.normal(scale=size, size=(n, joints, 3))
    source[..., 2] += draw(st.floats(-3.0, 10.0))  # depth does not matter
    spread = draw(st.floats(0.01, 1.0))
    target = rng.uniform(-spread, spread, size=(m, target_joints, 2))
    target += rng.uniform(-0.5, 0.5, size=(m, 1, 2))  # off-centre subjects
    camera = np.column_stack(
        [
            rng.uniform(0.5, 3.0, m),
            rng.uniform(0.5, 3.0, m),
            rng.uniform(-0.2, 0.2, m),
            rng.uniform(-0.2, 0.2, m),
        ]
    )
    root = draw(st.integers(0, joints - 1))
    target_root = draw(st.integers(0, target_joints - 1))
    pairing = draw(st.sampled_from(["permutation", "random"]))
    seed = draw(st.integers(0, 2**64 - 1))
    return dict(
        source=source.astype(dtype),
        target=target.astype(dtype),
        camera=camera.astype(dtype),
        root=root,
        target_root=target_root,
        pairing=pairing,
        seed=seed,
    )


def run(case, backend):
    # The invariants hold wherever a pose lands; random isotropic poses can land
    # partly behind the camera, which check=True refuses, so it is off here
    # (the data is finite and non-degenerate by construction).
    return gpa_arrays.gpa(
        case["source"],
        case["target"],
        case["camera"],
        pairing=case["pairing"],
        seed=case["seed"],
        root=case["root"],
        target_root=case["target_root"],
        backend=backend,
        check=False,
    )


def eps(dtype):
    return float(np.finfo(dtype).eps)


@given(cases(), backends)
def test_root_projects_onto_the_paired_target_root(case, backend):
    out = run(case, backend)
    j = gpa_arrays.pair_indices(
        len(out), len(case["target"]), pairing=case["pairing"], seed=case["seed"]
    )
    cam = case["camera"][j].astype(np.float64)
    root = out[:, case["root"]].astype(np.float64)
    uv = cam[:, :2] * root[:, :2] / root[:, 2:3] + cam[:, 2:4]
    want = case["target"][j, case["target_root"]].astype(np.float64)
    # a few roundings of values of order |target| + |c|
    tol = 8 * eps(out.dtype) * (np.abs(want) + np.abs(cam[:, 2:4]) + 1)
    assert (np.abs(uv - want) <= tol).all()


@given(cases(), backends)
def test_root_relative_pose_is_preserved(case, backend):
    out = run(case, backend)
    src = case["source"].astype(np.float64)
    r = case["root"]
    got = out.astype(np.float64) - out[:, r : r + 1].astype(np.float64)
    want = src - src[:, r : r + 1]
    # each output value is (s - s_root) + p: two roundings at the scale of |p|
    scale = np.abs(out).max(axis=(1, 2), keepdims=True) + np.abs(want).max()
    assert (np.abs(got - want) <= 4 * eps(out.dtype) * scale).all()


@given(cases(), backends)
def test_weak_perspective_box_scale_equals_target(case, backend):
    out = run(case, backend)
    j = gpa_arrays.pair_indices(
        len(out), len(case["target"]), pairing=case["pairing"], seed=case["seed"]
    )
    cam = case["camera"][j].astype(np.float64)
    o = out.astype(np.float64)
    depth = o[:, case["root"], 2]
    # weak perspective: every joint divided by the root depth
    w = cam[:, 0] * (o[..., 0].max(1) - o[..., 0].min(1)) / depth
    h = cam[:, 1] * (o[..., 1].max(1) - o[..., 1].min(1)) / depth
    t = case["target"][j].astype(np.float64)
    s = (
        (t[..., 0].max(1) - t[..., 0].min(1)) + (t[..., 1].max(1) - t[..., 1].min(1))
    ) / 2
    # Extents measured on the output carry its rounding, eps * |out|, which for
    # a distant pose is large against the extent itself.
    extent = (o[..., 0].max(1) - o[..., 0].min(1)) + (
        o[..., 1].max(1) - o[..., 1].min(1)
    )
    rtol = 16 * eps(out.dtype) * (1 + np.abs(o).max(axis=(1, 2)) / extent)
    assert (np.abs((w + h) / 2 - s) <= rtol * s).all()


@given(cases(), backends)
def test_deterministic_and_inputs_untouched(case, backend):
    copies = {k: v.copy() for k, v in case.items() if isinstance(v, np.ndarray)}
    a = run(case, backend)
    b = run(case, backend)
    np.testing.assert_array_equal(a, b)
    for k, v in copies.items():
        np.testing.assert_array_equal(case[k], v)


@given(cases())
def test_backends_bit_identical(case):
    np.testing.assert_array_equal(run(case, "numba"), run(case, "numpy"))
