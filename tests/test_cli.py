"""The gpa-arrays command line: every command, exit codes, outputs, atomic writes."""

import hashlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gpa_arrays
from gpa_arrays import _api, _files, cli, synthetic
from gpa_arrays._pairing import resolve_pairing

REPO = Path(gpa_arrays.__file__).resolve().parent.parent
HAVE_MATPLOTLIB = cli._have("matplotlib")


def python_env():
    """Environment in which a child Python imports this checkout of gpa_arrays."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env


def run_module(args, cwd, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "gpa_arrays", *args],
        cwd=cwd,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- demo ----------------------------------------------------------------------------


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib not installed")
def test_demo_runs_as_a_module_and_writes_the_figure(tmp_path):
    result = run_module(["demo", "-n", "3000", "--seed", "1"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("2D scale", "root x", "root y", "W1 distance to target", "drop"):
        assert text in out
    figure = tmp_path / cli.DEMO_FIGURE
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"figure: {cli.DEMO_FIGURE}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [cli.DEMO_FIGURE]


def test_console_script_is_installed_and_runs(tmp_path):
    script = Path(sys.executable).with_name("gpa-arrays")
    if not script.exists():
        pytest.skip("gpa-arrays is not installed in this environment")
    result = subprocess.run(
        [str(script), "demo", "-n", "1500", "--no-figure"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "root y" in result.stdout


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_demo_acceptance_w1_drops(seed):
    # the acceptance on the built-in domains (smaller than the demo's
    # default of 100,000 source poses to keep the test fast)
    result = cli.demo_statistics(20_000, seed=seed)
    before, after = result["before"], result["after"]
    assert before["root_x"] >= 20 * after["root_x"]
    assert before["root_y"] >= 20 * after["root_y"]
    assert before["scale"] >= 5 * after["scale"]
    assert result["n_target"] == 13_333


def test_demo_table_format():
    result = cli.demo_statistics(2000, seed=4, backend="numpy")
    table = cli.format_table(result)
    lines = table.splitlines()
    assert len(lines) == 5
    assert lines[2].startswith("2D scale")
    cells = lines[3].split()
    # root x: source mean, sigma, after mean, sigma, target mean, sigma, W1 x2, drop
    assert len(cells) == 2 + 9
    assert float(cells[2]) == pytest.approx(result["source"].root_x.mean(), abs=5e-4)
    assert float(cells[8]) == pytest.approx(result["before"]["root_x"], abs=5e-5)
    assert cells[-1].endswith("x")


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib not installed")
def test_demo_output_options(tmp_path, capsys):
    path = tmp_path / "fig.pdf"
    assert cli.main(["demo", "-n", "1500", "-o", str(path)]) == 0
    assert path.read_bytes()[:5] == b"%PDF-"
    assert (
        cli.main(["demo", "-n", "1500", "--no-figure", "-o", str(tmp_path / "x.png")])
        == 0
    )
    assert not (tmp_path / "x.png").exists()
    assert cli.main(["demo", "-n", "1500", "-o", str(tmp_path / "fig.txt")]) == 2
    assert cli.main(["demo", "-n", "1500", "-o", str(tmp_path / "no" / "f.png")]) == 2
    err = capsys.readouterr().err
    assert "gpa-arrays demo: error: --output" in err
    assert "does not exist" in err


def test_demo_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_have", lambda name: False)
    assert cli.main(["demo", "-n", "1500"]) == 0
    captured = capsys.readouterr()
    assert "figure skipped, matplotlib is not installed" in captured.err
    assert "root x" in captured.out
    assert list(tmp_path.iterdir()) == []
    assert cli.main(["demo", "-n", "1500", "-o", "f.png"]) == 2
    assert "matplotlib is needed" in capsys.readouterr().err


def test_demo_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "-n", "0"])
    assert exc.value.code == 2
    assert cli.main(["demo", "-n", "100", "--backend", "fortran"]) == 2
    assert "backend" in capsys.readouterr().err


# --- augment -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment")
    d = synthetic.make_domains(5000, 3000, seed=2)
    np.save(root / "source.npy", d.source_3d)
    np.savez(root / "source.npz", source_3d=d.source_3d, other=np.zeros(3))
    np.savez(root / "target.npz", target_2d=d.target_2d, camera=d.target_camera)
    np.save(root / "target.npy", d.target_2d)
    np.save(root / "camera.npy", d.target_camera)
    return root, d


def augment(args, capsys=None):
    code = cli.main(["augment", *map(str, args)])
    captured = capsys.readouterr() if capsys is not None else None
    return code, captured


def test_augment_chunked_equals_in_memory_bit_for_bit(data, tmp_path, capsys):
    root, d = data
    out = tmp_path / "out.npz"
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", out, "--seed", 7,
         "--chunk", 1234],
        capsys,
    )  # fmt: skip
    assert code == 0, captured.err
    with np.load(out) as result:
        assert sorted(result.files) == ["aligned_3d", "pair_index", "seed"]
        want = gpa_arrays.gpa(d.source_3d, d.target_2d, d.target_camera, seed=7)
        np.testing.assert_array_equal(result["aligned_3d"], want)
        np.testing.assert_array_equal(
            result["pair_index"], gpa_arrays.pair_indices(5000, 3000, seed=7)
        )
        assert result["seed"].dtype == np.uint64 and int(result["seed"]) == 7
    # a multi-chunk run shows progress (tqdm or the built-in bar)
    assert "5000/5000" in captured.err
    assert "seed 7" in captured.err and "5 chunk(s)" in captured.err
    assert f"wrote {out}" in captured.out


def test_augment_builtin_progress_bar_without_tqdm(data, tmp_path, capsys, monkeypatch):
    root, _ = data
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", tmp_path / "o.npy",
         "--chunk", 1000, "--seed", 1],
        capsys,
    )  # fmt: skip
    assert code == 0
    assert "aligning: 100% |" + "#" * 30 + "| 5000/5000 poses" in captured.err


def test_augment_progress_defaults(data, tmp_path, capsys):
    root, _ = data
    # one chunk: no bar unless asked
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", tmp_path / "a.npy"], capsys
    )
    assert code == 0 and "5000/5000" not in captured.err
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", tmp_path / "b.npy",
         "--progress"],
        capsys,
    )  # fmt: skip
    assert code == 0 and "5000/5000" in captured.err
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", tmp_path / "c.npy",
         "--chunk", 100, "--no-progress"],
        capsys,
    )  # fmt: skip
    assert code == 0 and "5000/5000" not in captured.err


def test_augment_fresh_seed_is_printed_and_reproducible(data, tmp_path, capsys):
    root, d = data
    code, captured = augment(
        [root / "source.npz", root / "target.npz", "-o", tmp_path / "o.npz"], capsys
    )
    assert code == 0
    with np.load(tmp_path / "o.npz") as result:
        seed = int(result["seed"])
        assert f"seed {seed}" in captured.err
        want = gpa_arrays.gpa(d.source_3d, d.target_2d, d.target_camera, seed=seed)
        np.testing.assert_array_equal(result["aligned_3d"], want)


@pytest.mark.parametrize(
    ("extra", "kwargs"),
    [
        (["--camera", "1.5,1.6,0.01,-0.02"], {"camera": [1.5, 1.6, 0.01, -0.02]}),
        (["--camera", "{root}/camera.npy"], {}),
        (["--camera", "{root}/camera.npy", "--dtype", "float32"], {"dtype": "f4"}),
        (
            ["--camera", "{root}/camera.npy", "--pairing", "random"],
            {"pairing": "random"},
        ),
        (["--camera", "{root}/camera.npy", "--backend", "numpy"], {"backend": "numpy"}),
        (
            ["--camera", "{root}/camera.npy", "--root", "3", "--target-root", "5"],
            {"root": 3, "target_root": 5},
        ),
        (
            ["--camera", "{root}/camera.npy", "--target-layout", "3dhp-17"],
            {"target_root": 14},
        ),
    ],
)
def test_augment_options(data, tmp_path, extra, kwargs):
    root, d = data
    out = tmp_path / "out.npy"
    extra = [e.format(root=root) for e in extra]
    code, _ = augment(
        [root / "source.npy", root / "target.npy", "-o", out, "--seed", 3,
         "--chunk", 999, *extra]
    )  # fmt: skip
    assert code == 0
    camera = kwargs.pop("camera", d.target_camera)
    source = d.source_3d.astype(kwargs.pop("dtype", "f8"))
    want = gpa_arrays.gpa(source, d.target_2d, camera, seed=3, **kwargs)
    got = np.load(out)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_augment_explicit_pairing_identity_and_poseda(data, tmp_path):
    root, d = data
    index = np.random.default_rng(0).integers(0, 3000, size=5000).astype(np.int32)
    np.save(tmp_path / "pairs.npy", index)
    out = tmp_path / "o.npz"
    code, _ = augment(
        [root / "source.npy", root / "target.npz", "-o", out, "--pairing",
         tmp_path / "pairs.npy", "--chunk", 2000, "--compress"]
    )  # fmt: skip
    assert code == 0
    with np.load(out) as result:
        np.testing.assert_array_equal(result["pair_index"], index)
        want = gpa_arrays.gpa(d.source_3d, d.target_2d, d.target_camera, pairing=index)
        np.testing.assert_array_equal(result["aligned_3d"], want)
    # N = M cases: identity pairing, and the published arithmetic
    np.save(tmp_path / "src.npy", d.source_3d[:3000])
    for mode, pairing in (("paired", "identity"), ("poseda", "permutation")):
        code, _ = augment(
            [tmp_path / "src.npy", root / "target.npz", "-o", out, "--mode", mode,
             "--pairing", pairing, "--seed", 9, "--chunk", 700]
        )  # fmt: skip
        assert code == 0
        with np.load(out) as result:
            want = gpa_arrays.gpa(
                d.source_3d[:3000], d.target_2d, d.target_camera, mode=mode,
                pairing=pairing, seed=9,
            )  # fmt: skip
            np.testing.assert_array_equal(result["aligned_3d"], want)


def test_augment_reads_npy_memory_mapped(data):
    root, _ = data
    array = _files.load(str(root / "source.npy"), None, "SOURCE", "source_3d")
    assert isinstance(array, np.memmap)
    assert not array.flags.writeable


@pytest.mark.slow  # a source larger than a memory limit, through a subprocess
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA")
def test_augment_streams_a_source_larger_than_its_memory_limit(tmp_path):
    # The source file is several times larger than the private memory the
    # process may still allocate (RLIMIT_DATA counts private anonymous memory,
    # not file mappings): loading it would fail, streaming it must not.
    code = textwrap.dedent(f"""
        import resource, sys
        import numpy as np
        from gpa_arrays import cli, synthetic
        d = synthetic.make_domains(20_000, 5_000, seed=0)
        np.savez({str(tmp_path / "t.npz")!r}, target_2d=d.target_2d, camera=d.target_camera)
        n = 1_600_000  # 1.6 M poses x 17 x 3 float32 = 326 MB
        src = np.lib.format.open_memmap({str(tmp_path / "s.npy")!r}, mode="w+",
                                        dtype=np.float32, shape=(n, 17, 3))
        block = d.source_3d.astype(np.float32)
        for i in range(0, n, len(block)):
            src[i : i + len(block)] = block[: n - i]
        src.flush()
        del src
        args = ["augment", {str(tmp_path / "s.npy")!r}, {str(tmp_path / "t.npz")!r},
                "-o", {str(tmp_path / "o.npy")!r}, "--seed", "1", "--no-progress"]
        # warm up: compile the kernels, start the thread pool
        np.save({str(tmp_path / "small.npy")!r}, block[:5000])
        assert cli.main(args[:1] + [{str(tmp_path / "small.npy")!r}] + args[2:]) == 0
        with open("/proc/self/status") as f:
            data = next(int(l.split()[1]) for l in f if l.startswith("VmData"))
        limit = data * 1024 + 120 * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        try:
            np.ones(200 * 2**20, dtype=np.uint8)
            print("limit not enforced")
            sys.exit(0)
        except MemoryError:
            pass
        print("rc", cli.main(args + ["--chunk", "100000"]))
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
    assert out.shape == (1_600_000, 17, 3) and out.dtype == np.float32
    # spot-check two chunks against the in-memory result of those poses
    source = np.load(tmp_path / "s.npy", mmap_mode="r")
    with np.load(tmp_path / "t.npz") as t:
        targets = gpa_arrays.prepare_targets(t["target_2d"], t["camera"], dtype="f4")
    spec = resolve_pairing("permutation", 1_600_000, 5000, 1)
    for offset in (0, 1_234_567):
        block = np.array(source[offset : offset + 1000])
        want = _api._gpa_block(
            block, targets._records, spec.chunk(offset, 1000), 0, "auto", True
        )
        np.testing.assert_array_equal(out[offset : offset + 1000], want)


def make_bad(tmp_path, d, what):
    """Inputs with one problem; returns (args, expected message)."""
    src, tgt = tmp_path / "bad_source.npy", tmp_path / "target.npz"
    source, target, camera = d.source_3d.copy(), d.target_2d.copy(), d.target_camera
    message = None
    if what == "nan source":
        source[3333, 4, 1] = np.nan  # in the third chunk of 1500
        message = r"poses \[3000, 4500\) of SOURCE: source_3d: 1 of 1500 pose \(block \[3000, 4500\) of \d+\) gives non-finite output .* first at index 3333"
    elif what == "inf target":
        target[2222, 0, 0] = np.inf
        message = (
            "targets .* of TARGET: target_2d: 1 of .* non-finite .* first at index"
        )
    elif what == "bad camera":
        camera = camera.copy()
        camera[10, 0] = -1.0
        message = "camera: 1 of .* focal length"
    elif what == "source shape":
        source = source[..., :2]
        message = (
            r"source_3d: expected shape \(N, J, 3\) \(poses, joints, xyz\) or "
            r"\(N, T, J, 3\) \(clips\), got \(5000, 17, 2\)"
        )
    elif what == "target shape":
        target = target[:, :, :1]
        message = (
            r"target_2d: expected shape \(M, Jt, 2\) or \(M, Tt, Jt, 2\), got "
            r"\(3000, 17, 1\)"
        )
    elif what == "camera shape":
        camera = camera[:, :3]
        message = r"camera: expected shape \(4,\), \(9,\), \(3000, 4\) or \(3000, 9\)"
    elif what == "source dtype":
        source = source.astype(complex)
        message = "source_3d: expected a real floating or integer dtype, got complex128"
    np.save(src, source)
    np.savez(tgt, target_2d=target, camera=camera)
    return [src, tgt], message


@pytest.mark.parametrize(
    "what",
    ["nan source", "inf target", "bad camera", "source shape", "target shape",
     "camera shape", "source dtype"],
)  # fmt: skip
def test_augment_bad_data_fails_cleanly_and_atomically(data, tmp_path, capsys, what):
    _, d = data
    inputs, message = make_bad(tmp_path, d, what)
    out = tmp_path / "out.npz"
    out.write_bytes(b"previous result")
    before = {p.name: digest(p) for p in tmp_path.iterdir()}
    code, captured = augment([*inputs, "-o", out, "--chunk", 1500], capsys)
    assert code == 2
    err = captured.err.strip().splitlines()[-1]
    assert err.startswith("gpa-arrays augment: error: ")
    assert re.search(message, err), err
    # the previous output and the inputs are untouched, no temporary file is left
    after = {p.name: digest(p) for p in tmp_path.iterdir()}
    assert after == before


def test_augment_interrupted_leaves_nothing(data, tmp_path, capsys, monkeypatch):
    root, _ = data
    calls = []

    def interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = _api._gpa_block
    monkeypatch.setattr(_api, "_gpa_block", interrupt)
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", tmp_path / "o.npy",
         "--chunk", 1000],
        capsys,
    )  # fmt: skip
    assert code == 130
    assert "interrupted" in captured.err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{root}/source.npy", "{root}/nope.npz"], "TARGET .*nope.npz: no such file"),
        (
            ["{root}/source.npz", "{root}/target.npz", "--source-key", "pose"],
            r"SOURCE .*source.npz: no array 'pose' \(keys: source_3d, other\)",
        ),
        (
            ["{root}/source.npy", "{root}/target.npz", "--camera-key", "K"],
            "TARGET .*: no array 'K' .*keys: target_2d, camera",
        ),
        (["{root}/source.npy", "{root}/target.npy"], "a .npy target needs --camera"),
        (
            ["{root}/source.npy", "{root}/target.npz", "--camera", "1,2,3"],
            r"--camera '1,2,3': camera: expected shape \(4,\), \(9,\), \(3000, 4\) "
            r"or \(3000, 9\) \(one row per target pose\), got \(3,\)",
        ),
        (
            ["{root}/source.npy", "{root}/target.npz", "--camera", "a,b"],
            "--camera 'a,b': expected a .npy file or 4 or 9 comma-separated numbers",
        ),
        (
            ["{root}/source.npy", "{root}/target.npz", "--source-layout", "h36m-16"],
            "source_3d has 17 joints, layout h36m-16 has 16",
        ),
        (
            ["{root}/source.npy", "{root}/target.npz", "--root", "17"],
            r"--root: expected a joint index in \[0, 17\), got 17",
        ),
        (
            ["{root}/source.npy", "{root}/target.npz", "--pairing", "sorted"],
            "--pairing 'sorted': expected permutation, random, identity or a .npy",
        ),
        (
            ["{root}/source.npy", "{root}/target.npz", "--pairing", "identity"],
            "pairing: 'identity' needs as many targets as sources",
        ),
        (
            [
                "{root}/source.npy",
                "{root}/target.npz",
                "--pairing",
                "{root}/camera.npy",
            ],
            r"--pairing .*camera.npy: expected \(5000,\) integer target indices",
        ),
        (
            ["{root}/source.npy", "{root}/target.npz", "--mode", "poseda"],
            "mode='poseda' needs as many targets as sources",
        ),
        (
            ["{root}/target.npz", "{root}/target.npz"],
            "SOURCE .*target.npz: no array 'source_3d'",
        ),
        (
            ["{root}/missing.npy", "{root}/target.npz"],
            "SOURCE .*missing.npy: no such file",
        ),
    ],
)
def test_augment_input_errors(data, tmp_path, capsys, args, message):
    root, _ = data
    out = tmp_path / "o.npz"
    args = [a.format(root=root) for a in args]
    code, captured = augment([*args, "-o", out], capsys)
    assert code == 2
    (line,) = captured.err.strip().splitlines()[-1:]
    assert line.startswith("gpa-arrays augment: error: ")
    assert re.search(message, line), line
    assert not out.exists()
    assert [p for p in tmp_path.iterdir()] == []


def test_augment_unknown_suffix_and_output_is_input(data, capsys):
    root, _ = data
    before = digest(root / "source.npy")
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", root / "source.npy"], capsys
    )
    assert code == 2 and "is an input file" in captured.err
    assert digest(root / "source.npy") == before
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", root / "x.csv"], capsys
    )
    assert code == 2 and "expected a .npy or .npz file name" in captured.err
    (root / "source.txt").write_bytes(b"not numpy")
    code, captured = augment(
        [root / "source.txt", root / "target.npz", "-o", root / "y.npy"], capsys
    )
    assert code == 2 and "expected a .npy or .npz file" in captured.err


def test_augment_pairing_out_of_range_stops_before_writing(data, tmp_path, capsys):
    root, _ = data
    index = np.zeros(5000, dtype=np.int64)
    index[4321] = 3000
    np.save(tmp_path / "pairs.npy", index)
    out = tmp_path / "o.npz"
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", out, "--pairing",
         tmp_path / "pairs.npy"],
        capsys,
    )  # fmt: skip
    assert code == 2
    assert "outside [0, 3000); first at position 4321 (value 3000)" in captured.err
    assert not out.exists()


def test_augment_depth_choices_follow_gpa():
    parser = cli._parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["augment", "a.npy", "b.npz", "-o", "c.npy", "--depth", "x"])
    args = parser.parse_args(["augment", "a.npy", "b.npz", "-o", "c.npy"])
    assert args.depth == "weak"
    assert "weak" in cli._depth_choices()


def test_output_file_mode_follows_umask(data, tmp_path):
    root, _ = data
    out = tmp_path / "o.npy"
    code, _ = augment([root / "source.npy", root / "target.npz", "-o", out])
    assert code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


# --- the internal block entry point --------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("pairing", ["permutation", "random", "array"])
def test_gpa_block_chunks_equal_one_call(rng, backend, pairing):
    d = synthetic.make_domains(2500, 1700, seed=5)
    if pairing == "array":
        pairing = rng.integers(0, 1700, size=2500)
    whole = gpa_arrays.gpa(
        d.source_3d, d.target_2d, d.target_camera, pairing=pairing, seed=8,
        backend=backend,
    )  # fmt: skip
    targets = gpa_arrays.prepare_targets(d.target_2d, d.target_camera, backend=backend)
    spec = resolve_pairing(pairing, 2500, 1700, 8)
    for chunk in (1, 333, 1024, 2500):
        out = np.empty_like(whole)
        for offset in range(0, 2500, chunk):
            count = min(chunk, 2500 - offset)
            _api._gpa_block(
                d.source_3d[offset : offset + count], targets._records,
                spec.chunk(offset, count), 0, backend, True,
                out=out[offset : offset + count],
            )  # fmt: skip
        np.testing.assert_array_equal(out, whole)


def test_gpa_block_errors_name_global_indices(rng):
    d = synthetic.make_domains(100, 50, seed=1)
    targets = gpa_arrays.prepare_targets(d.target_2d, d.target_camera)
    source = d.source_3d.copy()
    source[73, 2, 2] = np.inf
    spec = resolve_pairing("permutation", 100, 50, 0)
    block = source[60:90]
    with pytest.raises(
        ValueError,
        match=r"1 of 30 pose \(block \[60, 90\) of 100\) gives .* first at index 73",
    ):
        _api._gpa_block(block, targets._records, spec.chunk(60, 30), 0, "auto", True)
    index = np.zeros(100, dtype=np.int64)
    index[81] = 50
    spec = resolve_pairing(index, 100, 50, None)
    with pytest.raises(ValueError, match=r"first at position 81 \(value 50\)"):
        _api._gpa_block(
            d.source_3d[80:90], targets._records, spec.chunk(80, 10), 0, "auto", True
        )
    with pytest.raises(ValueError, match="block of 5 poses"):
        _api._gpa_block(
            d.source_3d[:5], targets._records, spec.chunk(0, 6), 0, "auto", True
        )
    with pytest.raises(TypeError, match="out: expected shape"):
        _api._gpa_block(
            d.source_3d[:5], targets._records, spec.chunk(0, 5), 0, "auto", True,
            out=np.empty((5, 17, 3), "f4"),
        )  # fmt: skip


# --- info, bench, version -----------------------------------------------------------


def test_info(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gpa-arrays ")
    for key in ("python", "numpy", "backends", "numba", "cupy", "torch", "optional"):
        assert any(line.startswith(key) for line in out.splitlines()), key
    assert "numpy" in next(
        line for line in out.splitlines() if line.startswith("backends")
    )


def test_info_without_torch_or_cupy_imports_neither(tmp_path):
    # info must not try to import what is absent; simulate absence by making
    # find_spec report nothing for torch and cupy
    code = textwrap.dedent("""
        import importlib.util, sys
        real = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: (
            None if name.split(".")[0] in ("torch", "cupy") else real(name, *a)
        )
        from gpa_arrays import cli
        assert cli._torch_line() == "not installed", cli._torch_line()
        assert cli._cupy_line() == "not installed"
        print([m for m in ("torch", "cupy") if m in sys.modules])
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], env=python_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_bench(capsys):
    args = ["bench", "-n", "3000", "--repeat", "1", "--dtype", "float32",
            "--small", "64", "--no-torch"]  # fmt: skip
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "N = M = 3,000" in out
    assert "stream bound" in out and "prepared, out" in out


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("gpa-arrays ")
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["augment", "--help"])
    assert exc.value.code == 0
    assert "File formats" in capsys.readouterr().out


def test_submodules_import_nothing_heavy():
    code = textwrap.dedent("""
        import sys
        import gpa_arrays
        gpa_arrays.stats, gpa_arrays.synthetic, gpa_arrays.plot, gpa_arrays.cli
        from gpa_arrays import cli
        cli._parser()
        heavy = ("torch", "cupy", "jax", "numba", "matplotlib", "scipy", "tqdm")
        print([m for m in heavy if m in sys.modules])
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], env=python_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def clip_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(3)
    d = synthetic.make_domains(600, 400, seed=3)
    walk = rng.normal(scale=0.03, size=(600, 7, 1, 3)).cumsum(axis=1)
    clips = d.source_3d[:, None] + walk
    target_clips = d.target_2d[:, None] + rng.normal(scale=0.005, size=(400, 5, 17, 2))
    np.save(root / "clips.npy", clips)
    np.savez(root / "target_clips.npz", target_2d=target_clips, camera=d.target_camera)
    np.savez(root / "target.npz", target_2d=d.target_2d, camera=d.target_camera)
    return root, clips, target_clips, d


@pytest.mark.parametrize("frame", [None, 0, -2])
@pytest.mark.parametrize("target", ["target.npz", "target_clips.npz"])
def test_augment_clips_equal_in_memory_bit_for_bit(clip_data, tmp_path, capsys,
                                                   frame, target):  # fmt: skip
    root, clips, target_clips, d = clip_data
    out = tmp_path / "out.npz"
    extra = [] if frame is None else ["--reference-frame", frame]
    code, captured = augment(
        [root / "clips.npy", root / target, "-o", out, "--seed", 5, "--chunk", 128,
         *extra],
        capsys,
    )  # fmt: skip
    assert code == 0, captured.err
    targets = target_clips if target == "target_clips.npz" else d.target_2d
    want = gpa_arrays.gpa(
        clips, targets, d.target_camera, seed=5, reference_frame=frame
    )
    with np.load(out) as result:
        np.testing.assert_array_equal(result["aligned_3d"], want)
        np.testing.assert_array_equal(
            result["pair_index"], gpa_arrays.pair_indices(600, 400, seed=5)
        )
    assert "600 source clips" in captured.err
    assert "(600, 7, 17, 3)" in captured.out


def test_augment_clip_errors(clip_data, data, tmp_path, capsys):
    root, *_ = clip_data
    cases = [
        (["--reference-frame", 7], r"--reference-frame: expected a frame index in "),
        (["--mode", "poseda"], "--mode poseda: .* clips need the paired mode"),
    ]
    for extra, message in cases:
        code, captured = augment(
            [root / "clips.npy", root / "target.npz", "-o", tmp_path / "o.npy",
             *extra],
            capsys,
        )  # fmt: skip
        assert code == 2
        assert re.search(message, captured.err), captured.err
    poses, _ = data
    code, captured = augment(
        [poses / "source.npy", poses / "target.npz", "-o", tmp_path / "o.npy",
         "--reference-frame", 0],
        capsys,
    )  # fmt: skip
    assert code == 2 and "--reference-frame: only for clips" in captured.err
    assert list(tmp_path.iterdir()) == []
