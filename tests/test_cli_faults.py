"""``gpa-arrays augment`` under faults: malformed files, signals, full disks.

* Malformed inputs (the issue's cases, then a hypothesis fuzz of the reader,
  run in this process): one line naming the file and the key, exit status 2,
  before any work; never a traceback, never a pickle.
* Signals on a real job in a subprocess, slowed down between blocks so that
  the signal lands mid-write: SIGINT, SIGTERM and SIGHUP leave the output
  absent or untouched and no temporary; after SIGKILL the temporary is named
  by host and process and the next run to the same output removes it.
* A write that fails (``RLIMIT_FSIZE``) leaves no partial output.
* Output paths that cannot work, and argument errors, fail in one line first.
"""

import contextlib
import io
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import python_env

import gpa_arrays
from gpa_arrays import _files, _outofcore, cli, synthetic

N, M = 12_000, 3_000


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    d = synthetic.make_domains(N, M, seed=5)
    np.save(root / "source.npy", d.source_3d)
    np.savez(root / "target.npz", target_2d=d.target_2d, camera=d.target_camera)
    return root, d


def augment(args, capsys):
    code = cli.main(["augment", *map(str, args)])
    return code, capsys.readouterr()


def temporaries(directory):
    return sorted(p.name for p in Path(directory).iterdir() if p.name.endswith(".part"))


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def header_bytes(shape, dtype):
    """A .npy header declaring `shape` of `dtype`, without data."""
    buffer = io.BytesIO()
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": shape,
    }
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def npz_bytes(members, compress=False):
    """A zip archive of raw members: name -> bytes (``.npy`` is appended)."""
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, raw in members.items():
            archive.writestr(f"{name}.npy", raw)
    return buffer.getvalue()


def corrupt_member(raw, name):
    """`raw` (a deflated archive) with bytes in the middle of member `name` flipped."""
    archive = zipfile.ZipFile(io.BytesIO(raw))
    info = archive.getinfo(f"{name}.npy")
    # local header: 30 bytes, then the name and the extra field
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data = bytearray(raw)
    middle = start + info.compress_size // 2
    for k in range(middle, middle + 16):
        data[k] ^= 0x5A
    return bytes(data)


# --- malformed files: the cases -------------------------------------------


def malformed(d, case):
    """``(file name, bytes, key named in the message)`` of one malformed TARGET."""
    target, camera = d.target_2d, d.target_camera
    good = {"target_2d": npy_bytes(target), "camera": npy_bytes(camera)}
    if case == "corrupted deflate stream":
        raw = npz_bytes(good, compress=True)
        return "t.npz", corrupt_member(raw, "target_2d"), "target_2d"
    if case == "member not .npy data":
        return "t.npz", npz_bytes({**good, "camera": b"hello, world"}), "camera"
    if case == "huge declared shape in .npz":
        lying = header_bytes((10**12, 17, 2), "<f8") + good["target_2d"][128:]
        return "t.npz", npz_bytes({**good, "target_2d": lying}), "target_2d"
    if case == "truncated .npz":
        raw = npz_bytes(good)
        return "t.npz", raw[: len(raw) // 2], "target_2d"
    if case == "object array (pickle)":
        objects = np.empty(M, dtype=object)
        objects[:] = [{"fx": 1.0}] * M
        return "t.npz", npz_bytes({**good, "camera": npy_bytes(objects)}), "camera"
    if case == "complex dtype":
        return "t.npz", npz_bytes({**good, "camera": npy_bytes(camera + 0j)}), "camera"
    if case == "bool dtype":
        flags = np.zeros(target.shape, dtype=bool)
        return "t.npz", npz_bytes({**good, "target_2d": npy_bytes(flags)}), "target_2d"
    raise AssertionError(case)


MALFORMED_TARGETS = [
    "corrupted deflate stream",
    "member not .npy data",
    "huge declared shape in .npz",
    "truncated .npz",
    "object array (pickle)",
    "complex dtype",
    "bool dtype",
]


def no_pickle(*args, **kwargs):
    raise AssertionError("an input file was unpickled")


@pytest.mark.parametrize("case", MALFORMED_TARGETS)
def test_malformed_target_is_one_line_and_exit_2(data, tmp_path, capsys, monkeypatch,
                                                 case):  # fmt: skip
    root, d = data
    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    name, raw, key = malformed(d, case)
    (tmp_path / name).write_bytes(raw)
    out = tmp_path / "out.npz"
    code, captured = augment([root / "source.npy", tmp_path / name, "-o", out], capsys)
    assert code == 2
    (line,) = captured.err.splitlines()  # one line, and no work was started
    assert line.startswith("gpa-arrays augment: error: TARGET "), line
    assert str(tmp_path / name) in line and repr(key) in line, line
    assert captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("truncated", r"declares shape \(12000, 17, 3\) of float64 .* truncated"),
        ("object", "source_3d: expected a real floating or integer dtype, got object"),
        ("unicode", "source_3d: expected a real floating or integer dtype, got <U3"),
        ("huge", r"declares shape \(1000000000000, 17, 3\)"),
        ("not numpy", "cannot read it"),
    ],
)
def test_malformed_source_npy(data, tmp_path, capsys, monkeypatch, case, message):
    root, d = data
    monkeypatch.setattr(pickle, "load", no_pickle)
    raw = npy_bytes(d.source_3d)
    raw = {
        "truncated": raw[: len(raw) // 3],
        "object": npy_bytes(np.array([None, 1], dtype=object)),
        "unicode": npy_bytes(np.zeros((4, 17, 3), dtype="<U3")),
        "huge": header_bytes((10**12, 17, 3), "<f8") + raw[128:],
        "not numpy": b"\x93NUMPY\x01\x00\xff\xffgarbage",
    }[case]
    (tmp_path / "s.npy").write_bytes(raw)
    code, captured = augment(
        [tmp_path / "s.npy", root / "target.npz", "-o", tmp_path / "o.npy"], capsys
    )
    assert code == 2
    (line,) = captured.err.splitlines()
    assert line.startswith(f"gpa-arrays augment: error: SOURCE {tmp_path / 's.npy'}")
    assert re.search(message, line), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npy"]


# --- malformed files: the fuzz ------------------------------------------------------

DTYPES = ["<f8", ">f4", "<f2", "<i8", ">u2", "|i1", "|b1", "<c8", "<U2", "|S3",
          "<M8[s]", "<m8[ms]", "|V4", "<f4,<i2", "O"]  # fmt: skip


@st.composite
def npy_files(draw):
    """Bytes of a ``.npy`` file of any dtype, often damaged or lying."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=ndim, max_size=ndim)))
    array = np.zeros(shape, dtype=dtype)
    if dtype.hasobject:
        array[...] = 1
    raw = npy_bytes(array)
    offset = raw.index(b"\n") + 1  # the header ends with a newline
    how = draw(st.sampled_from(["intact", "truncate", "flip", "shape", "garbage"]))
    if how == "truncate":
        raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    elif how == "flip" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
    elif how == "shape":
        big = draw(st.sampled_from([10**12, 2**62, 2**63 - 1, 2**64, 3]))
        raw = header_bytes((big, *shape[1:]), dtype) + raw[offset:]
    elif how == "garbage":
        raw = raw[:offset] + draw(st.binary(max_size=64))
    return raw


@st.composite
def input_files(draw):
    """``(suffix, bytes)``: a fuzzed .npy, or an .npz with fuzzed members or bytes."""
    member = draw(npy_files())
    if draw(st.booleans()):
        return ".npy", member
    other = npy_bytes(np.ones((3, 2)))
    members = {"k": member, "other": other}
    if draw(st.booleans()):
        members = {"k": draw(st.binary(max_size=40)), "other": other}
    raw = npz_bytes(members, compress=draw(st.booleans()))
    how = draw(st.sampled_from(["intact", "truncate", "flip"]))
    if how == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
    return ".npz", raw


@pytest.fixture
def fuzz_dir(monkeypatch):
    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(case=input_files())
def test_reader_fuzz_one_line_or_a_real_array(fuzz_dir, case):
    suffix, raw = case
    path = fuzz_dir / f"input{suffix}"
    path.write_bytes(raw)
    try:
        array = _files.load(str(path), "k", "TARGET", "target_2d")
    except _files.FileError as exc:
        message = str(exc)
        assert "\n" not in message and str(path) in message, message
        if suffix == ".npz":
            assert "'k'" in message, message
        return
    assert array.dtype.kind in "fiu" and not array.dtype.hasobject
    # every declared byte is there: reading it all neither faults nor runs short
    assert np.asarray(array).tobytes() == np.asarray(array).copy().tobytes()
    del array


# --- the output path, argument errors -------------------------------------------------


def test_output_directory_fails_before_the_work(data, tmp_path, capsys):
    root, _ = data
    (tmp_path / "results").mkdir()
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", tmp_path / "results"], capsys
    )
    assert code == 2
    (line,) = captured.err.splitlines()  # no summary line: nothing was aligned
    assert line == (
        f"gpa-arrays augment: error: -o {tmp_path / 'results'}: is a directory; "
        "expected a file name"
    )
    (tmp_path / "results.npz").mkdir()
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", tmp_path / "results.npz"],
        capsys,
    )
    assert code == 2
    (line,) = captured.err.splitlines()
    assert line.endswith("results.npz: is a directory; expected a file name"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "results.npz"]
    assert list((tmp_path / "results.npz").iterdir()) == []


def test_unwritable_output_fails_before_the_work(data, capsys):
    root, _ = data
    # /sys: a directory that passes os.access for root but takes no new files
    place = Path("/sys/gpa-arrays-test.npz")
    if not Path("/sys").is_dir():
        pytest.skip("no /sys")
    code, captured = augment([root / "source.npy", root / "target.npz", "-o", place],
                             capsys)  # fmt: skip
    if code == 0:  # pragma: no cover - a writable /sys
        place.unlink()
        pytest.skip("/sys is writable here")
    assert code == 2
    (line,) = captured.err.splitlines()
    assert line.startswith(f"gpa-arrays augment: error: -o {place}: "), line
    assert ".part" not in line and "tmp" not in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["augment", "a.npy"], "the following arguments are required: TARGET, -o"),
        (["augment", "a.npy", "b.npz", "-o", "c.npy", "--mode", "x"],
         "argument --mode: invalid choice: 'x'"),
        (["augment", "a.npy", "b.npz", "-o", "c.npy", "--chunk", "0"],
         "argument --chunk: expected a positive integer, got 0"),
        (["augment", "a.npy", "b.npz", "-o", "c.npy", "--target-layout", "coco"],
         "argument --target-layout: invalid choice: 'coco'"),
        (["demo", "--seed", "-1"], "argument --seed: expected a seed in"),
        (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)  # fmt: skip
def test_argument_errors_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert message in line, line
    prog = " ".join(["gpa-arrays", *argv[:1]]) if argv[:1] != ["frobnicate"] else ""
    prog = prog or "gpa-arrays"
    assert line.startswith(f"{prog}: error: ") and line.endswith(f"see {prog} --help")


def test_layout_names_and_aliases(data, tmp_path, capsys):
    root, _ = data
    for layout in ("mpi_inf_3dhp_17", "3dhp-17"):
        out = tmp_path / f"{layout}.npy"
        code, captured = augment(
            [root / "source.npy", root / "target.npz", "-o", out, "--seed", 2,
             "--target-layout", layout, "--source-layout", "h36m_17"],
            capsys,
        )  # fmt: skip
        assert code == 0, captured.err
    np.testing.assert_array_equal(
        np.load(tmp_path / "mpi_inf_3dhp_17.npy"), np.load(tmp_path / "3dhp-17.npy")
    )


# --- signals ---------------------------------------------------------------------------

#: A real ``augment`` job, paused 50 ms before each block is aligned so that a
#: signal sent once the temporary exists lands mid-write.
SLOW_JOB = textwrap.dedent("""
    import sys, time
    from gpa_arrays import _api, cli
    real = _api._gpa_block
    def slow(*args, **kwargs):
        time.sleep(0.05)
        return real(*args, **kwargs)
    _api._gpa_block = slow
    sys.exit(cli.main(sys.argv[1:]))
""")


def start_job(root, out, script=SLOW_JOB, **kwargs):
    args = ["augment", root / "source.npy", root / "target.npz", "-o", out,
            "--chunk", 500, "--seed", 3, "--no-progress"]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        env=python_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def wait_for_writing(proc, directory, timeout=60):
    """The job's temporary, once it holds the first blocks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for name in temporaries(directory):
            with contextlib.suppress(FileNotFoundError):
                if (Path(directory) / name).stat().st_size > 500_000:
                    return name
        time.sleep(0.01)
    proc.kill()
    proc.communicate()
    raise AssertionError("the job never started writing")


@pytest.mark.parametrize(
    ("signum", "status", "existed"),
    [
        (signal.SIGINT, 130, False),
        (signal.SIGTERM, 128 + signal.SIGTERM, True),
        (signal.SIGHUP, 128 + signal.SIGHUP, False),
    ],
)
def test_signal_mid_write_leaves_nothing(data, tmp_path, signum, status, existed):
    root, _ = data
    out = tmp_path / "out.npz"
    if existed:
        out.write_bytes(b"previous result")
    proc = start_job(root, out)
    wait_for_writing(proc, tmp_path)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert err.splitlines()[-1].startswith("gpa-arrays augment: "), err
    assert "Traceback" not in err
    assert temporaries(tmp_path) == []
    if existed:
        assert out.read_bytes() == b"previous result"
    else:
        assert not out.exists()


def test_sigkill_leftover_is_named_and_removed_by_the_next_run(data, tmp_path,
                                                                capsys):  # fmt: skip
    root, d = data
    out = tmp_path / "out.npz"
    proc = start_job(root, out)
    name = wait_for_writing(proc, tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # findable: beside the output, named after it, the host and the process
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())
    assert name.startswith(f".out.npz.{host}.{proc.pid}.") and name.endswith(".part")
    assert temporaries(tmp_path) == [name] and not out.exists()
    code, captured = augment(
        [root / "source.npy", root / "target.npz", "-o", out, "--seed", 3], capsys
    )
    assert code == 0, captured.err
    assert f"removed {tmp_path / name}, left by an earlier run" in captured.err
    assert temporaries(tmp_path) == []
    with np.load(out) as result:
        assert result["aligned_3d"].shape == d.source_3d.shape


def test_leftovers_of_live_processes_and_other_hosts_are_kept(tmp_path):
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = {
        "live": f".o.npy.{host}.{os.getpid()}.abc123.part",
        "other host": f".o.npy.elsewhere-{host}.{dead.pid}.abc123.part",
        "dead": f".o.npy.{host}.{dead.pid}.abc123.part",
        "other output": f".p.npy.{host}.{dead.pid}.abc123.part",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    removed = _outofcore.remove_leftovers(str(tmp_path / "o.npy"))
    assert removed == [str(tmp_path / names["dead"])]
    assert sorted(temporaries(tmp_path)) == sorted(
        n for k, n in names.items() if k != "dead"
    )


# --- write failures ---------------------------------------------------------------------


# 2 MB: the 4.9 MB output cannot be written; Python ignores SIGXFSZ, so the
# write fails with EFBIG instead of killing the process. Set in the child itself,
# not in a preexec_fn: that would fork this process, which may hold JAX's
# threads by now (JAX warns on fork, and warnings are errors here).
LIMITED_JOB = (
    "import resource, sys; "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (2 * 2**20, 2 * 2**20)); "
    "from gpa_arrays import cli; sys.exit(cli.main(sys.argv[1:]))"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE")
def test_write_failure_leaves_no_partial_output(data, tmp_path):
    root, _ = data
    out = tmp_path / "out.npy"
    proc = start_job(root, out, script=LIMITED_JOB)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    line = err.splitlines()[-1]
    assert line == (
        f"gpa-arrays augment: error: -o {out}: cannot write it (File too large)"
    ), err
    assert list(tmp_path.iterdir()) == []


# --- the same driver under gpa_arrays.dask.gpa_npy ---------------------------------------

SLOW_GPA_NPY = textwrap.dedent("""
    import sys, time
    import dask
    from gpa_arrays import _api
    from gpa_arrays import dask as gdask
    real = _api._gpa_block
    def slow(*args, **kwargs):
        time.sleep(0.05)
        return real(*args, **kwargs)
    _api._gpa_block = slow
    dask.config.set(scheduler="threads", num_workers=1)
    root, out = sys.argv[1:]
    gdask.gpa_npy(root + "/source.npy", root + "/target.npy", root + "/camera.npy",
                  out_path=out, chunk_poses=500, seed=1)
""")


@pytest.fixture(scope="module")
def npy_data(data):
    pytest.importorskip("dask")
    root, d = data
    np.save(root / "target.npy", d.target_2d)
    np.save(root / "camera.npy", d.target_camera)
    return root, d


def test_gpa_npy_checks_the_output_first_and_removes_leftovers(npy_data, tmp_path):
    from gpa_arrays import dask as gdask

    root, d = npy_data
    args = (root / "source.npy", root / "target.npy", root / "camera.npy")
    (tmp_path / "out.npy").mkdir()
    with pytest.raises(ValueError, match=r"^out_path .*out.npy: is a directory"):
        gdask.gpa_npy(*args, out_path=tmp_path / "out.npy")
    with pytest.raises(ValueError, match=r"out_path .*: directory .* does not exist"):
        gdask.gpa_npy(*args, out_path=tmp_path / "missing" / "o.npy")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())
    leftover = tmp_path / f".o.npy.{host}.{dead.pid}.x1y2z3.part"
    leftover.write_bytes(b"partial")
    gdask.gpa_npy(*args, out_path=tmp_path / "o.npy", chunk_poses=4000, seed=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.npy", "out.npy"]
    want = gpa_arrays.gpa(d.source_3d, d.target_2d, d.target_camera, seed=2)
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), want)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_gpa_npy_signal_mid_write_leaves_nothing(npy_data, tmp_path, signum):
    root, _ = npy_data
    out = tmp_path / "aligned.npy"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_GPA_NPY, str(root), str(out)],
        env=python_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for_writing(proc, tmp_path)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    # the process ends by the signal, as it would have without the writer
    assert proc.returncode == -signum, err
    assert list(tmp_path.iterdir()) == []
