"""The demo's cold start: what it compiles, and the notice of a first compile."""

import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_cli import python_env

from gpa_arrays import cli, synthetic
from gpa_arrays._backends import numba_
from gpa_arrays.camera import project

NOTICE = "compiling the CPU kernels for first use"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_synthetic_projection_is_the_projection_kernels(rng, dtype):
    # the synthetic data skip the Numba projection kernels (their compile
    # would dominate a first demo) but must stay the same numbers bit for bit
    points = rng.normal(scale=0.5, size=(300, 17, 3)).astype(dtype)
    points[..., 2] += 2.0
    points[::7, 3, 0] = 40.0  # x / z clamped to 1
    points[::11, 5, 1] = -40.0  # y / z clamped to -1
    camera = rng.uniform(0.8, 2.4, size=(300, 4)).astype(dtype)
    expected = project(points, camera[:, None], check=False, backend="numba")
    found = synthetic._pinhole(points, camera)
    assert found.dtype == expected.dtype
    np.testing.assert_array_equal(found, expected)


# the kernels a first demo has no use for: each would be compiled for nothing
UNNEEDED = (
    "_prepare_parallel",
    "_prepare_serial",
    "_project_parallel",
    "_project_serial",
    "_pair_parallel",
    "_pair_serial",
    "_pose_statistics_parallel",
    "_pose_statistics_serial",
    "_merge_w1",
)


@pytest.mark.parametrize("n", [6000, 600])
def test_demo_launches_one_twin_and_no_helper_kernels(monkeypatch, n):
    def unused(*args):
        raise AssertionError("the demo launched a kernel it does not need")

    # both GPA calls of the demo (warm-up and timed) launch the same twin
    twin = "_gpa_parallel" if numba_.use_parallel(n) else "_gpa_serial"
    other = "_gpa_serial" if twin == "_gpa_parallel" else "_gpa_parallel"
    for name in (*UNNEEDED, other):
        monkeypatch.setattr(numba_, name, unused)
    launched = []
    real = getattr(numba_, twin)

    def spy(source, *args):
        launched.append(source.shape[0])
        return real(source, *args)

    monkeypatch.setattr(numba_, twin, spy)
    result = cli.demo_statistics(n, seed=2, backend="numba")
    assert launched == [min(n, 4096), n]
    reference = cli.demo_statistics(n, seed=2, backend="numpy")
    for group in ("source", "aligned", "target"):
        for name in ("scale", "root_x", "root_y"):
            np.testing.assert_array_equal(
                getattr(result[group], name), getattr(reference[group], name)
            )


def _write_module(path, name):
    path.joinpath(f"{name}.py").write_text(
        textwrap.dedent(
            """
            import numba

            @numba.njit(cache=True)
            def total(a):
                s = a[0] * 0
                for x in a:
                    s += x
                return s
            """
        )
    )


def test_in_disk_cache_reads_the_index(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"coldstart_probe_{os.getpid()}"
    _write_module(tmp_path, name)
    module = __import__(name)
    try:
        assert not cli._in_disk_cache(module.total, np.dtype(np.float32))
        module.total(np.ones(3, dtype=np.float32))
        assert cli._in_disk_cache(module.total, np.dtype(np.float32))
        assert not cli._in_disk_cache(module.total, np.dtype(np.float64))
    finally:
        sys.modules.pop(name, None)


def test_in_disk_cache_without_a_cache_stays_quiet():
    # an uncached dispatcher has no index to read: no notice, no error
    import numba

    kernel = numba.njit(lambda a: a[0])
    assert cli._in_disk_cache(kernel, np.dtype(np.float64))


@pytest.mark.parametrize("cached", [False, True])
def test_compile_notice_only_when_not_cached(monkeypatch, cached):
    asked = []

    def in_cache(kernel, dtype):
        asked.append((kernel, dtype))
        return cached

    monkeypatch.setattr(cli, "_in_disk_cache", in_cache)
    stream = io.StringIO()
    cli._compile_notice(100_000, np.dtype(np.float32), stream)
    lines = stream.getvalue().splitlines()
    assert lines == ([] if cached else [lines[0]])
    if not cached:
        assert NOTICE in lines[0] and "later runs load them from the cache" in lines[0]
    kernels = {kernel for kernel, _ in asked}
    assert kernels == {
        numba_._gpa_parallel if numba_.use_parallel(4096) else numba_._gpa_serial
    }
    assert {dtype for _, dtype in asked} == {np.dtype(np.float32)}


@pytest.mark.slow
def test_demo_notice_on_a_fresh_cache_only(tmp_path):
    # a fresh install in miniature: an empty Numba cache directory
    env = python_env()
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    args = [sys.executable, "-m", "gpa_arrays", "demo", "-n", "3000", "--no-figure"]
    runs = [
        subprocess.run(
            args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert runs[0].stderr.count(NOTICE) == 1
    assert NOTICE not in runs[1].stderr
    assert (
        runs[0].stdout.split("data generated")[0]
        == (runs[1].stdout.split("data generated")[0])
    )
