"""gpa_arrays.GPA, the reusable augmentation object (host arrays)."""

import pickle
import threading

import numpy as np
import pytest
from conftest import make_case

import gpa_arrays
from gpa_arrays import _api


@pytest.fixture
def case(rng):
    source, target, camera = make_case(rng, 64, 150, target_joints=17, camera_cols=9)
    return source, target, camera


def test_each_call_takes_the_next_step_of_the_stream(case):
    source, target, camera = case
    aug = gpa_arrays.GPA(target, camera, seed=11, root=2, target_root=14)
    assert aug.step == 0 and aug.seed == 11 and aug.n_targets == 150
    outputs = []
    for step in range(4):
        index = aug.pair_indices(64)
        np.testing.assert_array_equal(index, aug.pair_indices(64, step=step))
        got = aug(source)
        want = gpa_arrays.gpa(
            source, target, camera, pairing=index, root=2, target_root=14
        )
        np.testing.assert_array_equal(got, want)
        assert aug.step == step + 1
        outputs.append(got)
    # a fresh pairing each call: only the positions change
    assert not np.array_equal(outputs[0], outputs[1])
    rel = outputs[1] - outputs[1][:, 2:3]
    np.testing.assert_allclose(rel, source - source[:, 2:3], atol=1e-12)


def test_reproducible_from_the_seed_and_resettable(case):
    source, target, camera = case
    a = gpa_arrays.GPA(target, camera, seed=5)
    b = gpa_arrays.GPA(target, camera, seed=5)
    first = [a(source) for _ in range(3)]
    for want in first:
        np.testing.assert_array_equal(b(source), want)
    a.reset()
    np.testing.assert_array_equal(a(source), first[0])
    a.reset(2)
    np.testing.assert_array_equal(a(source), first[2])
    a.reset(seed=6)
    assert a.seed == 6 and a.step == 0
    assert not np.array_equal(a(source), first[0])
    drawn = gpa_arrays.GPA(target, camera)  # fresh entropy, recorded
    again = gpa_arrays.GPA(target, camera, seed=drawn.seed)
    np.testing.assert_array_equal(drawn(source), again(source))
    with pytest.raises(ValueError, match="step: expected a non-negative int, got -1"):
        a.reset(-1)


def test_targets_prepared_once_per_dtype(case, monkeypatch):
    source, target, camera = case
    calls = []
    prepare = _api.prepare_targets

    def counting(*args, **kwargs):
        calls.append(kwargs["dtype"])
        return prepare(*args, **kwargs)

    monkeypatch.setattr(_api, "prepare_targets", counting)
    aug = gpa_arrays.GPA(target, camera, seed=1)
    for _ in range(3):
        assert aug(source).dtype == np.float64
        assert aug(source.astype(np.float32)).dtype == np.float32
        assert aug(source.astype(np.float16)).dtype == np.float32
    assert calls == [np.float64, np.float32]
    # float32 batches align against targets rounded to float32, as gpa() does
    aug.reset(1)
    np.testing.assert_array_equal(
        aug(source.astype(np.float32)),
        gpa_arrays.gpa(source.astype(np.float32), target, camera,
                       pairing=aug.pair_indices(64, step=1)),
    )  # fmt: skip


def test_batch_sizes_and_out(case):
    source, target, camera = case
    aug = gpa_arrays.GPA(target, camera, seed=3, pairing="random")
    for n in (1, 7, 64, 400):
        batch = np.resize(source, (n, 17, 3))
        index = aug.pair_indices(n)
        np.testing.assert_array_equal(
            aug(batch), gpa_arrays.gpa(batch, target, camera, pairing=index)
        )
    batch = source.copy()
    index = aug.pair_indices(64)
    want = gpa_arrays.gpa(source, target, camera, pairing=index)
    assert aug(batch, out=batch) is batch
    np.testing.assert_array_equal(batch, want)


def test_torch_batches(case):
    torch = pytest.importorskip("torch")
    source, target, camera = case
    aug = gpa_arrays.GPA(torch.from_numpy(target), torch.from_numpy(camera), seed=9)
    ref = gpa_arrays.GPA(target, camera, seed=9)
    for dtype in (torch.float32, torch.float64, torch.float32):
        batch = torch.from_numpy(source).to(dtype)
        got = aug(batch)
        assert isinstance(got, torch.Tensor) and got.dtype == dtype
        np.testing.assert_array_equal(got.numpy(), ref(batch.numpy()))


def test_poseda_mode(rng):
    source, target, camera = make_case(rng, 32, 32)
    aug = gpa_arrays.GPA(target, camera, seed=4, mode="poseda")
    for step in range(2):
        index = aug.pair_indices(32, step=step)
        np.testing.assert_array_equal(
            aug(source),
            gpa_arrays.gpa(source, target, camera, pairing=index, mode="poseda"),
        )
    with pytest.raises(ValueError, match="needs as many targets as sources"):
        aug(source[:10])


def test_from_prepared_targets(case):
    source, target, camera = case
    targets = gpa_arrays.prepare_targets(target, camera, target_root=14)
    aug = gpa_arrays.GPA(targets, seed=2)
    index = aug.pair_indices(64)
    np.testing.assert_array_equal(
        aug(source), gpa_arrays.gpa(source, targets, pairing=index)
    )
    with pytest.raises(TypeError, match="holds Targets of dtype float64 on cpu"):
        aug(source.astype(np.float32))
    with pytest.raises(ValueError, match="prepared with root 14, got 3"):
        gpa_arrays.GPA(targets, target_root=3)
    with pytest.raises(TypeError, match="camera: must be None with a Targets object"):
        gpa_arrays.GPA(targets, camera)
    with pytest.raises(TypeError, match="mode='poseda' needs raw target and camera"):
        gpa_arrays.GPA(targets, mode="poseda")


def test_argument_errors(case):
    source, target, camera = case
    with pytest.raises(
        ValueError,
        match="pairing: expected one of 'permutation', 'random', 'identity' \\(a GPA object",
    ):
        gpa_arrays.GPA(target, camera, pairing=np.arange(150))
    with pytest.raises(ValueError, match="mode: expected one of 'paired', 'poseda'"):
        gpa_arrays.GPA(target, camera, mode="published")
    with pytest.raises(TypeError, match="camera: required with a target_2d array"):
        gpa_arrays.GPA(target)
    with pytest.raises(ValueError, match=r"target_2d: expected shape \(M, Jt, 2\)"):
        gpa_arrays.GPA(target[..., :1], camera)
    with pytest.raises(
        ValueError, match=r"target_root: expected a joint index in \[0, 17\), got 20"
    ):
        gpa_arrays.GPA(target, camera, target_root=20)
    with pytest.raises(ValueError, match=r"camera: expected shape .* got \(3, 9\)"):
        gpa_arrays.GPA(target, camera[:3])
    with pytest.raises(TypeError, match="seed: expected None, an int"):
        gpa_arrays.GPA(target, camera, seed="x")
    with pytest.raises(
        ValueError, match=r"root: expected a joint index in \[0, 17\), got 17"
    ):
        gpa_arrays.GPA(target, camera, root=17)  # also the target root
    aug = gpa_arrays.GPA(target, camera, seed=0, root=16, target_root=0)
    with pytest.raises(
        ValueError, match=r"root: expected a joint index in \[0, 16\), got 16"
    ):
        aug(source[:, :16])


def test_pickle_and_repr(case):
    source, target, camera = case
    aug = gpa_arrays.GPA(target, camera, seed=8)
    aug(source)
    clone = pickle.loads(pickle.dumps(aug))
    assert clone.step == 1 and clone.seed == 8
    np.testing.assert_array_equal(clone(source), aug(source))
    assert repr(aug) == (
        "GPA(n_targets=150, target_root=0, root=0, mode='paired', "
        "pairing='permutation', seed=8, step=2)"
    )


def test_threads_take_distinct_steps(case):
    source, target, camera = case
    aug = gpa_arrays.GPA(target, camera, seed=12)
    results = {}
    lock = threading.Lock()

    def work():
        for _ in range(10):
            out = aug(source)
            with lock:
                results[out.tobytes()] = results.get(out.tobytes(), 0) + 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert aug.step == 40
    assert len(results) == 40  # every call drew its own pairing


@pytest.mark.parametrize(
    # the perspective one compiles 9-value-camera perspective kernels of its own
    "depth",
    ["weak", pytest.param("perspective", marks=pytest.mark.slow)],
)
def test_depth_and_return_2d_forwarded_to_gpa(rng, depth):
    # shallow sources in front of the cameras, so every projection is defined
    source, target, camera = make_case(rng, 40, 90, target_joints=17, camera_cols=9)
    aug = gpa_arrays.GPA(
        target, camera, seed=5, root=2, target_root=14, depth=depth, return_2d=True
    )
    plain = gpa_arrays.GPA(target, camera, seed=5, root=2, target_root=14, depth=depth)
    for step in range(2):
        index = aug.pair_indices(40)
        got_3d, got_2d = aug(source)
        want_3d, want_2d = gpa_arrays.gpa(
            source, target, camera, pairing=index, root=2, target_root=14,
            depth=depth, return_2d=True,
        )  # fmt: skip
        np.testing.assert_array_equal(got_3d, want_3d)
        np.testing.assert_array_equal(got_2d, want_2d)
        np.testing.assert_array_equal(plain(source), want_3d)
        assert aug.step == plain.step == step + 1
    # the 2D are the projections through each paired target's camera
    np.testing.assert_allclose(
        got_2d, gpa_arrays.project(got_3d, camera[index]), rtol=0, atol=1e-12
    )
    out = (np.empty_like(source), np.empty((*source.shape[:2], 2)))
    result = aug(source, out=out)
    assert result[0] is out[0] and result[1] is out[1]
    text = repr(aug)
    assert "return_2d=True" in text
    assert ("depth='perspective'" in text) == (depth == "perspective")
    clone = pickle.loads(pickle.dumps(aug))
    for a, b in zip(clone(source), aug(source), strict=True):
        np.testing.assert_array_equal(a, b)


def test_depth_changes_the_result_and_argument_errors(case):
    source, target, camera = case
    weak = gpa_arrays.GPA(target, camera, seed=3)(source)
    persp = gpa_arrays.GPA(target, camera, seed=3, depth="perspective")(source)
    assert weak.shape == persp.shape and not np.allclose(weak, persp)
    with pytest.raises(
        ValueError, match="depth: expected one of 'weak', 'perspective'"
    ):
        gpa_arrays.GPA(target, camera, depth="full")
    with pytest.raises(ValueError, match="depth: 'perspective' needs mode='paired'"):
        gpa_arrays.GPA(target[:64], camera[:64], mode="poseda", depth="perspective")
    with pytest.raises(TypeError, match="return_2d: expected a bool, got int"):
        gpa_arrays.GPA(target, camera, return_2d=1)
