"""Array interchange on the host: torch CPU tensors, JAX arrays, DLPack objects.

The CUDA side of the same paths (CuPy arrays, torch CUDA tensors, streams)
lives in test_gpu.py, which runs where a device is present.
"""

import numpy as np
import pytest
from conftest import make_case

import gpa_arrays
from gpa_arrays import _interop

try:
    import torch
except ImportError:  # the JAX tests at the end run without torch
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def cuda_usable():
    return "cupy" in gpa_arrays.backends()


@pytest.fixture
def case(rng):
    source, target, camera = make_case(rng, 40, 25, dtype=np.float32)
    return source, target, camera


@needs_torch
def test_torch_cpu_round_trip(case):
    source, target, camera = case
    want = gpa_arrays.gpa(source, target, camera, seed=2, root=3, target_root=5)
    for dtype in (torch.float32, torch.float64):
        s, t, c = (torch.from_numpy(a).to(dtype) for a in case)
        got = gpa_arrays.gpa(s, t, c, seed=2, root=3, target_root=5)
        assert isinstance(got, torch.Tensor)
        assert got.dtype == dtype and got.device.type == "cpu"
        expected = gpa_arrays.gpa(s.numpy(), t.numpy(), c.numpy(), seed=2, root=3,
                                  target_root=5)  # fmt: skip
        np.testing.assert_array_equal(got.numpy(), expected)
    np.testing.assert_array_equal(
        gpa_arrays.gpa(*(torch.from_numpy(a) for a in case), seed=2, root=3,
                       target_root=5).numpy(),
        want,
    )  # fmt: skip


@needs_torch
def test_torch_views_share_memory(case):
    source, target, _ = (torch.from_numpy(a) for a in case)
    with _interop.Call("source_3d", source_3d=source, target_2d=target) as call:
        view = call["source_3d"]
        assert isinstance(view, np.ndarray)
        assert view.__array_interface__["data"][0] == source.data_ptr()
        assert call["target_2d"].__array_interface__["data"][0] == target.data_ptr()
        result = call.empty((4, 17, 3), np.dtype(np.float64))
        wrapped = call.wrap(result)
        assert isinstance(wrapped, torch.Tensor) and wrapped.dtype == torch.float64
        assert result.__array_interface__["data"][0] == wrapped.data_ptr()


@needs_torch
def test_torch_out_and_in_place(case):
    source, target, camera = case
    want = gpa_arrays.gpa(source, target, camera, seed=4)
    s, t, c = (torch.from_numpy(a.copy()) for a in case)
    out = torch.empty_like(s)
    pointer = out.data_ptr()
    got = gpa_arrays.gpa(s, t, c, seed=4, out=out)
    assert got is out and out.data_ptr() == pointer
    np.testing.assert_array_equal(out.numpy(), want)
    # in place: out is the source tensor itself
    pointer = s.data_ptr()
    assert gpa_arrays.gpa(s, t, c, seed=4, out=s) is s
    assert s.data_ptr() == pointer
    np.testing.assert_array_equal(s.numpy(), want)
    # a NumPy out with torch inputs (same device) is fine, and returned as is
    out_np = np.empty_like(source)
    s = torch.from_numpy(source)
    assert gpa_arrays.gpa(s, t, c, seed=4, out=out_np) is out_np
    np.testing.assert_array_equal(out_np, want)
    with pytest.raises(TypeError, match="out: expected dtype float32, got float64"):
        gpa_arrays.gpa(s, t, c, out=torch.empty(s.shape, dtype=torch.float64))


@needs_torch
def test_torch_strided_and_dtype_rules(case):
    source, target, camera = case
    big = torch.from_numpy(np.repeat(source, 2, axis=0))[::2]
    transposed = torch.from_numpy(source).transpose(0, 1).contiguous().transpose(0, 1)
    want = gpa_arrays.gpa(source, target, camera, seed=1)
    for s in (big, transposed):
        assert not s.is_contiguous()
        got = gpa_arrays.gpa(s, target, camera, seed=1)
        np.testing.assert_array_equal(got.numpy(), want)
    half = gpa_arrays.gpa(torch.from_numpy(source).half(), target, camera, seed=1)
    assert half.dtype == torch.float32
    ints = gpa_arrays.gpa(torch.from_numpy((source * 1000).astype(np.int32)),
                          target, camera, seed=1)  # fmt: skip
    assert ints.dtype == torch.float64


@needs_torch
def test_requires_grad_is_refused(case):
    s, t, c = (torch.from_numpy(a.copy()) for a in case)
    for name, args in (
        ("source_3d", (s.clone().requires_grad_(), t, c)),
        ("target_2d", (s, t.clone().requires_grad_(), c)),
        ("camera", (s, t, c.clone().requires_grad_())),
    ):
        with pytest.raises(
            TypeError, match=f"{name}: the tensor requires grad.*tensor.detach"
        ):
            gpa_arrays.gpa(*args, seed=0)
    with pytest.raises(TypeError, match="out: the tensor requires grad"):
        gpa_arrays.gpa(s, t, c, out=torch.empty_like(s).requires_grad_())
    # detached tensors are fine
    gpa_arrays.gpa(s.clone().requires_grad_().detach(), t, c, seed=0)


@needs_torch
def test_dtypes_numpy_cannot_view(case):
    s, t, c = (torch.from_numpy(a) for a in case)
    with pytest.raises(
        TypeError,
        match=r"source_3d: cannot view a torch\.Tensor of dtype torch\.bfloat16",
    ):
        gpa_arrays.gpa(s.bfloat16(), t, c)
    with pytest.raises(TypeError, match="expected a real floating or integer dtype"):
        gpa_arrays.gpa(s.to(torch.complex64), t, c)


@needs_torch
def test_torch_with_numpy_targets_and_prepared_targets(case):
    source, target, camera = case
    want = gpa_arrays.gpa(source, target, camera, seed=6)
    s = torch.from_numpy(source)
    np.testing.assert_array_equal(
        gpa_arrays.gpa(s, target, camera, seed=6).numpy(), want
    )
    targets = gpa_arrays.prepare_targets(
        torch.from_numpy(target), torch.from_numpy(camera)
    )
    assert isinstance(targets.records, np.ndarray)
    np.testing.assert_array_equal(gpa_arrays.gpa(s, targets, seed=6).numpy(), want)
    # camera as a plain list with tensors
    np.testing.assert_array_equal(
        gpa_arrays.gpa(s, torch.from_numpy(target), camera[0].tolist(), seed=6).numpy(),
        gpa_arrays.gpa(source, target, camera[0], seed=6),
    )


@needs_torch
def test_torch_pairing_tensor(case):
    source, target, camera = case
    index = gpa_arrays.pair_indices(40, 25, seed=3)
    got = gpa_arrays.gpa(source, target, camera, pairing=torch.from_numpy(index))
    np.testing.assert_array_equal(got, gpa_arrays.gpa(source, target, camera, seed=3))
    back = gpa_arrays.pair_indices(40, 25, pairing=torch.from_numpy(index))
    assert isinstance(back, torch.Tensor) and back.dtype == torch.int64
    np.testing.assert_array_equal(back.numpy(), index)


@needs_torch
def test_unsupported_torch_device(case):
    s = torch.empty((3, 17, 3), device="meta")
    with pytest.raises(
        TypeError,
        match="source_3d: torch tensors on CPU or CUDA devices are supported, got a tensor on meta",
    ):
        gpa_arrays.gpa(s, case[1], case[2])


# --- any __dlpack__ array -------------------------------------------------------------


class FakeArray:
    """A minimal foreign array: DLPack export of a wrapped NumPy array."""

    def __init__(self, data, device=(1, 0)):
        self.data = data
        self.device = device

    def __dlpack__(self, **kwargs):
        return self.data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.device

    @property
    def dtype(self):
        return self.data.dtype


class FakeNamespace:
    @staticmethod
    def from_dlpack(x):
        return FakeArrayWithNamespace(np.from_dlpack(x))


class FakeArrayWithNamespace(FakeArray):
    def __array_namespace__(self, api_version=None):
        return FakeNamespace


@needs_torch
def test_foreign_dlpack_array_without_namespace(case):
    source, target, camera = case
    want = gpa_arrays.gpa(source, target, camera, seed=8)
    got = gpa_arrays.gpa(
        FakeArray(source), FakeArray(target), FakeArray(camera), seed=8
    )
    assert type(got) is np.ndarray  # no namespace to return it in
    np.testing.assert_array_equal(got, want)
    with _interop.Call("source_3d", source_3d=FakeArray(source)) as call:
        assert np.shares_memory(call["source_3d"], source)  # zero copy


@needs_torch
def test_foreign_dlpack_array_with_namespace(case):
    source, target, camera = case
    want = gpa_arrays.gpa(source, target, camera, seed=8)
    got = gpa_arrays.gpa(FakeArrayWithNamespace(source), target, camera, seed=8)
    assert type(got) is FakeArrayWithNamespace
    np.testing.assert_array_equal(got.data, want)
    # out= through DLPack writes into the foreign array's memory
    buffer = np.empty_like(source)
    out = FakeArrayWithNamespace(buffer)
    assert gpa_arrays.gpa(FakeArray(source), target, camera, seed=8, out=out) is out
    np.testing.assert_array_equal(buffer, want)
    # a read-only export stays read-only
    frozen = np.empty_like(source)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="out: the array is read-only"):
        gpa_arrays.gpa(source, target, camera, out=FakeArray(frozen))


@needs_torch
def test_mixed_devices_raise_type_error_naming_arguments(case):
    source, target, camera = case
    on_gpu = FakeArray(target, device=(2, 1))
    with pytest.raises(TypeError) as info:
        gpa_arrays.gpa(source, on_gpu, camera)
    message = str(info.value)
    assert message.startswith("arrays on different devices:")
    assert "source_3d is a numpy.ndarray on cpu" in message
    assert "target_2d is a test_interop.FakeArray on cuda:1" in message
    assert "camera is a numpy.ndarray on cpu" in message
    with pytest.raises(TypeError, match="arrays on different devices"):
        gpa_arrays.gpa(torch.from_numpy(source), on_gpu, camera)
    with pytest.raises(TypeError, match="DLPack arrays on the host or a CUDA device"):
        gpa_arrays.gpa(FakeArray(source, device=(4, 0)), target, camera)


@needs_torch
@pytest.mark.skipif("cuda_usable()")
def test_device_arrays_without_a_usable_cuda_backend(case):
    source, target, camera = case
    arrays = [FakeArray(a, device=(2, 0)) for a in case]
    with pytest.raises(
        RuntimeError, match="the arrays are on cuda:0, which needs the 'cupy' backend"
    ):
        gpa_arrays.gpa(*arrays)
    with pytest.raises(RuntimeError, match="backend 'cupy' is not usable here"):
        gpa_arrays.gpa(source, target, camera, backend="cupy")
    with pytest.raises(RuntimeError, match="backend 'cupy' is not usable here"):
        gpa_arrays.pair_indices(5, 5, seed=0, backend="cupy")
    assert "cupy" not in gpa_arrays.backends()


@needs_torch
def test_named_backend_must_match_the_device(case, monkeypatch):
    from gpa_arrays import _api, _backends

    class FakeDeviceBackend:
        DEVICE = True

    monkeypatch.setitem(_backends._loaded, "cupy", FakeDeviceBackend)
    monkeypatch.setattr(_api, "_resolved", {})
    with pytest.raises(
        TypeError,
        match="backend: 'cupy' runs on CUDA device arrays, but the arrays are on the host",
    ):
        gpa_arrays.gpa(*case, backend="cupy")
    with pytest.raises(
        TypeError,
        match="backend: 'numba' runs on host arrays, but the arrays are on cuda:0",
    ):
        _api._resolve_backend("numba", 0)
    assert _api._resolve_backend("auto", 0) == ("cupy", FakeDeviceBackend)


@needs_torch
def test_torch_cpu_return_2d_gives_two_tensors(case):
    source, target, camera = case
    want = gpa_arrays.gpa(source, target, camera, seed=2, return_2d=True)
    s, t, c = (torch.from_numpy(a) for a in case)
    got = gpa_arrays.gpa(s, t, c, seed=2, return_2d=True)
    assert all(isinstance(g, torch.Tensor) for g in got)
    assert got[0].shape == (40, 17, 3) and got[1].shape == (40, 17, 2)
    np.testing.assert_array_equal(got[0].numpy(), want[0])
    np.testing.assert_array_equal(got[1].numpy(), want[1])
    out_2d = torch.empty((40, 17, 2))
    got = gpa_arrays.gpa(s, t, c, seed=2, return_2d=True, out=(None, out_2d))
    assert got[1] is out_2d and isinstance(got[0], torch.Tensor)
    np.testing.assert_array_equal(out_2d.numpy(), want[1])


@needs_torch
def test_call_wraps_each_result_of_a_call(case):
    # return_2d makes two results in one call: each comes back as itself
    s, t, _ = (torch.from_numpy(a) for a in case)
    with _interop.Call("source_3d", source_3d=s, target_2d=t) as call:
        first = call.empty((4, 17, 3), np.dtype(np.float32))
        second = call.empty((4, 17, 2), np.dtype(np.float32))
        a, b = call.wrap(first), call.wrap(second)
    assert a.shape == (4, 17, 3) and b.shape == (4, 17, 2)
    assert a.data_ptr() == first.__array_interface__["data"][0]
    assert b.data_ptr() == second.__array_interface__["data"][0]


@needs_torch
def test_project_and_metrics_take_torch_tensors(case, rng):
    from gpa_arrays import camera, metrics

    source, _, cams = case
    points = torch.from_numpy(source)
    got = camera.project(points, torch.from_numpy(cams[0]))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), camera.project(source, cams[0]))
    predicted = source + rng.normal(scale=0.01, size=source.shape).astype(np.float32)
    p, t = torch.from_numpy(predicted), points
    for metric in (metrics.mpjpe, metrics.p_mpjpe, metrics.pck):
        got = metric(p, t, reduction="none")
        assert isinstance(got, torch.Tensor)
        np.testing.assert_array_equal(
            got.numpy(), metric(predicted, source, reduction="none")
        )
        assert metric(p, t) == metric(predicted, source)  # a float
    aligned, scale, rotation, translation = metrics.procrustes(p, t)
    assert all(
        isinstance(x, torch.Tensor) for x in (aligned, scale, rotation, translation)
    )
    with pytest.raises(TypeError, match="requires grad"):
        metrics.mpjpe(p.clone().requires_grad_(), t)


@needs_torch
def test_foreign_device_arrays_are_never_written(case):
    # CuPy cannot tell whether a foreign CUDA export allows writes: neither
    # output of return_2d may be one (checked before any view is made, so it
    # runs without a device)
    for name in ("out", "out_2d"):
        call = _interop.Call("source_3d", **{name: FakeArray(case[0], device=(2, 0))})
        with pytest.raises(TypeError, match=rf"{name}: a .*FakeArray on cuda:0 cannot"):
            call._view(call._args[name])


# --- JAX: a user, not only a peer ----------------------------------------------------


def jax_or_skip():
    return pytest.importorskip("jax")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_jax_arrays_in_jax_arrays_out_bit_identical(rng, dtype):
    # JAX exports its arrays through DLPack (read-only on the host): gpa views
    # them, computes as on NumPy and hands the result back as a jax.Array
    jax = jax_or_skip()
    source, target, camera = make_case(rng, 60, 45, dtype=dtype)
    with jax.enable_x64(dtype == np.float64):  # JAX keeps float64 only with x64
        js, jt, jc = (jax.numpy.asarray(a) for a in (source, target, camera))
        assert js.dtype == dtype
        for keywords in ({"root": 3, "target_root": 5}, {"pairing": "random"}):
            want = gpa_arrays.gpa(source, target, camera, seed=4, **keywords)
            got = gpa_arrays.gpa(js, jt, jc, seed=4, **keywords)
            assert isinstance(got, jax.Array) and got.dtype == dtype
            assert got.shape == want.shape
            np.testing.assert_array_equal(np.asarray(got), want)
        # the published mode, with as many targets as sources
        want = gpa_arrays.gpa(source[:45], target, camera, mode="poseda", seed=2)
        got = gpa_arrays.gpa(js[:45], jt, jc, mode="poseda", seed=2)
        np.testing.assert_array_equal(np.asarray(got), want)
    # the caller's arrays are untouched (JAX's are immutable; the NumPy
    # originals they were made from must be too)
    np.testing.assert_array_equal(np.asarray(js), source)


def test_jax_mixed_with_numpy_prepared_targets_and_return_2d(rng):
    jax = jax_or_skip()
    source, target, camera = make_case(rng, 50, 30, dtype=np.float32)
    want, want_2d = gpa_arrays.gpa(source, target, camera, seed=1, return_2d=True)
    js = jax.numpy.asarray(source)
    # NumPy targets with a JAX source: the result follows the source
    got, got_2d = gpa_arrays.gpa(js, target, camera, seed=1, return_2d=True)
    assert isinstance(got, jax.Array) and isinstance(got_2d, jax.Array)
    np.testing.assert_array_equal(np.asarray(got), want)
    np.testing.assert_array_equal(np.asarray(got_2d), want_2d)
    # targets prepared from JAX arrays, and the GPA object
    targets = gpa_arrays.prepare_targets(
        jax.numpy.asarray(target), jax.numpy.asarray(camera)
    )
    np.testing.assert_array_equal(np.asarray(gpa_arrays.gpa(js, targets, seed=1)), want)
    aug = gpa_arrays.GPA(jax.numpy.asarray(target), jax.numpy.asarray(camera), seed=1)
    first = aug(js)
    assert isinstance(first, jax.Array)
    np.testing.assert_array_equal(np.asarray(first), want)


def test_jax_out_is_refused_as_read_only(rng):
    jax = jax_or_skip()
    source, target, camera = make_case(rng, 20, 20, dtype=np.float32)
    with pytest.raises(ValueError, match="out: the array is read-only"):
        gpa_arrays.gpa(
            jax.numpy.asarray(source), target, camera, out=jax.numpy.asarray(source)
        )


def test_jax_camera_and_metrics(rng):
    jax = jax_or_skip()
    from gpa_arrays import camera as cam
    from gpa_arrays import metrics

    source, _, camera = make_case(rng, 40, 40, dtype=np.float32)
    moved = source + np.float32(0.01)
    projected = cam.project(jax.numpy.asarray(source), jax.numpy.asarray(camera))
    assert isinstance(projected, jax.Array)
    np.testing.assert_array_equal(np.asarray(projected), cam.project(source, camera))
    assert metrics.mpjpe(jax.numpy.asarray(moved), source) == metrics.mpjpe(
        moved, source
    )
