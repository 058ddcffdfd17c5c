"""The benchmark helpers: inputs, bound kernels, memory probe, the report."""

import os

import numpy as np
import pytest

import gpa_arrays
from gpa_arrays import _bench

needs_clear_refs = pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK),
    reason="needs Linux /proc/self/clear_refs",
)


@pytest.mark.slow  # 15 joints: kernels of their own to compile
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_make_inputs_shapes_ranges_and_determinism(dtype):
    source, target, camera = _bench.make_inputs(300, 200, joints=15, dtype=dtype)
    assert source.shape == (300, 15, 3) and source.dtype == dtype
    assert target.shape == (200, 15, 2) and target.dtype == dtype
    assert camera.shape == (200, 4) and camera.dtype == dtype
    assert source[..., 2].min() > 3  # in front of the camera
    assert target.min() >= -0.5 and target.max() < 0.5
    assert camera[:, :2].min() >= 1.2 and camera[:, :2].max() <= 2.4
    assert camera[:, 2:].min() >= -0.1 and camera[:, 2:].max() <= 0.1
    again = _bench.make_inputs(300, 200, joints=15, dtype=dtype)
    for a, b in zip((source, target, camera), again, strict=True):
        np.testing.assert_array_equal(a, b)
    # valid GPA input: every pose lands finite and in front of the camera
    aligned = gpa_arrays.gpa(source, target, camera, seed=0)
    assert np.isfinite(aligned).all() and aligned[..., 2].min() > 0


@pytest.mark.slow  # 20,000 poses: the parallel return_2d and perspective kernels
def test_make_inputs_supports_every_option():
    # the asv Options benchmark runs return_2d=True and depth="perspective" on
    # these inputs, which refuse a joint at or behind the camera plane: the
    # sources must stay shallow for every target box. Every aligned joint lies
    # at more than a fifth of its root's depth (0.28 at 2e4 and 2e5 poses), a
    # margin a larger draw's tail does not eat.
    source, target, camera = _bench.make_inputs(20_000, 20_000)
    aligned, projected = gpa_arrays.gpa(source, target, camera, seed=1, return_2d=True)
    ratio = aligned[..., 2].min(axis=1) / aligned[:, 0, 2]
    assert ratio.min() > 0.2 and np.isfinite(projected).all()
    deep = gpa_arrays.gpa(source, target, camera, seed=1, depth="perspective")
    assert deep[..., 2].min() > 0 and np.isfinite(deep).all()


@pytest.mark.parametrize(
    "dtype", [pytest.param(np.float32, marks=pytest.mark.slow), np.float64]
)
def test_stream_bound_moves_every_byte(dtype):
    stream = _bench.cpu_stream_bound()
    source, target, camera = _bench.make_inputs(5000, 5000, dtype=dtype)
    out = np.zeros_like(source)
    extra = np.concatenate([target.reshape(-1), camera.reshape(-1)])
    extra[::7] = 0
    assert stream(source, out, extra) == np.count_nonzero(extra)
    np.testing.assert_array_equal(out, source)
    assert stream(source, out, source[:0]) == 0


def test_gather_bound_reads_every_paired_record():
    gather = _bench.cpu_gather_bound()
    source, target, camera = _bench.make_inputs(3000, 2000, dtype=np.float64)
    records = gpa_arrays.prepare_targets(target, camera)._records.copy()
    records[::3, 1] = 0  # zeros the count must see through the pairing
    pairing = gpa_arrays.pair_indices(3000, 2000, seed=1)
    out = np.zeros_like(source)
    want = np.count_nonzero(records[pairing])
    assert gather(source, records, pairing, out) == want
    np.testing.assert_array_equal(out, source)


@needs_clear_refs
def test_peak_rss_increase_sees_a_touched_allocation():
    # resident memory moves by a few pages on its own (page cache, interpreter
    # bookkeeping): 2 MiB of slack on a 64 MiB allocation
    size, slack = 64 * 2**20, 2 * 2**20
    result, increase = _bench.peak_rss_increase(lambda: np.ones(size, dtype=np.uint8))
    assert result.nbytes == size
    assert size - slack <= increase <= size + slack
    # freed before the probe returns: the peak still counts it
    _, increase = _bench.peak_rss_increase(lambda: np.ones(size, np.uint8).sum())
    assert size - slack <= increase <= size + slack


@needs_clear_refs
@pytest.mark.parametrize(
    "dtype", [pytest.param(np.float32, marks=pytest.mark.slow), np.float64]
)
def test_fused_paths_allocate_nothing_n_sized_but_the_output(dtype):
    # The core issue's promise: one pass over the sources, no temporaries of
    # size N besides the output; a call on raw target arrays adds only the
    # (M, 8) target records.
    warm = _bench.make_inputs(4096, 4096, dtype=dtype)
    for mode in ("paired", "poseda"):
        gpa_arrays.gpa(*warm, seed=1, mode=mode)
    gpa_arrays.gpa(warm[0], gpa_arrays.prepare_targets(*warm[1:]), seed=1)

    n = 200_000
    source, target, camera = _bench.make_inputs(n, n, dtype=dtype)
    targets = gpa_arrays.prepare_targets(target, camera)
    out = np.empty_like(source)
    out.fill(0)
    output = source.nbytes
    slack = 0.02 * output
    records = targets.records.nbytes

    _, increase = _bench.peak_rss_increase(
        lambda: gpa_arrays.gpa(source, targets, seed=1, out=out)
    )
    assert increase <= slack
    _, increase = _bench.peak_rss_increase(
        lambda: gpa_arrays.gpa(source, targets, seed=1)
    )
    assert output - slack <= increase <= output + slack
    for mode in ("paired", "poseda"):  # raw arrays: the records are computed first
        _, increase = _bench.peak_rss_increase(
            lambda mode=mode: gpa_arrays.gpa(source, target, camera, seed=1, mode=mode)
        )
        assert output - slack <= increase <= output + records + slack


def test_run_reports_every_comparison(capsys):
    pytest.importorskip("torch")
    rows = _bench.run(
        n=3000,
        dtypes=("float32",),
        repeat=1,
        small=64,
        small_calls=2,
        gpu=False,
        compile_peer=False,  # torch.compile: test_run_reports_the_compiled_peers
    )
    big, batch, summary = rows
    assert big["device"] == "cpu" and big["n"] == 3000
    for case in (
        "prepared, out=",
        "one-shot, fresh",
        "straightforward numpy",
        "numpy (published)",
        "torch eager",
        "stream bound, prepared",
        "stream bound, one-shot",
        "gather bound, prepared",
    ):
        assert big["ms"][case] > 0
    ratios = big["ratios"]
    for key in (
        "numpy / prepared, out=",
        "torch / prepared, out=",
        "prepared, out= / stream bound, prepared",
        "one-shot, out= / stream bound, one-shot",
        "prepared, out= / gather bound, prepared",
        "strongest / prepared, out=",
    ):
        assert ratios[key] > 0
    assert ratios["torch / prepared, out="] == pytest.approx(
        big["ms"]["torch eager"] / big["ms"]["prepared, out="]
    )
    peers = big["formula peers"]
    assert (
        "torch.compile" not in peers["peers"]
        and "torch.compile" not in peers["skipped"]
    )
    # every peer was compared with mode="poseda" on the benchmark's own data:
    # numpy and eager torch bit for bit
    for name in ("numpy (published)", "torch eager"):
        entry = peers["peers"][name]
        assert entry["max_abs_diff"] == 0.0 and entry["compile_s"] is None
        assert entry["peer / ours"] == pytest.approx(
            big["ms"][name] / big["ms"]["prepared, out="]
        )
    strongest = peers["strongest"]
    assert big["ms"][strongest] == min(big["ms"][name] for name in peers["peers"])
    assert ratios["strongest / prepared, out="] == pytest.approx(
        big["ms"][strongest] / big["ms"]["prepared, out="]
    )
    assert batch["n"] == 64 and set(batch["us"]) >= {
        "prepared, out=",
        "torch eager",
        "numpy (published)",
    }
    assert batch["formula peers"]["strongest"] in batch["us"]
    checks = summary["targets"]
    assert "cpu: torch / prepared, out= [float32]" in checks
    value, met = checks["cpu: prepared, out= / stream bound [float32]"]
    assert met == (value <= _bench.TARGETS["cpu: prepared, out= / stream bound"][0])
    text = capsys.readouterr().out
    assert "ours/bound" in text and "Targets" in text
    assert "strongest peer: " in text and "Strongest published-formula peer" in text
    assert "bit for bit" in text


@pytest.mark.slow  # torch.compile: about 20 s the first time in a process
def test_run_reports_the_compiled_peers(capsys):
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    big, _, _ = _bench.run(
        n=2000,
        dtypes=("float32",),
        repeat=1,
        small=32,
        small_calls=1,
        numpy_peer=False,
        gpu=False,
    )
    peers = big["formula peers"]["peers"]
    assert set(peers) == {"torch eager", "torch.compile", "jax.jit"}
    for name in ("torch.compile", "jax.jit"):
        assert peers[name]["compile_s"] > 0 and peers[name]["ms"] > 0
    assert peers["torch.compile"]["max_abs_diff"] == 0.0
    # XLA's fused multiply-add: an ulp of the depth at most (~5 m here)
    assert peers["jax.jit"]["max_abs_diff"] <= 4 * np.finfo(np.float32).eps * 8
    text = capsys.readouterr().out
    assert "first call s" in text and "torch.compile" in text and "jax.jit" in text


def test_missing_peers_are_named(capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_jax(name, *args, **kwargs):
        if name.split(".")[0] == "jax":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jax)
    big, _, _ = _bench.run(
        n=1000,
        dtypes=("float64",),
        repeat=1,
        small=16,
        small_calls=1,
        torch_peer=False,
        gpu=False,
    )
    assert big["formula peers"]["skipped"] == {"jax.jit": "jax is not installed"}
    assert "jax.jit                skipped: jax is not installed" in (
        capsys.readouterr().out
    )


def test_main_without_peers(capsys):
    assert (
        _bench.main(
            [
                "-n",
                "2000",
                "--dtype",
                "float64",
                "--repeat",
                "1",
                "--small",
                "32",
                "--small-calls",
                "2",
                "--no-torch",
                "--no-numpy",
                "--no-jax",
                "--no-gpu",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "prepared, out=" in text
    for peer in ("torch eager", "torch.compile", "numpy (published)", "jax.jit"):
        assert peer not in text
    assert "straightforward numpy" not in text and "strongest" not in text


def test_gpu_required_without_a_device_raises():
    available, _ = _bench._gpu_available()
    if available:
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="gpu=True"):
        _bench.run(
            n=100,
            dtypes=("float32",),
            repeat=1,
            small=8,
            small_calls=1,
            torch_peer=False,
            numpy_peer=False,
            gpu=True,
        )
