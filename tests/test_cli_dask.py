"""``gpa-arrays augment --dask / --workers / --scheduler`` equals the chunked loop.

Each case runs the command twice, without and with Dask, and compares the
outputs bit for bit. The default scheduler (threads) and an in-process
``distributed`` cluster (``--scheduler``, module-wide) cover the options;
``--workers 2`` starts the one cluster of worker processes of this module.
"""

import hashlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_cli import python_env

import gpa_arrays
from gpa_arrays import cli, synthetic

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

N, M = 2000, 1500


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment_dask")
    d = synthetic.make_domains(N, M, seed=4)
    np.save(root / "source.npy", d.source_3d)
    np.savez(root / "source.npz", source_3d=d.source_3d)
    np.savez(root / "target.npz", target_2d=d.target_2d, camera=d.target_camera)
    np.save(root / "target.npy", d.target_2d)
    np.save(root / "camera.npy", d.target_camera)
    index = np.random.default_rng(1).integers(0, M, size=N).astype(np.int32)
    np.save(root / "pairs.npy", index)
    return root, d


@pytest.fixture(scope="module")
def scheduler():
    """A ``distributed`` scheduler with two worker threads, in this process."""
    with distributed.LocalCluster(
        n_workers=2,
        processes=False,
        threads_per_worker=1,
        dashboard_address=":0",
    ) as cluster:
        yield cluster.scheduler_address


def augment(args, capsys=None):
    code = cli.main(["augment", *map(str, args)])
    captured = capsys.readouterr() if capsys is not None else None
    return code, captured


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_same_output(a, b):
    """Two outputs of augment hold the same arrays, bit for bit."""
    if str(a).endswith(".npy"):
        # the whole file: header, dtype and every byte of the poses
        assert digest(a) == digest(b)
        return
    with np.load(a) as x, np.load(b) as y:
        assert x.files == y.files == ["aligned_3d", "pair_index", "seed"]
        for key in x.files:
            assert x[key].dtype == y[key].dtype
            assert x[key].shape == y[key].shape
            assert x[key].tobytes() == y[key].tobytes(), key


#: Inputs and options of the comparisons (SOURCE, TARGET, OUT suffix, options).
CASES = {
    "npy-npz": (
        "source.npy", "target.npz", ".npz", ["--seed", "7", "--chunk", "333"],
    ),
    "npz-npy-float32-random": (
        "source.npz", "target.npy", ".npy",
        ["--camera", "{root}/camera.npy", "--dtype", "float32", "--pairing",
         "random", "--seed", "2", "--chunk", "700"],
    ),
    "pairing-file-roots": (
        "source.npy", "target.npz", ".npz",
        ["--pairing", "{root}/pairs.npy", "--root", "3", "--target-root", "5",
         "--seed", "11", "--chunk", "999", "--compress"],
    ),
    "layout-camera-row-numpy": (
        "source.npy", "target.npy", ".npy",
        ["--camera", "1.5,1.6,0.01,-0.02", "--target-layout", "3dhp-17",
         "--source-layout", "h36m-17", "--backend", "numpy", "--seed", "5",
         "--chunk", "640"],
    ),
}  # fmt: skip


def run_pair(root, tmp_path, case, dask_args, capsys):
    """Run one case without and with Dask; returns both outputs and stderr."""
    source, target, suffix, extra = CASES[case]
    extra = [e.format(root=root) for e in extra]
    inputs = [root / source, root / target]
    plain, with_dask = tmp_path / f"plain{suffix}", tmp_path / f"dask{suffix}"
    code, captured = augment([*inputs, "-o", plain, *extra], capsys)
    assert code == 0, captured.err
    code, captured = augment([*inputs, "-o", with_dask, *extra, *dask_args], capsys)
    assert code == 0, captured.err
    return plain, with_dask, captured


@pytest.mark.parametrize("case", list(CASES))
def test_dask_equals_chunked_loop(data, tmp_path, capsys, case):
    root, _ = data
    plain, with_dask, captured = run_pair(root, tmp_path, case, ["--dask"], capsys)
    assert_same_output(plain, with_dask)
    assert "Dask: threads scheduler" in captured.err
    assert f"wrote {with_dask}" in captured.out
    # nothing but the two outputs: no temporary or partial file is left
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [plain.name, with_dask.name]
    )


@pytest.mark.parametrize("case", ["npy-npz", "npz-npy-float32-random"])
def test_scheduler_equals_chunked_loop(data, tmp_path, capsys, scheduler, case):
    root, _ = data
    plain, with_dask, captured = run_pair(
        root, tmp_path, case, ["--scheduler", scheduler], capsys
    )
    assert_same_output(plain, with_dask)
    assert f"Dask: scheduler {scheduler}" in captured.err


@pytest.mark.slow  # starts a cluster of worker processes
def test_workers_equal_chunked_loop_and_in_memory_call(data, tmp_path, capsys):
    # the one cluster of worker processes of this module: .npy SOURCE read by
    # the workers through memory maps, explicit pairing, .npz output
    root, d = data
    plain, with_dask, captured = run_pair(
        root, tmp_path, "pairing-file-roots", ["--workers", "2"], capsys
    )
    assert_same_output(plain, with_dask)
    assert "Dask: local cluster of 2 worker process(es)" in captured.err
    # the progress bar follows the blocks as they are written
    assert f"{N}/{N}" in captured.err
    with np.load(with_dask) as result:
        index = np.load(root / "pairs.npy")
        want = gpa_arrays.gpa(
            d.source_3d, d.target_2d, d.target_camera, pairing=index, root=3,
            target_root=5,
        )  # fmt: skip
        np.testing.assert_array_equal(result["aligned_3d"], want)
        np.testing.assert_array_equal(result["pair_index"], index)


def test_fresh_seed_is_drawn_once_and_printed(data, tmp_path, capsys, scheduler):
    root, d = data
    out = tmp_path / "o.npz"
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", out, "--chunk", 450,
         "--scheduler", scheduler],
        capsys,
    )  # fmt: skip
    assert code == 0, captured.err
    with np.load(out) as result:
        seed = int(result["seed"])
        assert f"seed {seed}" in captured.err
        want = gpa_arrays.gpa(d.source_3d, d.target_2d, d.target_camera, seed=seed)
        np.testing.assert_array_equal(result["aligned_3d"], want)
        np.testing.assert_array_equal(
            result["pair_index"], gpa_arrays.pair_indices(N, M, seed=seed)
        )


def test_empty_source(data, tmp_path, capsys):
    root, _ = data
    np.save(tmp_path / "empty.npy", np.empty((0, 17, 3)))
    for extra in ([], ["--dask"]):
        out = tmp_path / f"o{len(extra)}.npy"
        code, captured = augment(
            [tmp_path / "empty.npy", root / "target.npz", "-o", out, *extra], capsys
        )
        assert code == 0, captured.err
    assert digest(tmp_path / "o0.npy") == digest(tmp_path / "o1.npy")


# --- errors --------------------------------------------------------------------------


def error_line(captured):
    line = captured.err.strip().splitlines()[-1]
    assert line.startswith("gpa-arrays augment: error: "), captured.err
    return line


@pytest.mark.parametrize("where", ["--dask", "--scheduler"])
def test_bad_pose_fails_cleanly_and_atomically(
    data, tmp_path, capsys, scheduler, where
):
    # the worker's ValueError reaches the user as one line; OUT keeps its old
    # content and no temporary file is left
    _, d = data
    source = d.source_3d.copy()
    source[1234, 4, 1] = np.nan  # in the third block of 500
    np.save(tmp_path / "bad.npy", source)
    np.savez(tmp_path / "t.npz", target_2d=d.target_2d, camera=d.target_camera)
    out = tmp_path / "out.npz"
    out.write_bytes(b"previous result")
    before = {p.name: digest(p) for p in tmp_path.iterdir()}
    dask_args = ["--dask"] if where == "--dask" else ["--scheduler", scheduler]
    code, captured = augment(
        [tmp_path / "bad.npy", tmp_path / "t.npz", "-o", out, "--chunk", 500,
         *dask_args],
        capsys,
    )  # fmt: skip
    assert code == 2
    line = error_line(captured)
    assert re.search(
        r"source_3d: 1 of 500 pose \(block \[1000, 1500\) of 2000\) gives "
        r"non-finite output .* first at index 1234",
        line,
    ), line
    assert {p.name: digest(p) for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize(
    ("dask_args", "message"),
    [
        (
            ["--dask", "--mode", "poseda"],
            "--dask: --mode poseda is not supported with Dask",
        ),
        (
            ["--workers", "3", "--mode", "poseda"],
            "--workers 3: --mode poseda is not supported with Dask",
        ),
        (
            ["--dask", "--depth", "perspective"],
            "--depth perspective: not supported",
        ),
        (
            ["--dask", "--pairing", "identity"],
            "pairing: 'identity' needs as many targets as sources",
        ),
    ],
)
def test_unsupported_options(data, tmp_path, capsys, dask_args, message):
    root, _ = data
    if "perspective" in dask_args and "perspective" not in cli._depth_choices():
        dask_args = ["--dask", "--depth", "weak", "--mode", "poseda"]
        message = "--dask: --mode poseda is not supported with Dask"
    out = tmp_path / "o.npy"
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", out, *dask_args], capsys
    )
    assert code == 2
    assert message in error_line(captured)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("hidden", "dask_args", "option"),
    [
        ("dask", ["--dask"], "--dask"),
        ("dask", ["--scheduler", "tcp://127.0.0.1:1"], "--scheduler tcp://127.0.0.1:1"),
        ("distributed", ["--workers", "2"], "--workers 2"),
    ],
)
def test_without_dask_installed(
    data, tmp_path, capsys, monkeypatch, hidden, dask_args, option
):
    root, _ = data
    monkeypatch.setitem(sys.modules, hidden, None)  # import -> ImportError
    out = tmp_path / "o.npy"
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", out, *dask_args], capsys
    )
    assert code == 2
    line = error_line(captured)
    assert f"{option} needs Dask and distributed, which are not installed" in line
    assert line.endswith('pip install "gpa-arrays[dask]"')
    assert not out.exists()


def test_unreachable_scheduler(data, tmp_path, capsys):
    root, _ = data
    out = tmp_path / "o.npy"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code, captured = augment(
            [root / "source.npy", root / "target.npz", "-o", out, "--scheduler",
             "tcp://127.0.0.1:1"],
            capsys,
        )  # fmt: skip
    assert code == 2
    line = error_line(captured)
    assert "--scheduler tcp://127.0.0.1:1: cannot connect to the scheduler" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("dask_args", "message"),
    [
        (["--workers", "0"], "--workers: expected a positive integer, got 0"),
        (["--workers", "two"], "--workers: expected a positive integer, got 'two'"),
        (
            ["--workers", "2", "--scheduler", "tcp://x:1"],
            "argument --scheduler: not allowed with argument --workers",
        ),
    ],
)
def test_bad_dask_arguments(capsys, dask_args, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(["augment", "a.npy", "b.npz", "-o", "c.npy", *dask_args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_help_documents_the_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["augment", "--help"])
    out = capsys.readouterr().out
    for text in ("--dask", "--workers N", "--scheduler ADDRESS", "gpa-arrays[dask]"):
        assert text in out


@pytest.mark.slow  # a source larger than a memory limit, through a subprocess
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA")
def test_dask_streams_a_source_larger_than_its_memory_limit(tmp_path):
    # As tests/test_cli.py's test of the chunked loop: the source file is
    # several times larger than the private memory the process may still
    # allocate, so neither it nor the result may be held whole.
    code = textwrap.dedent(f"""
        import resource, sys
        import dask
        import numpy as np
        from gpa_arrays import cli, synthetic
        d = synthetic.make_domains(20_000, 5_000, seed=0)
        np.savez({str(tmp_path / "t.npz")!r}, target_2d=d.target_2d, camera=d.target_camera)
        n = 800_000  # 800 k poses x 17 x 3 float32 = 163 MB
        src = np.lib.format.open_memmap({str(tmp_path / "s.npy")!r}, mode="w+",
                                        dtype=np.float32, shape=(n, 17, 3))
        block = d.source_3d.astype(np.float32)
        for i in range(0, n, len(block)):
            src[i : i + len(block)] = block[: n - i]
        src.flush()
        del src
        args = ["augment", {str(tmp_path / "s.npy")!r}, {str(tmp_path / "t.npz")!r},
                "-o", {str(tmp_path / "o.npy")!r}, "--seed", "1", "--no-progress",
                "--dask", "--chunk", "50000"]
        # two blocks of 10 MB at a time, whatever the number of cores
        dask.config.set(num_workers=2)
        # warm up: import Dask, compile the kernels, start the thread pools
        np.save({str(tmp_path / "small.npy")!r}, block[:5000])
        assert cli.main(args[:1] + [{str(tmp_path / "small.npy")!r}] + args[2:]) == 0
        with open("/proc/self/status") as f:
            data = next(int(l.split()[1]) for l in f if l.startswith("VmData"))
        limit = data * 1024 + 80 * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        try:
            np.ones(100 * 2**20, dtype=np.uint8)
            print("limit not enforced")
            sys.exit(0)
        except MemoryError:
            pass
        print("rc", cli.main(args))
    """)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    if "limit not enforced" in result.stdout:
        pytest.skip("RLIMIT_DATA is not enforced here")
    assert "rc 0" in result.stdout, result.stdout + result.stderr
    out = np.load(tmp_path / "o.npy", mmap_mode="r")
    assert out.shape == (800_000, 17, 3) and out.dtype == np.float32
    # spot-check two blocks against the in-memory call on those poses
    source = np.load(tmp_path / "s.npy", mmap_mode="r")
    with np.load(tmp_path / "t.npz") as t:
        target, camera = t["target_2d"], t["camera"]
    pairs = gpa_arrays.pair_indices(800_000, 5000, seed=1)
    for offset in (0, 654_321):
        rows = slice(offset, offset + 1000)
        want = gpa_arrays.gpa(
            np.array(source[rows]), target[pairs[rows]], camera[pairs[rows]],
            pairing="identity",
        )  # fmt: skip
        np.testing.assert_array_equal(out[rows], want)


def test_dask_clips_equal_the_chunked_loop(tmp_path, capsys):
    rng = np.random.default_rng(4)
    clips = rng.normal(scale=0.3, size=(300, 5, 17, 3))
    clips[..., 2] = 5.0 + 0.5 * clips[..., 2]
    target = rng.uniform(-0.5, 0.5, size=(200, 17, 2))
    camera = np.tile([1.5, 1.5, 0.0, 0.0], (200, 1))
    np.save(tmp_path / "clips.npy", clips)
    np.savez(tmp_path / "target.npz", target_2d=target, camera=camera)
    outputs = []
    for extra in ([], ["--dask"]):
        out = tmp_path / f"out{len(outputs)}.npy"
        code = cli.main(
            ["augment", str(tmp_path / "clips.npy"), str(tmp_path / "target.npz"),
             "-o", str(out), "--seed", "3", "--chunk", "64", "--reference-frame",
             "1", *extra]
        )  # fmt: skip
        assert code == 0, capsys.readouterr().err
        outputs.append(np.load(out))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    want = gpa_arrays.gpa(clips, target, camera, seed=3, reference_frame=1)
    np.testing.assert_array_equal(outputs[0], want)
