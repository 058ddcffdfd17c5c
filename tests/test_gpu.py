"""What only a CUDA device has: streams, graphs, torch CUDA tensors, arrays on
two devices, launch limits, more than 2**31 elements.

Every test here is marked ``gpu`` and skipped cleanly where CuPy sees no CUDA
device (conftest.py). Everything else the CUDA backend does is tested by the
shared suite, whose ``backend`` fixture runs it on CuPy arrays as on the host
backends (test_gpa, test_gpa_2d, test_clips, test_metrics, test_camera,
test_stats), and the kernels' logic without a GPU, on the host, in
test_cuda_source.py.
"""

import numpy as np
import pytest
from conftest import make_case

import gpa_arrays
from gpa_arrays import _config

pytestmark = pytest.mark.gpu

DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def cp():
    import cupy

    return cupy


def on_device(cp, *arrays):
    return [cp.asarray(a) for a in arrays]


def test_arrays_on_two_devices_are_refused(cp, rng):
    from gpa_arrays import camera, metrics

    source, target, camera_rows = make_case(rng, 10, 10)
    s, t, c = on_device(cp, source, target, camera_rows)
    targets = gpa_arrays.prepare_targets(t, c)
    with pytest.raises(TypeError, match="arrays on different devices"):
        gpa_arrays.gpa(source, targets)
    with pytest.raises(TypeError, match="arrays on different devices"):
        gpa_arrays.gpa(s, target, camera_rows)
    with pytest.raises(TypeError, match="backend: 'numba' runs on host arrays"):
        gpa_arrays.gpa(s, t, c, backend="numba")
    with pytest.raises(TypeError, match="arrays on different devices"):
        camera.project(s, camera_rows)
    with pytest.raises(TypeError, match="arrays on different devices"):
        metrics.mpjpe(s, source)


def test_runs_on_the_current_stream_without_synchronising(cp, rng):
    # A CUDA graph capture fails if anything synchronises or touches another
    # stream while it records: a check=False call must do neither.
    source, target, camera = make_case(rng, 5000, 5000, dtype=np.float32)
    s, t, c = on_device(cp, source, target, camera)
    targets = gpa_arrays.prepare_targets(t, c)
    out = cp.empty_like(s)
    gpa_arrays.gpa(s, targets, seed=5, out=out, check=False)  # compile, warm up
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        gpa_arrays.gpa(s, targets, seed=6, out=out, check=False)
        graph = stream.end_capture()
        out.fill(0)
        graph.launch()
        stream.synchronize()
    np.testing.assert_array_equal(
        out.get(), gpa_arrays.gpa(source, target, camera, seed=6)
    )


def test_torch_cuda_tensors(cp, rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    source, target, camera = make_case(rng, 500, 300, dtype=np.float32)
    want = gpa_arrays.gpa(source, target, camera, seed=2)
    s, t, c = (torch.from_numpy(a).cuda() for a in (source, target, camera))
    got = gpa_arrays.gpa(s, t, c, seed=2)
    assert isinstance(got, torch.Tensor) and got.is_cuda and got.dtype == torch.float32
    np.testing.assert_array_equal(got.cpu().numpy(), want)
    out = torch.empty_like(s)
    pointer = out.data_ptr()
    assert gpa_arrays.gpa(s, t, c, seed=2, out=out) is out and out.data_ptr() == pointer
    np.testing.assert_array_equal(out.cpu().numpy(), want)
    with pytest.raises(TypeError, match="requires grad"):
        gpa_arrays.gpa(s.clone().requires_grad_(), t, c)
    # torch's current stream, captured into a torch CUDA graph: launching on
    # any other stream, or synchronising, would break the capture
    targets = gpa_arrays.prepare_targets(t, c)
    gpa_arrays.gpa(s, targets, seed=3, out=out, check=False)
    graph = torch.cuda.CUDAGraph()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side), torch.cuda.graph(graph, stream=side):
        gpa_arrays.gpa(s, targets, seed=4, out=out, check=False)
    out.zero_()
    graph.replay()
    torch.cuda.synchronize()
    np.testing.assert_array_equal(
        out.cpu().numpy(), gpa_arrays.gpa(source, target, camera, seed=4)
    )


def test_gpa_object_on_the_device(cp, rng):
    source, target, camera = make_case(rng, 64, 150)
    aug = gpa_arrays.GPA(target, camera, seed=1)  # host targets
    ref = gpa_arrays.GPA(target, camera, seed=1)
    for dtype in DTYPES:
        batch = cp.asarray(source.astype(dtype))
        got = aug(batch)
        assert isinstance(got, cp.ndarray) and got.dtype == dtype
        np.testing.assert_array_equal(got.get(), ref(source.astype(dtype)))
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        got = aug(torch.from_numpy(source).cuda())
        assert got.is_cuda
        np.testing.assert_array_equal(got.cpu().numpy(), ref(source))


@pytest.mark.slow
def test_more_than_2_to_the_31_elements(cp):
    # 64-bit indexing: 2**31 / 51 poses of 17 joints overflow a 32-bit element
    # index; check a sample of poses at the end against the reference.
    n = 2**31 // 51 + 4096
    need = 2 * n * 51 * 4 + (1 << 30)
    free, _ = cp.cuda.runtime.memGetInfo()
    if free < need:
        pytest.skip(f"needs {need / 2**30:.1f} GiB of free device memory")
    rng = np.random.default_rng(0)
    m = 1000
    _, target, camera = make_case(rng, 1, m, dtype=np.float32)
    source = cp.random.default_rng(1).standard_normal((n, 17, 3), dtype=cp.float32)
    source[..., 2] += 5
    t, c = on_device(cp, target, camera)
    out = gpa_arrays.gpa(source, t, c, seed=7)
    assert out.shape == (n, 17, 3)
    sample = np.r_[0:64, n - 4096 : n].astype(np.int64)
    index = gpa_arrays.pair_indices(n, m, seed=7)[sample]
    on_gpu = cp.asarray(sample)
    want = gpa_arrays.gpa(source[on_gpu].get(), target, camera, pairing=index)
    np.testing.assert_array_equal(out[on_gpu].get(), want)
    del source, out


def test_torch_cuda_return_2d(cp, rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    source, target, camera = make_case(rng, 500, 300, dtype=np.float32, camera_cols=9)
    want = gpa_arrays.gpa(source, target, camera, seed=2, return_2d=True)
    s, t, c = (torch.from_numpy(a).cuda() for a in (source, target, camera))
    got = gpa_arrays.gpa(s, t, c, seed=2, return_2d=True)
    # two results, each its own torch tensor from torch's allocator
    assert all(isinstance(g, torch.Tensor) and g.is_cuda for g in got)
    assert got[0].shape == (500, 17, 3) and got[1].shape == (500, 17, 2)
    assert got[0].data_ptr() != got[1].data_ptr()
    np.testing.assert_array_equal(got[0].cpu().numpy(), want[0])
    np.testing.assert_array_equal(got[1].cpu().numpy(), want[1])
    out = (torch.empty_like(s), None)
    got = gpa_arrays.gpa(s, t, c, seed=2, return_2d=True, out=out)
    assert got[0] is out[0] and isinstance(got[1], torch.Tensor) and got[1].is_cuda
    np.testing.assert_array_equal(got[1].cpu().numpy(), want[1])
    # check=False stays on torch's current stream without synchronising
    targets = gpa_arrays.prepare_targets(t, c)
    out = (torch.empty_like(s), torch.empty((500, 17, 2), device=s.device))
    kw = dict(return_2d=True, depth="perspective", out=out, check=False)
    gpa_arrays.gpa(s, targets, seed=4, **kw)
    graph = torch.cuda.CUDAGraph()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side), torch.cuda.graph(graph, stream=side):
        gpa_arrays.gpa(s, targets, seed=5, **kw)
    out[1].zero_()
    graph.replay()
    torch.cuda.synchronize()
    want = gpa_arrays.gpa(
        source, target, camera, seed=5, return_2d=True, depth="perspective", check=False
    )
    np.testing.assert_array_equal(out[1].cpu().numpy(), want[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_project_and_metrics_take_torch_cuda_tensors(cp, rng, dtype):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    from gpa_arrays import camera, metrics

    points = rng.normal(scale=0.3, size=(40, 17, 3))
    points[..., 2] += 4.0
    cams = make_case(rng, 1, 40, camera_cols=9)[2]
    points, cams = points.astype(dtype), cams.astype(dtype)
    want = camera.project(points, cams, backend="numpy")
    got = camera.project(torch.from_numpy(points).cuda(), torch.from_numpy(cams).cuda())
    assert isinstance(got, torch.Tensor) and got.is_cuda
    np.testing.assert_array_equal(got.cpu().numpy(), want)
    target = rng.normal(scale=0.3, size=(60, 17, 3))
    predicted = 0.9 * target + rng.normal(scale=0.03, size=target.shape)
    predicted, target = predicted.astype(dtype), target.astype(dtype)
    tp, tt = torch.from_numpy(predicted).cuda(), torch.from_numpy(target).cuda()
    got = metrics.pck(tp, tt, root=0, reduction="none")
    assert isinstance(got, torch.Tensor) and got.is_cuda
    assert got.dtype == torch.bool
    np.testing.assert_array_equal(
        got.cpu().numpy(), metrics.pck(predicted, target, root=0, reduction="none")
    )


# --- streams and launch limits ---------------------------------------------------

_SPIN = r"""
extern "C" __global__ void gpa_test_spin(long long cycles) {
    const long long start = clock64();
    while (clock64() - start < cycles) {
    }
}
"""


def _keep_busy(cp, stream, seconds=0.25):
    """Queue a kernel that holds `stream` for about `seconds`: what is queued
    behind it lands late, so a reader on another stream that is not ordered
    after it reads too early."""
    spin = cp.RawKernel(_SPIN, "gpa_test_spin")
    rate = cp.cuda.Device().attributes["ClockRate"] * 1000  # kHz
    with stream:
        spin((1,), (1,), (np.int64(seconds * rate),))


def test_prepared_targets_and_joint_subsets_cross_streams(cp, rng):
    from gpa_arrays import metrics

    source, target, camera = make_case(rng, 4000, 3000, dtype=np.float32)
    s, t, c = on_device(cp, source, target, camera)
    cp.cuda.Device().synchronize()  # uploaded on the legacy default stream
    want = gpa_arrays.gpa(source, target, camera, seed=9)
    producer = cp.cuda.Stream(non_blocking=True)
    consumer = cp.cuda.Stream(non_blocking=True)
    for check in (False, True):
        _keep_busy(cp, producer)
        with producer:
            targets = gpa_arrays.prepare_targets(t, c, check=check)
        with consumer:  # does not wait for the producer by itself
            got = gpa_arrays.gpa(s, targets, seed=9, check=False)
        consumer.synchronize()
        np.testing.assert_array_equal(got.get(), want, err_msg=f"check={check}")
    # a joint subset uploaded (and cached) on a busy stream, then read from
    # another: the cached copy has landed before any stream reads it
    predicted = source[:500, :, :] * np.float32(1.01)
    p, q = on_device(cp, predicted, source[:500])
    cp.cuda.Device().synchronize()
    joints = [0, 3, 5, 9, 12, 16]
    want = metrics.mpjpe(predicted, source[:500], joints=joints, reduction="none",
                         backend="numba")  # fmt: skip
    _keep_busy(cp, producer)
    with producer:
        first = metrics.mpjpe(p, q, joints=joints, reduction="none")
    _keep_busy(cp, producer)
    with consumer:
        second = metrics.mpjpe(p, q, joints=joints, reduction="none")
    for got in (first, second):
        np.testing.assert_array_equal(cp.asnumpy(got), want)


@pytest.mark.parametrize("threads", [512, 1024])
def test_launches_are_clamped_to_each_kernel(cp, rng, monkeypatch, threads):
    # above what the heavy kernels' registers allow, and tiles above the
    # device's opt-in shared memory: every launch is clamped, none fails
    from gpa_arrays import metrics

    monkeypatch.setattr(_config, "CUDA_THREADS_PER_BLOCK", threads)
    monkeypatch.setattr(_config, "CUDA_TILE_BYTES", 1 << 20)
    source, target, camera = make_case(rng, 3000, 900)
    centred = source.copy()
    centred[:, 0] = centred[:, 1:].mean(axis=1)  # every perspective depth exists
    s, t, c = on_device(cp, centred, target, camera)
    for kw in ({}, {"return_2d": True, "depth": "perspective"}):
        want = gpa_arrays.gpa(centred, target, camera, seed=3, backend="numba", **kw)
        for view in (s, cp.asfortranarray(s)):  # tiled and strided kernels
            got = gpa_arrays.gpa(view, t, c, seed=3, **kw)
            for a, b in zip(got, want, strict=True) if kw else [(got, want)]:
                np.testing.assert_array_equal(cp.asnumpy(a), b)
    predicted = source + rng.normal(scale=0.01, size=source.shape)
    p, q = on_device(cp, predicted, source)
    for metric in (metrics.mpjpe, metrics.p_mpjpe):
        want = metric(predicted, source, reduction="none", backend="numba")
        np.testing.assert_array_equal(metric(p, q, reduction="none").get(), want)
