"""The CUDA backend on a real device: CuPy arrays, torch CUDA tensors, streams.

Every test here is marked ``gpu`` and skipped cleanly where CuPy sees no CUDA
device (conftest.py). The kernels' logic is also tested without a GPU, on the
host, in test_cuda_source.py.
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


@pytest.fixture
def small_blocks(monkeypatch):
    """Tiny blocks and tiles, so that small inputs cross every boundary."""
    monkeypatch.setattr(_config, "CUDA_THREADS_PER_BLOCK", 32)
    monkeypatch.setattr(_config, "CUDA_TILE_BYTES", 2048)
    monkeypatch.setattr(_config, "CUDA_MIN_TILE_POSES", 1)
    monkeypatch.setattr(_config, "CUDA_BLOCKS_PER_SM", 1)


def on_device(cp, *arrays):
    return [cp.asarray(a) for a in arrays]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pairing", ["permutation", "random", "identity", "array"])
@pytest.mark.parametrize("mode", ["paired", "poseda"])
@pytest.mark.parametrize("blocks", ["default", "small"])
def test_cupy_equals_numpy(cp, rng, dtype, pairing, mode, blocks, request):
    if blocks == "small":
        request.getfixturevalue("small_blocks")
    sizes = [(301, 301)] if mode == "poseda" or pairing == "identity" else [
        (301, 97), (97, 301)]  # fmt: skip
    for n, m in sizes:
        source, target, camera = make_case(rng, n, m, target_joints=15, dtype=dtype)
        index = rng.integers(0, m, n)
        kind = index if pairing == "array" else pairing
        want = gpa_arrays.gpa(source, target, camera, pairing=kind, seed=3, mode=mode,
                              root=5, target_root=14, backend="numpy")  # fmt: skip
        s, t, c = on_device(cp, source, target, camera)
        kind = cp.asarray(index) if pairing == "array" else pairing
        got = gpa_arrays.gpa(s, t, c, pairing=kind, seed=3, mode=mode, root=5,
                             target_root=14)  # fmt: skip
        assert isinstance(got, cp.ndarray) and got.dtype == dtype
        # bit-identical: same IEEE operations in the same order, no FMA, no FTZ
        np.testing.assert_array_equal(got.get(), want)


def test_pair_indices_equal_numpy(cp):
    for n, m in [(1, 1), (1000, 1000), (1001, 1000), (13, 1000), (65537, 65537)]:
        for kind in ("permutation", "random"):
            want = gpa_arrays.pair_indices(n, m, pairing=kind, seed=2**64 - 1)
            got = gpa_arrays.pair_indices(
                n, m, pairing=kind, seed=2**64 - 1, backend="cupy"
            )
            assert isinstance(got, cp.ndarray)
            np.testing.assert_array_equal(got.get(), want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prepared_targets_live_on_the_device(cp, rng, dtype):
    source, target, camera = make_case(rng, 200, 80, dtype=dtype)
    s, t, c = on_device(cp, source, target, camera)
    targets = gpa_arrays.prepare_targets(t, c)
    assert targets.backend == "cupy" and isinstance(targets.records, cp.ndarray)
    np.testing.assert_array_equal(
        targets.records.get(), gpa_arrays.prepare_targets(target, camera).records
    )
    np.testing.assert_array_equal(
        gpa_arrays.gpa(s, targets, seed=1).get(),
        gpa_arrays.gpa(source, target, camera, seed=1),
    )
    with pytest.raises(TypeError, match="arrays on different devices"):
        gpa_arrays.gpa(source, targets)


def test_layouts_out_and_in_place(cp, rng, small_blocks):
    source, target, camera = make_case(rng, 90, 90)
    want = gpa_arrays.gpa(source, target, camera, seed=1)
    s, t, c = on_device(cp, source, target, camera)
    views = {
        "fortran": cp.asfortranarray(s),
        "every other": cp.repeat(s, 2, axis=0)[::2],
        "reversed": s[::-1].copy()[::-1],
        "unaligned": cp.concatenate([s[:1], s])[1:],
    }
    for name, view in views.items():
        got = gpa_arrays.gpa(view, t, c, seed=1)
        np.testing.assert_array_equal(got.get(), want, err_msg=name)
    out = cp.empty_like(s)
    assert gpa_arrays.gpa(s, t, c, seed=1, out=out) is out
    np.testing.assert_array_equal(out.get(), want)
    inplace = s.copy()
    pointer = inplace.data.ptr
    assert gpa_arrays.gpa(inplace, t, c, seed=1, out=inplace) is inplace
    assert inplace.data.ptr == pointer
    np.testing.assert_array_equal(inplace.get(), want)
    fout = cp.asfortranarray(cp.empty_like(s))
    gpa_arrays.gpa(s, t, c, seed=1, out=fout)
    np.testing.assert_array_equal(fout.get(), want)


def test_errors_on_the_device(cp, rng):
    source, target, camera = make_case(rng, 10, 10)
    bad = source.copy()
    bad[3, 4, 2] = np.nan
    s, t, c = on_device(cp, bad, target, camera)
    with pytest.raises(
        ValueError, match=r"1 of 10 pose gives non-finite output .*index 3"
    ):
        gpa_arrays.gpa(s, t, c, seed=0)
    out = gpa_arrays.gpa(s, t, c, seed=0, check=False)  # no raise, no sync
    assert bool(cp.isnan(out[3, 4, 2])) and int(cp.isnan(out).sum()) == 1
    index = cp.arange(10)
    index[7] = 10
    with pytest.raises(ValueError, match=r"position 7 \(value 10\)"):
        gpa_arrays.gpa(cp.asarray(source), t, c, pairing=index, check=False)
    with pytest.raises(TypeError, match="arrays on different devices"):
        gpa_arrays.gpa(cp.asarray(source), target, camera)
    with pytest.raises(TypeError, match="backend: 'numba' runs on host arrays"):
        gpa_arrays.gpa(s, t, c, backend="numba")


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


def centred(source):
    """The root inside the body, so that every perspective depth exists."""
    source = source.copy()
    source[:, 0] = source[:, 1:].mean(axis=1)
    return source


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [4, 9])
@pytest.mark.parametrize(
    ("mode", "depth"),
    [("paired", "weak"), ("paired", "perspective"), ("poseda", "weak")],
)
@pytest.mark.parametrize("blocks", ["default", "small"])
def test_return_2d_and_perspective_equal_host(cp, rng, dtype, cols, mode, depth, blocks,
                                              request):  # fmt: skip
    if blocks == "small":
        request.getfixturevalue("small_blocks")
    n = 301
    source, target, camera = make_case(rng, n, n, dtype=dtype, camera_cols=cols)
    source = centred(source)
    kw = dict(seed=3, mode=mode, depth=depth, return_2d=True, target_root=14)
    want = gpa_arrays.gpa(source, target, camera, backend="numba", **kw)
    s, t, c = on_device(cp, source, target, camera)
    got = gpa_arrays.gpa(s, t, c, **kw)
    assert all(isinstance(g, cp.ndarray) and g.dtype == dtype for g in got)
    # bit-identical: placement and projection are the same IEEE operations in
    # the same order, and so is the float64 depth solve (no FMA, correctly
    # rounded division); its documented contract is the tolerance only
    np.testing.assert_array_equal(got[0].get(), want[0])
    np.testing.assert_array_equal(got[1].get(), want[1])
    if mode == "paired":
        targets = gpa_arrays.prepare_targets(t, c, target_root=14)
        assert (targets.distortion is None) == (cols == 4)
        out = (cp.empty_like(s), cp.asfortranarray(cp.empty((n, 17, 2), dtype)))
        again = gpa_arrays.gpa(s, targets, seed=3, depth=depth, return_2d=True, out=out)
        assert again[0] is out[0] and again[1] is out[1]
        np.testing.assert_array_equal(out[0].get(), want[0])
        np.testing.assert_array_equal(out[1].get(), want[1])


def test_return_2d_errors_on_the_device(cp):
    source = cp.asarray([[[0.0, 0.0, 3.0], [0.3, 0.3, 2.0]]])
    target = cp.asarray([[[0.0, 0.0], [1.0, 1.0]]])
    camera = cp.asarray([1.5, 1.5, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"source_3d: 1 of 1 aligned pose has a joint"):
        gpa_arrays.gpa(source, target, camera, return_2d=True)
    aligned, _ = gpa_arrays.gpa(
        source, target, camera, return_2d=True, depth="perspective"
    )
    assert bool((aligned[..., 2] > 0).all())


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
def test_project_on_the_device(cp, rng, dtype, small_blocks):
    points = rng.normal(scale=0.3, size=(40, 17, 3))
    points[..., 2] += 4.0
    cams = make_case(rng, 1, 40, camera_cols=9)[2]
    from gpa_arrays import camera

    points, cams = points.astype(dtype), cams.astype(dtype)
    for cam in (cams[0], cams[:, :4], cams):
        want = camera.project(points, cam, backend="numpy")
        got = camera.project(cp.asarray(points), cp.asarray(cam))
        assert isinstance(got, cp.ndarray) and got.dtype == dtype
        np.testing.assert_array_equal(got.get(), want)
    # `want` is now the projection through the 9-value rows
    out = cp.asfortranarray(cp.empty((40, 17, 2), dtype))
    got = camera.project(cp.asarray(points), cp.asarray(cams), out=out)
    assert got is out
    np.testing.assert_array_equal(out.get(), want)
    bad = points.copy()
    bad[3, 5, 2] = -1.0
    with pytest.raises(ValueError, match=r"behind the camera plane.*\(3, 5\)"):
        camera.project(cp.asarray(bad), cp.asarray(cams))
    with pytest.raises(TypeError, match="arrays on different devices"):
        camera.project(cp.asarray(points), cams)
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        got = camera.project(
            torch.from_numpy(points).cuda(), torch.from_numpy(cams).cuda()
        )
        assert isinstance(got, torch.Tensor) and got.is_cuda
        np.testing.assert_array_equal(got.cpu().numpy(), want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_metrics_on_the_device(cp, rng, dtype, small_blocks):
    from gpa_arrays import metrics

    target = rng.normal(scale=0.3, size=(60, 17, 3))
    predicted = target @ np.diag([0.9, -0.9, -0.9]) + rng.normal(
        scale=0.03, size=target.shape
    )
    predicted[7] = rng.normal(size=(17, 1)) * rng.normal(size=(1, 3))  # collinear
    predicted, target = predicted.astype(dtype), target.astype(dtype)
    p, t = cp.asarray(predicted), cp.asarray(target)
    for metric, kwargs in (
        (metrics.mpjpe, {"root": 0}),
        (metrics.n_mpjpe, {"root": 0}),
        (metrics.p_mpjpe, {}),
        (metrics.pck, {"root": 0}),
        (metrics.auc, {"root": 0, "align": "procrustes"}),
    ):
        want = metric(predicted, target, reduction="none", backend="numba", **kwargs)
        got = metric(p, t, reduction="none", **kwargs)
        assert isinstance(got, cp.ndarray)
        # the Numba kernels' float64 operations, in the same order
        np.testing.assert_array_equal(got.get(), want)
        mean = metric(p, t, **kwargs)
        assert isinstance(mean, float)
        assert mean == pytest.approx(metric(predicted, target, **kwargs), rel=1e-12)
    want = metrics.procrustes(predicted, target, backend="numba")
    got = metrics.procrustes(p, t)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a.get(), b)
    with pytest.raises(TypeError, match="arrays on different devices"):
        metrics.mpjpe(p, target)
    flat = predicted.copy()
    flat[5] = 1.0
    with pytest.raises(ValueError, match=r"all scored joints at one point.* index 5"):
        metrics.p_mpjpe(cp.asarray(flat), t)
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        tp, tt = torch.from_numpy(predicted).cuda(), torch.from_numpy(target).cuda()
        got = metrics.pck(tp, tt, root=0, reduction="none")
        assert isinstance(got, torch.Tensor) and got.is_cuda
        assert got.dtype == torch.bool
        np.testing.assert_array_equal(
            got.cpu().numpy(), metrics.pck(predicted, target, root=0, reduction="none")
        )


@pytest.mark.parametrize("dtype", DTYPES)
def test_clips_equal_host(cp, rng, dtype, small_blocks):
    source, target, camera = make_case(rng, 150, 61, dtype=np.float64)
    clips = source[:, None] + rng.normal(scale=0.01, size=(150, 9, 17, 3))
    clips[..., 2] = 5.0 + 0.5 * (clips[..., 2] - 5.0)
    clips, target, camera = (a.astype(dtype) for a in (clips, target, camera))
    for kw in ({}, {"return_2d": True}, {"reference_frame": -1}):
        want = gpa_arrays.gpa(clips, target, camera, seed=2, backend="numba", **kw)
        got = gpa_arrays.gpa(*on_device(cp, clips, target, camera), seed=2, **kw)
        pairs = zip(got, want, strict=True) if "return_2d" in kw else [(got, want)]
        for a, b in pairs:
            assert isinstance(a, cp.ndarray)
            np.testing.assert_array_equal(cp.asnumpy(a), b)
    bad = clips.copy()
    bad[[4, 70], 0, 3, 2] = np.nan
    with pytest.raises(ValueError, match=r"2 of 150 poses give non-finite .*index 4"):
        gpa_arrays.gpa(*on_device(cp, bad, target, camera), seed=2)


# --- issue 16: streams, mixed dtypes, no targets, launch limits ---------------------

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


def test_metrics_mix_dtypes_on_the_device(cp, rng):
    from gpa_arrays import metrics

    target = rng.normal(scale=0.3, size=(80, 17, 3))
    predicted = 0.9 * target + rng.normal(scale=0.03, size=target.shape)
    for p_dtype, t_dtype in ((np.float32, np.float64), (np.float64, np.float32)):
        p, t = predicted.astype(p_dtype), target.astype(t_dtype)
        for metric in (metrics.mpjpe, metrics.n_mpjpe, metrics.p_mpjpe):
            want = metric(p, t, reduction="none", backend="numba")
            got = metric(cp.asarray(p), cp.asarray(t), reduction="none")
            np.testing.assert_array_equal(got.get(), want)


def test_no_targets_is_refused_on_the_device(cp, rng):
    source, target, camera = make_case(rng, 6, 6)
    s, t, c = on_device(cp, source, target[:0], camera[:0])
    for pairing in ("permutation", cp.zeros(6, dtype=cp.int64)):
        with pytest.raises(ValueError, match="6 sources need at least one target"):
            gpa_arrays.gpa(s, t, c, pairing=pairing)
    # the device is still usable (no illegal address poisoned the context)
    got = gpa_arrays.gpa(*on_device(cp, source, target, camera), seed=1)
    np.testing.assert_array_equal(got.get(), gpa_arrays.gpa(source, target, camera,
                                                            seed=1))  # fmt: skip


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
