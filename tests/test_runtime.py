"""Process-level behaviour: imports, fork safety, threads."""

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from conftest import make_case

import gpa_arrays


def run_python(code):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result


def test_import_pulls_in_no_array_framework_or_jit():
    result = run_python("""
        import sys
        import gpa_arrays
        heavy = [m for m in ("torch", "cupy", "jax", "numba", "matplotlib", "scipy",
                             "dask", "distributed")
                 if m in sys.modules]
        print(heavy)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_numpy_call_imports_no_framework():
    result = run_python("""
        import sys
        import numpy as np
        import gpa_arrays
        s = np.random.default_rng(0).normal(size=(5, 17, 3))
        t = np.random.default_rng(1).uniform(-0.5, 0.5, size=(5, 17, 2))
        gpa_arrays.gpa(s, t, [1.5, 1.5, 0, 0], seed=1)
        gpa_arrays.gpa(s, t, [1.5, 1.5, 0, 0], seed=1, backend="numpy")
        aug = gpa_arrays.GPA(t, [1.5, 1.5, 0, 0], seed=1)
        aug(s)
        aug(s.astype(np.float32))
        gpa_arrays.pair_indices(5, 5, pairing=[1, 0, 2, 4, 3])
        print([m for m in ("torch", "cupy", "jax") if m in sys.modules])
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_torch_cpu_call_imports_no_cupy():
    pytest.importorskip("torch")
    result = run_python("""
        import sys
        import numpy as np
        import torch
        import gpa_arrays
        s = torch.randn(5, 17, 3, dtype=torch.float64)
        t = torch.rand(5, 17, 2, dtype=torch.float64)
        gpa_arrays.gpa(s, t, torch.tensor([1.5, 1.5, 0, 0]), seed=1)
        gpa_arrays.GPA(t.numpy(), [1.5, 1.5, 0, 0], seed=1)(s.float())
        print([m for m in ("cupy", "jax") if m in sys.modules])
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_fork_after_parallel_kernel():
    # Without the fork guard, GNU OpenMP kills the child on its first parallel
    # region ("Terminating: fork() called from a process already using GNU
    # OpenMP, this is unsafe."), as in PyTorch DataLoader workers.
    result = run_python("""
        import os, sys
        import numpy as np
        import numba
        import gpa_arrays
        rng = np.random.default_rng(0)
        s = rng.normal(scale=(0.3, 0.3, 0.1), size=(200_000, 17, 3))
        s[..., 2] += 5
        t = rng.uniform(-0.5, 0.5, size=(200_000, 1, 2))
        t = t + rng.normal(scale=0.15, size=(200_000, 17, 2))
        parent = gpa_arrays.gpa(s, t, [1.5, 1.5, 0, 0], seed=3)
        print("layer", numba.threading_layer(), flush=True)
        pids = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                child = gpa_arrays.gpa(s, t, [1.5, 1.5, 0, 0], seed=3)
                os._exit(0 if np.array_equal(child, parent) else 3)
            pids.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
        print("children", codes)
        # the parent keeps its parallel pool
        again = gpa_arrays.gpa(s, t, [1.5, 1.5, 0, 0], seed=3)
        print("parent", np.array_equal(again, parent))
    """)
    assert result.returncode == 0, result.stderr
    assert "children [0, 0]" in result.stdout, result.stdout + result.stderr
    assert "parent True" in result.stdout


def test_fork_after_parallel_kernel_every_entry_point():
    # Every public function that can reach a parallel Numba kernel, run in a
    # child forked after the parent used the OpenMP pool: each must fall back
    # to its serial twin (stats did not, and killed the child), and give the
    # parent's result.
    result = run_python("""
        import os
        import numpy as np
        import numba
        import gpa_arrays
        from gpa_arrays import camera, metrics, stats

        rng = np.random.default_rng(0)
        n = 60_000
        s = rng.normal(scale=(0.3, 0.3, 0.1), size=(n, 17, 3)); s[..., 2] += 5
        t = rng.uniform(-0.5, 0.5, size=(n, 1, 2))
        t = t + rng.normal(scale=0.15, size=(n, 17, 2))
        cam = np.array([1.5, 1.5, 0.0, 0.0])
        clips = rng.normal(scale=(0.3, 0.3, 0.1), size=(n // 4, 4, 17, 3))
        clips[..., 2] += 5

        def everything():
            targets = gpa_arrays.prepare_targets(t, cam, target_root=0)
            aug = gpa_arrays.GPA(t, cam, seed=2)
            out = [
                gpa_arrays.pair_indices(n, n, seed=1),
                gpa_arrays.gpa(s, t, cam, seed=3),
                gpa_arrays.gpa(s, targets, seed=3, return_2d=True, check=False)[1],
                gpa_arrays.gpa(clips, t, cam, seed=3),
                targets.records,
                aug(s),
                camera.project(s, cam),
                metrics.mpjpe(s, s[::-1], reduction="pose"),
                metrics.p_mpjpe(s, s[::-1], reduction="pose"),
                metrics.procrustes(s, s[::-1]).scale,
                stats.pose_statistics(t).scale,
                stats.pose_statistics(s, cam).root_x,
            ]
            return out

        parent = everything()
        print("layer", numba.threading_layer(), flush=True)
        pid = os.fork()
        if pid == 0:
            child = everything()
            same = all(np.array_equal(a, b) for a, b in zip(child, parent))
            os._exit(0 if same else 3)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        print("child", code)
    """)
    assert result.returncode == 0, result.stderr
    assert "child 0" in result.stdout, result.stdout + result.stderr


def test_multiprocessing_fork_pool():
    result = run_python("""
        import multiprocessing as mp
        import numpy as np
        import gpa_arrays
        rng = np.random.default_rng(0)
        s = rng.normal(scale=(0.3, 0.3, 0.1), size=(50_000, 17, 3)); s[..., 2] += 5
        t = rng.uniform(-0.5, 0.5, size=(50_000, 1, 2))
        t = t + rng.normal(scale=0.15, size=(50_000, 17, 2))
        ref = gpa_arrays.gpa(s, t, [1.5, 1.5, 0, 0], seed=4)

        def work(seed):
            return float(gpa_arrays.gpa(s, t, [1.5, 1.5, 0, 0], seed=seed).sum())

        with mp.get_context("fork").Pool(2) as pool:
            sums = pool.map(work, [4, 4, 5])
        print(sums[0] == sums[1] == float(ref.sum()), sums[2] != sums[0])
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True True"


def test_concurrent_threads_agree():
    rng = np.random.default_rng(5)
    source, target, camera = make_case(rng, 40_000, 40_000)
    targets = gpa_arrays.prepare_targets(target, camera)
    want = gpa_arrays.gpa(source, targets, seed=9)
    results = [None] * 4

    def work(k):
        results[k] = gpa_arrays.gpa(source, targets, seed=9)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, want)


def test_stalled_parallel_launches_fall_back_to_serial(monkeypatch, rng):
    # A parallel launch that takes longer than twice the serial time measured
    # in this process sends the next launches of that size range to the serial
    # twin for a while; both twins give the same result.
    from gpa_arrays import _config
    from gpa_arrays._backends import numba_

    if numba_._threads() < 2:
        monkeypatch.setattr(numba_, "_threads", lambda: 2)
    monkeypatch.setattr(_config, "PARALLEL_MIN_POSES", 300)
    monkeypatch.setattr(_config, "PARALLEL_WATCH_POSES", 5000)
    watch = numba_._Watch()
    monkeypatch.setattr(numba_, "_watch", watch)
    launches = []
    now = [0.0]

    def timed():  # a parallel launch takes a second (stalls), a serial one 1 us
        now[0] += 1.0 if launches[-1] else 1e-6
        return now[0]

    watch.pool_started = True  # the launch that starts the pool is not judged

    decide = numba_.use_parallel

    def recorded(n):
        launches.append(decide(n))
        return launches[-1]

    monkeypatch.setattr(numba_, "use_parallel", recorded)
    monkeypatch.setattr(numba_, "_clock", timed)
    source, target, camera = make_case(rng, n=400, m=400)
    targets = gpa_arrays.prepare_targets(target, camera)
    want = gpa_arrays.gpa(source, targets, seed=3, backend="numpy")
    launches.clear()
    got = gpa_arrays.gpa(source, targets, seed=3, backend="numba")
    np.testing.assert_array_equal(got, want)
    assert launches == [True] and watch.backoff == watch.BACKOFF  # it stalled
    for _ in range(watch.BACKOFF):
        np.testing.assert_array_equal(
            gpa_arrays.gpa(source, targets, seed=3, backend="numba"), want
        )
    assert not any(launches[1:]) and len(launches) == watch.BACKOFF + 1
    gpa_arrays.gpa(source, targets, seed=3, backend="numba")
    assert launches[-1]  # tried again after the backoff
    # the first parallel launch of a process (the pool starting) is not judged,
    # nor is a slow launch that stays under STALL
    fresh = numba_._Watch()
    fresh.record(True, 1000, 1.0)
    assert fresh.pool_started and fresh.backoff == 0
    fresh.record(True, 1000, 0.9 * fresh.STALL)
    assert fresh.backoff == 0 and fresh.allows()
    # above the watched range the parallel twin always runs
    assert numba_._Watch().allows()
    watch.backoff = 5
    assert decide(6000) and not decide(400)
