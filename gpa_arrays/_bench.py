"""Side-by-side timing of gpa against its peers and the memory-bandwidth bound.

Everything is measured in one process, interleaved round by round (A B C A B C
...), and reported as medians and ratios, because the machines this runs on are
shared and noisy. Run ``gpa-arrays bench --help`` (or
``python benchmarks/bench_gpa.py --help``).

Rows
----
published torch
    The published PoseDA function (``gpa_arrays._peers.published_torch``), with
    ``torch.set_num_threads`` equal to Numba's thread count. Skipped without torch.
one-shot
    ``gpa(source, target_2d, camera, seed=...)``: target records computed each call.
prepared
    ``gpa(source, targets, seed=...)`` with ``targets = prepare_targets(...)``.
stream bound
    A parallel Numba loop that reads the same input bytes and writes the same
    output bytes and does nothing else: the memory-bandwidth floor.

``out`` rows write into a preallocated array; ``fresh`` rows allocate the result,
which adds the operating system's page faults on first touch.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from . import _api

__all__ = ["add_arguments", "main", "run", "run_args"]


def _stream_kernels():
    import numba
    from numba import prange

    @numba.njit(parallel=True, cache=True)
    def stream(source, out, extra):
        a = source.reshape(-1)
        b = out.reshape(-1)
        for i in prange(a.shape[0]):
            b[i] = a[i]
        c = extra.reshape(-1)
        total = 0
        for i in prange(c.shape[0]):
            total += c[i] != 0  # an integer reduction: no floating-point chain
        return total

    return stream


def _median_ms(samples):
    return statistics.median(samples) * 1e3


def _time_rounds(cases, repeat):
    """Time each callable of `cases` `repeat` times, interleaved; median seconds."""
    for fn in cases.values():  # warm-up: compile, fault in, fill caches
        fn()
    samples = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return samples


def _make_data(n, m, joints, dtype, seed=0):
    rng = np.random.default_rng(seed)
    source = rng.normal(scale=0.3, size=(n, joints, 3)).astype(dtype)
    source[..., 2] += 5
    target = rng.uniform(-0.5, 0.5, size=(m, joints, 2)).astype(dtype)
    camera = np.empty((m, 4), dtype=dtype)
    camera[:, :2] = rng.uniform(1.2, 2.4, size=(m, 2))
    camera[:, 2:] = rng.uniform(-0.1, 0.1, size=(m, 2))
    return source, target, camera


def run(
    n=1_000_000,
    joints=17,
    dtypes=("float32", "float64"),
    repeat=9,
    small=1024,
    small_calls=2000,
    torch_peer=True,
):
    """Measure and return a list of result rows (dicts), printing as it goes.

    Parameters
    ----------
    n : int
        Poses (sources = targets) for the throughput rows.
    joints : int
        Joints per pose.
    dtypes : sequence of str
        Floating dtypes to measure.
    repeat : int
        Interleaved rounds per throughput measurement (median reported).
    small : int
        Batch size for the per-call latency rows (prepared targets of size `n`).
    small_calls : int
        Calls per latency measurement.
    torch_peer : bool
        Include the published torch function when torch is installed.

    Returns
    -------
    list of dict
    """
    import numba

    threads = numba.get_num_threads()
    torch = None
    if torch_peer:
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:
            torch = None
    stream = _stream_kernels()
    rows = []
    print(f"gpa_arrays benchmark: N = M = {n:,}, J = {joints}, {threads} threads")
    for dtype in dtypes:
        data = _make_data(n, n, joints, np.dtype(dtype))
        rows.append(_throughput(data, stream, torch, repeat))
        rows.append(_latency(data, torch, small, small_calls))
    return rows


def _throughput(data, stream, torch, repeat):
    source, target, camera = data
    targets = _api.prepare_targets(target, camera)
    out = np.empty_like(source)
    inputs = np.concatenate([target.reshape(-1), camera.reshape(-1)])
    cases = {
        "prepared, out": lambda: _api.gpa(source, targets, seed=1, out=out),
        "prepared, fresh": lambda: _api.gpa(source, targets, seed=1),
        "one-shot, out": lambda: _api.gpa(source, target, camera, seed=1, out=out),
        "one-shot, fresh": lambda: _api.gpa(source, target, camera, seed=1),
        "stream bound, prepared": lambda: stream(source, out, source[:0]),
        "stream bound, one-shot": lambda: stream(source, out, inputs),
    }
    if torch is not None:
        ts, tt, tc = (torch.from_numpy(a) for a in data)
        cases["published torch"] = lambda: published(ts, tt, tc)
    samples = _time_rounds(cases, repeat)
    ms = {name: _median_ms(s) for name, s in samples.items()}
    print(f"\n{source.dtype.name}: median of {repeat} interleaved rounds")
    for name, value in ms.items():
        print(f"  {name:<24s} {value:9.2f} ms")
    ratios = {
        "prepared, out / stream bound": ms["prepared, out"]
        / ms["stream bound, prepared"],
        "one-shot, out / stream bound": ms["one-shot, out"]
        / ms["stream bound, one-shot"],
    }
    if torch is not None:
        for ours in (
            "prepared, out",
            "one-shot, out",
            "prepared, fresh",
            "one-shot, fresh",
        ):
            ratios[f"published torch / {ours}"] = ms["published torch"] / ms[ours]
    for name, value in ratios.items():
        print(f"  {name:<36s} {value:6.2f}x")
    return {"dtype": source.dtype.name, "n": len(source), "ms": ms, "ratios": ratios}


def _latency(data, torch, small, calls):
    """Per-call time of a training batch of `small` poses against all targets."""
    source, target, camera = data
    targets = _api.prepare_targets(target, camera)
    batch = np.ascontiguousarray(source[:small])
    batch_out = np.empty_like(batch)
    cases = {
        "prepared, out": lambda: _api.gpa(batch, targets, seed=1, out=batch_out),
        "prepared, fresh": lambda: _api.gpa(batch, targets, seed=1),
    }
    if torch is not None:
        bs, bt, bc = (torch.from_numpy(a[:small].copy()) for a in data)
        cases["published torch"] = lambda: published(bs, bt, bc)
    us = {}
    for name, fn in cases.items():
        for _ in range(50):
            fn()
        per_call = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            per_call.append((time.perf_counter() - start) / calls)
        us[name] = statistics.median(per_call) * 1e6
    print(f"  N = {small} per call (median of 5 x {calls} calls):")
    for name, value in us.items():
        print(f"  {name:<24s} {value:9.1f} us")
    return {"dtype": source.dtype.name, "n": small, "us": us}


def published(source, target, camera):
    """The published function on torch tensors (lazy import of the peer)."""
    from ._peers import published_torch

    return published_torch(source, target, camera)


def add_arguments(parser):
    """Add the benchmark's options to an :class:`argparse.ArgumentParser`.

    Shared by ``python benchmarks/bench_gpa.py`` and ``gpa-arrays bench``.
    """
    parser.add_argument(
        "-n", type=int, default=1_000_000, help="poses, sources = targets (default 1e6)"
    )
    parser.add_argument("--joints", type=int, default=17, help="joints per pose")
    parser.add_argument(
        "--dtype",
        action="append",
        choices=["float32", "float64"],
        help="repeatable; default both",
    )
    parser.add_argument(
        "--repeat", type=int, default=9, help="interleaved rounds (default 9)"
    )
    parser.add_argument(
        "--small",
        type=int,
        default=1024,
        help="batch size of the latency rows (default 1024)",
    )
    parser.add_argument("--no-torch", action="store_true", help="skip the torch peer")


def run_args(args):
    """:func:`run` with the options parsed by :func:`add_arguments`."""
    return run(
        n=args.n,
        joints=args.joints,
        dtypes=args.dtype or ("float32", "float64"),
        repeat=args.repeat,
        small=args.small,
        torch_peer=not args.no_torch,
    )


def main(argv=None):
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    run_args(parser.parse_args(argv))
    return 0
