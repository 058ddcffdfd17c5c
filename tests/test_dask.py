"""gpa_arrays.dask: chunked, lazy GPA equals the in-memory call bit for bit.

Most cases run on Dask's threaded scheduler; a module-wide
``distributed.LocalCluster`` with two worker processes runs the comparisons
that matter across processes (records shared by scatter or by one graph key,
errors re-raised from a worker, .npy files written by workers).
"""

import pickle
import threading

import numpy as np
import pytest
from conftest import make_case

import gpa_arrays
from gpa_arrays import _api, _pairing

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
gdask = pytest.importorskip("gpa_arrays.dask")

N = 300
#: Chunkings of the N = 300 poses: one block, even blocks, uneven blocks
#: including an empty one and single poses.
CHUNKINGS = {
    "single": (300,),
    "even": (64,) * 4 + (44,),
    "uneven": (0, 1, 150, 2, 97, 1, 49),
}
PAIRINGS = ["permutation", "random", "identity", "numpy-array", "dask-array"]


@pytest.fixture
def threads():
    with dask.config.set(scheduler="threads"):
        yield


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes, started once for the module."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=":0",
            # one Numba thread per worker: the two workers already fill the
            # two cores of CI
            env={"NUMBA_NUM_THREADS": "1"},
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture
def on_cluster(client):
    with dask.config.set(scheduler=client):
        yield client


def bits(a):
    """The array's bytes, for bit-for-bit comparisons (NaN == NaN, -0 != 0)."""
    return np.ascontiguousarray(a).tobytes()


def chunked(array, chunks):
    return da.from_array(array, chunks=(chunks,) + (-1,) * (array.ndim - 1))


def pairing_args(kind, n, m, chunks, rng):
    """``(in-memory pairing, Dask-call pairing)`` for a pairing kind."""
    if kind in ("numpy-array", "dask-array"):
        index = rng.integers(0, m, size=n)
        if kind == "numpy-array":
            return index, index
        # index chunks differ from the source's: the call rechunks them
        return index, da.from_array(index, chunks=37)
    return kind, kind


# --- equality with the in-memory call ------------------------------------------------


@pytest.mark.usefixtures("threads")
@pytest.mark.parametrize("chunking", list(CHUNKINGS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("pairing", "m"),
    # fewer, as many and more targets than sources (identity needs as many)
    [(p, m) for p in PAIRINGS for m in (200, 300, 450) if p != "identity" or m == N],
)
def test_equals_in_memory_call(rng, chunking, dtype, pairing, m):
    source, target, camera = make_case(rng, N, m, dtype=dtype)
    whole_pairing, dask_pairing = pairing_args(pairing, N, m, chunking, rng)
    expected = gpa_arrays.gpa(source, target, camera, pairing=whole_pairing, seed=11)
    lazy = gdask.gpa(
        chunked(source, CHUNKINGS[chunking]),
        target,
        camera,
        pairing=dask_pairing,
        seed=11,
    )
    assert isinstance(lazy, da.Array)
    assert lazy.chunks == ((CHUNKINGS[chunking]), (17,), (3,))
    assert lazy.dtype == expected.dtype
    result = lazy.compute()
    assert result.dtype == expected.dtype
    assert bits(result) == bits(expected)


@pytest.mark.usefixtures("threads")
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_backends_and_roots(rng, backend):
    source, target, camera = make_case(rng, N, 250, joints=16, target_joints=17)
    kwargs = {"root": 3, "target_root": 14, "seed": 5}
    expected = gpa_arrays.gpa(source, target, camera, backend="numpy", **kwargs)
    lazy = gdask.gpa(chunked(source, 70), target, camera, backend=backend, **kwargs)
    assert bits(lazy.compute()) == bits(expected)


@pytest.mark.usefixtures("threads")
def test_dtype_rule(rng):
    source, target, camera = make_case(rng, N, 250)
    for dtype, result in [(np.float16, np.float32), (np.int32, np.float64)]:
        src = (source * 100).astype(dtype)
        expected = gpa_arrays.gpa(src, target, camera, seed=2)
        lazy = gdask.gpa(chunked(src, 64), target, camera, seed=2)
        assert lazy.dtype == result == expected.dtype
        assert bits(lazy.compute()) == bits(expected)


@pytest.mark.usefixtures("threads")
@pytest.mark.parametrize(
    "form", ["targets", "dask", "dask-camera", "dask-camera-row", "numpy-cameras"]
)
def test_target_forms(rng, form):
    source, target, camera = make_case(rng, N, 250, dtype=np.float32)
    single = np.array([1.5, 1.6, 0.02, -0.03, 0.1, 0.0, 0.0, 0.0, 0.0])
    expected = gpa_arrays.gpa(
        source, target, single if form == "dask-camera-row" else camera, seed=4
    )
    # targets chunked along every axis, cameras chunked differently from them
    d_target = da.from_array(target, chunks=(60, 5, 1))
    arguments = {
        "targets": (gpa_arrays.prepare_targets(target, camera, dtype=np.float32), None),
        "dask": (d_target, da.from_array(camera, chunks=(60, 4))),
        "dask-camera": (target, da.from_array(camera, chunks=(45, 2))),
        "dask-camera-row": (d_target, da.from_array(single, chunks=3)),
        "numpy-cameras": (d_target, camera),
    }
    lazy_target, lazy_camera = arguments[form]
    lazy = gdask.gpa(chunked(source, 64), lazy_target, lazy_camera, seed=4)
    assert bits(lazy.compute()) == bits(expected)


# --- seeds ---------------------------------------------------------------------------


@pytest.mark.usefixtures("threads")
def test_seed_none_is_drawn_once_on_the_client(rng, monkeypatch):
    source, target, camera = make_case(rng, N, 250)
    draws = []

    def randbits(k):
        draws.append(k)
        return 0x1234_5678_9ABC_DEF0

    monkeypatch.setattr(_pairing.secrets, "randbits", randbits)
    lazy = gdask.gpa(chunked(source, CHUNKINGS["uneven"]), target, camera)
    assert draws == [64]
    first = lazy.compute()
    assert bits(lazy.compute()) == bits(first)  # recomputing draws nothing new
    assert draws == [64]
    expected = gpa_arrays.gpa(source, target, camera, seed=0x1234_5678_9ABC_DEF0)
    assert bits(first) == bits(expected)


@pytest.mark.usefixtures("threads")
def test_unseeded_calls_differ(rng):
    source, target, camera = make_case(rng, N, N)
    lazy = chunked(source, 64)
    a = gdask.gpa(lazy, target, camera)
    b = gdask.gpa(lazy, target, camera)
    assert a.name != b.name
    assert bits(a.compute()) != bits(b.compute())


@pytest.mark.usefixtures("threads")
def test_generator_seed_is_advanced_once(rng):
    source, target, camera = make_case(rng, N, 250)
    lazy = gdask.gpa(chunked(source, 64), target, camera, seed=np.random.default_rng(9))
    expected = gpa_arrays.gpa(source, target, camera, seed=np.random.default_rng(9))
    assert bits(lazy.compute()) == bits(expected)


# --- laziness and sharing ------------------------------------------------------------


def test_building_the_graph_computes_nothing(rng):
    source, target, camera = make_case(rng, N, 250)
    calls = []

    def load(block, block_info=None):
        calls.append(block_info)
        return block

    meta = np.empty((0, 0, 0))  # given, so that Dask does not call `load` for it
    lazy_source = chunked(source, 64).map_blocks(load, meta=meta)
    lazy_target = da.from_array(target, chunks=100).map_blocks(load, meta=meta)
    result = gdask.gpa(lazy_source, lazy_target, camera, seed=1)
    assert calls == []
    assert result.chunks[0] == (64, 64, 64, 64, 44)


def test_in_memory_targets_are_one_graph_key(rng):
    source, target, camera = make_case(rng, N, 250)
    result = gdask.gpa(chunked(source, 30), target, camera, seed=1, scatter=False)
    graph = dict(result.__dask_graph__())
    shared = [key for key in graph if str(key).startswith("gpa-records-")]
    assert len(shared) == 1
    assert sum(str(key).startswith("('gpa-") for key in graph) == 10
    # the graph holds the source and the records once, not a copy per task
    records = gpa_arrays.prepare_targets(target, camera).records
    assert len(pickle.dumps(graph)) < source.nbytes + 2 * records.nbytes


@pytest.mark.usefixtures("threads")
def test_dask_targets_are_prepared_once(rng, monkeypatch):
    source, target, camera = make_case(rng, N, 250)
    lock = threading.Lock()
    counts = {"prepare": 0, "align": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            with lock:
                counts[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        _api, "_prepare_block", counting("prepare", _api._prepare_block)
    )
    monkeypatch.setattr(_api, "_gpa_block", counting("align", _api._gpa_block))
    result = gdask.gpa(
        chunked(source, 30), da.from_array(target, chunks=100), camera, seed=1
    )
    expected = gpa_arrays.gpa(source, target, camera, seed=1)
    assert bits(result.compute()) == bits(expected)
    assert counts == {"prepare": 3, "align": 10}


# --- errors --------------------------------------------------------------------------


def _fails(lazy, pattern):
    with pytest.raises(ValueError, match=pattern):
        lazy.compute()


@pytest.mark.usefixtures("threads")
def test_bad_pose_is_named_by_its_global_index(rng):
    source, target, camera = make_case(rng, N, 250)
    source[4 * 64 + 5, 2, 0] = np.nan  # block 4 of (64, 64, 64, 64, 44)
    source[4 * 64 + 9, 7, 2] = np.inf
    lazy = gdask.gpa(chunked(source, 64), target, camera, seed=3)
    _fails(
        lazy,
        r"source_3d: 2 of 44 poses \(block \[256, 300\) of 300\) give non-finite "
        r"output .*; first at index 261$",
    )
    # the in-memory call reports the same first index
    with pytest.raises(ValueError, match=r"first at index 261$"):
        gpa_arrays.gpa(source, target, camera, seed=3)
    unchecked = gdask.gpa(chunked(source, 64), target, camera, seed=3, check=False)
    out = unchecked.compute()
    assert np.isnan(out[261]).any() and np.isfinite(np.delete(out, [261, 265], 0)).all()


@pytest.mark.usefixtures("threads")
def test_degenerate_pose_is_named_by_its_global_index(rng):
    source, target, camera = make_case(rng, N, 250)
    source[130, :, :2] = 0.25  # zero x and y extent, block [128, 192)
    _fails(
        gdask.gpa(chunked(source, 64), target, camera, seed=3),
        r"1 of 64 pose \(block \[128, 192\) of 300\) has zero extent .* index 130$",
    )


@pytest.mark.usefixtures("threads")
@pytest.mark.parametrize("kind", ["numpy-array", "dask-array"])
def test_bad_pairing_index_is_named_by_its_global_position(rng, kind):
    source, target, camera = make_case(rng, N, 250)
    index = rng.integers(0, 250, size=N)
    index[201] = -1
    pairing = index if kind == "numpy-array" else da.from_array(index, chunks=100)
    for check in (True, False):  # explicit indices are checked regardless
        _fails(
            gdask.gpa(
                chunked(source, 64), target, camera, pairing=pairing, check=check
            ),
            r"pairing: 1 of 64 target index \(block \[192, 256\) of 300\) outside "
            r"\[0, 250\); first at position 201 \(value -1\)",
        )


@pytest.mark.usefixtures("threads")
def test_bad_dask_target_is_named_by_its_global_index(rng):
    source, target, camera = make_case(rng, N, 250)
    target[173, 4, 1] = np.nan
    lazy = gdask.gpa(chunked(source, 64), da.from_array(target, chunks=60), camera)
    _fails(
        lazy,
        r"target_2d: 1 of 60 target \(block \[120, 180\) of 250\) has non-finite "
        r"coordinates; first at index 173$",
    )
    target[173, 4, 1] = 0.0
    camera[222, 0] = -1.0
    lazy = gdask.gpa(
        chunked(source, 64), da.from_array(target, chunks=60), da.from_array(camera)
    )
    _fails(lazy, r"camera: 1 of 60 row \(block \[180, 240\) of 250\) .* row 222$")


def test_bad_in_memory_target_raises_at_once(rng):
    source, target, camera = make_case(rng, N, 250)
    target[17] = 0.1  # a degenerate box
    with pytest.raises(ValueError, match=r"target_2d: 1 of 250 target .* index 17$"):
        gdask.gpa(chunked(source, 64), target, camera)


def test_argument_errors(rng):
    source, target, camera = make_case(rng, N, 250)
    lazy = chunked(source, 64)
    with pytest.raises(TypeError, match=r"source_3d: expected a dask.array.Array"):
        gdask.gpa(source, target, camera)
    with pytest.raises(
        ValueError, match=r"chunks along axis 1 .*rechunk\(\{1: -1, 2: -1\}\)"
    ):
        gdask.gpa(da.from_array(source, chunks=(64, 5, 3)), target, camera)
    unknown = lazy[da.from_array(np.arange(N) % 2 == 0, chunks=64)]
    with pytest.raises(ValueError, match=r"unknown chunk sizes .*compute_chunk_sizes"):
        gdask.gpa(unknown, target, camera)
    with pytest.raises(ValueError, match=r"source_3d: expected shape \(N, J, 3\)"):
        gdask.gpa(lazy[..., :2], target, camera)
    with pytest.raises(
        ValueError, match=r"mode: gpa_arrays.dask.gpa supports 'paired'"
    ):
        gdask.gpa(lazy, target[:N], camera[:N], mode="poseda")
    with pytest.raises(ValueError, match="mode: expected"):
        gdask.gpa(lazy, target, camera, mode="other")
    with pytest.raises(TypeError, match="camera: required"):
        gdask.gpa(lazy, target)
    with pytest.raises(TypeError, match="camera: required"):
        gdask.gpa(lazy, da.from_array(target))
    with pytest.raises(ValueError, match=r"camera: expected shape .* got \(7, 4\)"):
        gdask.gpa(lazy, da.from_array(target), da.from_array(camera[:7]))
    with pytest.raises(ValueError, match="root: expected a joint index"):
        gdask.gpa(lazy, target, camera, root=17)
    with pytest.raises(ValueError, match="target_root: expected a joint index"):
        gdask.gpa(lazy, da.from_array(target), camera, target_root=-18)
    targets = gpa_arrays.prepare_targets(target, camera, dtype=np.float32)
    with pytest.raises(TypeError, match="Targets of dtype float32 cannot align"):
        gdask.gpa(lazy, targets)
    with pytest.raises(TypeError, match="camera: must be None"):
        gdask.gpa(lazy.astype(np.float32), targets, camera)
    with pytest.raises(ValueError, match="pairing: 'identity' needs"):
        gdask.gpa(lazy, target, camera, pairing="identity")
    with pytest.raises(ValueError, match=r"pairing: expected shape \(300,\)"):
        gdask.gpa(lazy, target, camera, pairing=da.zeros(7, dtype=np.int64))
    with pytest.raises(TypeError, match="pairing: expected an integer array"):
        gdask.gpa(lazy, target, camera, pairing=da.zeros(N))
    with (
        pytest.raises(ValueError, match="scatter: True needs a distributed Client"),
        dask.config.set(scheduler="threads"),
    ):
        gdask.gpa(lazy, target, camera, scatter=True)
    with pytest.raises(TypeError, match="scatter: expected None, True or False"):
        gdask.gpa(lazy, target, camera, scatter="yes")
    with pytest.raises(ValueError, match="backend: expected"):
        gdask.gpa(lazy, target, camera, backend="cuda")


# --- two worker processes ------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        ("even", np.float32, "permutation", "scatter"),
        ("uneven", np.float64, "random", "graph-key"),
        ("uneven", np.float32, "dask-array", "dask-targets"),
        ("single", np.float64, "numpy-array", "scatter"),
    ],
    ids=lambda case: "-".join(getattr(v, "__name__", str(v)) for v in case),
)
def test_local_cluster_equals_in_memory_call(rng, on_cluster, case):
    chunking, dtype, pairing, sharing = case
    source, target, camera = make_case(rng, N, 250, dtype=dtype)
    whole_pairing, dask_pairing = pairing_args(pairing, N, 250, chunking, rng)
    expected = gpa_arrays.gpa(source, target, camera, pairing=whole_pairing, seed=8)
    lazy_target = (
        da.from_array(target, chunks=90) if sharing == "dask-targets" else target
    )
    lazy = gdask.gpa(
        chunked(source, CHUNKINGS[chunking]),
        lazy_target,
        camera,
        pairing=dask_pairing,
        seed=8,
        scatter=None if sharing == "scatter" else False,
    )
    keys = [str(key) for key in lazy.__dask_graph__()]
    # scattered records are sent to the workers, not put in the graph
    assert any(k.startswith("gpa-records-") for k in keys) == (sharing == "graph-key")
    assert bits(lazy.compute()) == bits(expected)


def test_local_cluster_error_names_the_global_index(rng, on_cluster):
    source, target, camera = make_case(rng, N, 250)
    source[3 * 50 + 7, 0, 1] = np.nan  # block 3 of six blocks of 50
    lazy = gdask.gpa(chunked(source, 50), target, camera, seed=1)
    with pytest.raises(
        ValueError,
        match=r"1 of 50 pose \(block \[150, 200\) of 300\) gives .* index 157$",
    ):
        lazy.compute()


def test_npy_files_on_local_cluster(rng, on_cluster, tmp_path):
    source, target, camera = make_case(rng, 1000, 700, dtype=np.float32)
    np.save(tmp_path / "source.npy", source)
    np.save(tmp_path / "target.npy", target)
    out = gdask.gpa_npy(
        tmp_path / "source.npy",
        tmp_path / "target.npy",
        camera,
        out_path=tmp_path / "aligned.npy",
        chunk_poses=128,
        seed=6,
    )
    assert out == tmp_path / "aligned.npy"
    expected = gpa_arrays.gpa(source, target, camera, seed=6)
    assert bits(np.load(out)) == bits(expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "aligned.npy",
        "source.npy",
        "target.npy",
    ]


# --- .npy files ----------------------------------------------------------------------


@pytest.mark.usefixtures("threads")
def test_npy_files(rng, tmp_path):
    source, target, camera = make_case(rng, N, 250)
    index = rng.integers(0, 250, size=N)
    np.save(tmp_path / "source.npy", np.asfortranarray(source))
    np.save(tmp_path / "camera.npy", camera)
    np.save(tmp_path / "index.npy", index.astype(np.uint16))
    expected = gpa_arrays.gpa(source, target, camera, pairing=index)
    out = gdask.gpa_npy(
        str(tmp_path / "source.npy"),
        target,
        str(tmp_path / "camera.npy"),
        out_path=tmp_path / "aligned.npy",
        pairing=tmp_path / "index.npy",
        chunk_poses=77,
    )
    assert bits(np.load(out)) == bits(expected)


@pytest.mark.usefixtures("threads")
def test_npy_errors_leave_no_partial_file(rng, tmp_path):
    source, target, camera = make_case(rng, N, 250)
    source[299, 0, 0] = np.nan
    np.save(tmp_path / "source.npy", source)
    with pytest.raises(ValueError, match=r"first at index 299$"):
        gdask.gpa_npy(
            tmp_path / "source.npy",
            target,
            camera,
            out_path=tmp_path / "out.npy",
            chunk_poses=64,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.npy"]
    with pytest.raises(ValueError, match=r"out_path: .* is the source file"):
        gdask.gpa_npy(
            tmp_path / "source.npy", target, camera, out_path=tmp_path / "source.npy"
        )
    with pytest.raises(ValueError, match="source_path: cannot map"):
        gdask.gpa_npy(tmp_path / "missing.npy", target, camera, out_path=tmp_path / "o")
    np.savez(tmp_path / "archive.npz", source=source)
    with pytest.raises(ValueError, match=r"source_path: expected a .npy file"):
        gdask.gpa_npy(tmp_path / "archive.npz", target, camera, out_path=tmp_path / "o")
    with pytest.raises(ValueError, match="chunk_poses: expected a positive int"):
        gdask.gpa_npy(
            tmp_path / "source.npy",
            target,
            camera,
            out_path=tmp_path / "o",
            chunk_poses=0,
        )


def test_shared_records_arrive_aligned_on_workers(rng, on_cluster):
    _, target, camera = make_case(rng, 10, 1001, dtype=np.float32)
    records = gpa_arrays.prepare_targets(target, camera).records
    shared = gdask._share(np.array(records), scatter=True)

    def inspect(received):
        array = received.array
        return array.flags.aligned, array.ctypes.data % 16, array.tobytes()

    aligned, address, content = on_cluster.submit(inspect, shared).result()
    assert aligned and address == 0
    assert content == records.tobytes()


@pytest.mark.usefixtures("threads")
@pytest.mark.parametrize("chunking", ["even", "uneven"])
def test_clips_equal_in_memory_call(rng, chunking):
    source, target, camera = make_case(rng, N, 120)
    clips = source[:, None] + rng.normal(scale=0.02, size=(N, 4, 17, 3))
    target_clips = target[:, None] + rng.normal(scale=0.01, size=(120, 3, 17, 2))
    chunks = (CHUNKINGS[chunking], 4, 17, 3)
    for targets in (target, target_clips, da.from_array(target_clips, chunks=50)):
        for frame in (None, 0):
            lazy = gdask.gpa(
                da.from_array(clips, chunks=chunks), targets, camera, seed=8,
                reference_frame=frame,
            )  # fmt: skip
            want = gpa_arrays.gpa(
                clips, np.asarray(targets), camera, seed=8, reference_frame=frame
            )
            got = lazy.compute()
            assert got.shape == clips.shape
            np.testing.assert_array_equal(got, want)
    bad = clips.copy()
    bad[201, 3, 5, 0] = np.nan
    lazy = gdask.gpa(da.from_array(bad, chunks=chunks), target, camera, seed=8)
    with pytest.raises(ValueError, match=r"1 of \d+ pose .*first at index 201"):
        lazy.compute()
    with pytest.raises(ValueError, match="reference_frame: only for clips"):
        gdask.gpa(da.from_array(source, chunks=100), target, camera, reference_frame=0)


def _category_case(category):
    """40 three-joint poses and targets in blocks of 10, one bad item at 27.

    Returns ``(source, target, camera, kwargs, message)`` where the message is
    what every backend reports, with the global index and the block.
    """
    source = np.tile([[0.0, 0.0, 5.0], [0.1, 0.1, 4.0], [-0.1, -0.1, 6.0]], (40, 1, 1))
    target = np.tile([[0.0, 0.0], [0.1, 0.1], [-0.1, -0.1]], (40, 1, 1))
    camera = np.tile([1.5, 1.5, 0.0, 0.0], (40, 1))
    kwargs = {"pairing": "identity"}
    block = r"\(block \[20, 30\) of 40\)"
    if category == "index":
        kwargs["pairing"] = np.arange(40)
        kwargs["pairing"][27] = 99
        return (
            source,
            target,
            camera,
            kwargs,
            (
                rf"pairing: 1 of 10 target index {block} outside \[0, 40\); first at "
                r"position 27 \(value 99\)"
            ),
        )
    if category == "nonfinite":
        source[27, 1, 0] = np.nan
        return (
            source,
            target,
            camera,
            kwargs,
            rf"source_3d: 1 of 10 pose {block} gives .* index 27",
        )
    if category == "degenerate":
        source[27, :, :2] = 0.0
        return (
            source,
            target,
            camera,
            kwargs,
            rf"source_3d: 1 of 10 pose {block} has zero extent.* index 27",
        )
    if category == "no_depth":
        source[27] = [[0, 0, 5], [0.1, 0.1, 6], [-0.1, -0.1, 6]]
        target[27] = [[0.0, 0.0], [0.5, 0.5], [0.5, 0.5]]
        kwargs["depth"] = "perspective"
        return (
            source,
            target,
            camera,
            kwargs,
            rf"depth: 1 of 10 pose {block} has no depth.* index 27",
        )
    if category == "behind":
        source[27] = [[0.0, 0.0, 3.0], [0.3, 0.3, 2.0], [0.0, 0.0, 3.0]]
        target[27] = [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
        kwargs["return_2d"] = True
        return (
            source,
            target,
            camera,
            kwargs,
            rf"source_3d: 1 of 10 aligned pose {block} has a joint.* index 27",
        )
    if category == "precision":
        target[27] *= 1e-9  # box and root: placed ~1e10 m out, beyond float32
        return (
            source.astype(np.float32),
            target,
            camera,
            kwargs,
            rf"target_2d, camera: 1 of 10 aligned pose {block} lies so far.* index 27",
        )
    if category == "target_nonfinite":
        target[27, 2, 1] = np.inf
        return (
            source,
            target,
            camera,
            kwargs,
            rf"target_2d: 1 of 10 target {block} has non-finite .* index 27",
        )
    if category == "target_degenerate":
        target[27] = 0.25
        return (
            source,
            target,
            camera,
            kwargs,
            rf"target_2d: 1 of 10 target {block} has a degenerate .* index 27",
        )
    if category == "camera":
        camera[27, 1] = -1.0
        return (
            source,
            target,
            camera,
            kwargs,
            rf"camera: 1 of 10 row {block} has a focal .* row 27",
        )
    assert category == "distortion"
    camera = np.concatenate([camera, np.zeros((40, 5))], axis=1)
    camera[27, 6] = np.nan
    return (
        source,
        target,
        camera,
        kwargs,
        rf"camera: 1 of 10 row {block} has a non-finite distortion.* row 27",
    )


@pytest.mark.parametrize(
    "category",
    [
        "index", "nonfinite", "degenerate", "no_depth", "behind", "precision",
        "target_nonfinite", "target_degenerate", "camera", "distortion",
    ],
)  # fmt: skip
def test_every_status_category_names_the_global_index(category):
    source, target, camera, kwargs, message = _category_case(category)
    lazy_target = category.startswith(("target", "camera", "distortion"))
    if lazy_target:
        target = da.from_array(target, chunks=10)
        camera = da.from_array(camera, chunks=(10, -1))
    result = gpa_arrays.dask.gpa(
        da.from_array(source, chunks=10), target, camera, **kwargs
    )
    with pytest.raises(ValueError, match=message):
        dask.compute(result, scheduler="synchronous")
