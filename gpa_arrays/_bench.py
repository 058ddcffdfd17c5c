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

GPU rows (when the CuPy backend sees a device; ``--gpu-n`` poses, 10 million by
default, the size of the issue's target):

cupy prepared
    ``gpa(source, targets, seed=..., out=out)`` on CuPy arrays, with the default
    ``check=True`` (one status read per call) and with ``check=False``.
device copy
    ``cupy.copyto(out, source)``: the device moving the same pose bytes, the
    bound the prepared kernel is compared with.
published torch (CUDA)
    The published function on CUDA tensors. Skipped without torch CUDA.

Device times are CUDA-event times of each call, interleaved round by round.
The latency rows time ``--small`` poses per call on the host clock, with the
device synchronised once at the end of each batch of calls.
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
    gpu=True,
    gpu_n=10_000_000,
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
    gpu : bool
        Add the GPU rows when the CuPy backend has a device.
    gpu_n : int
        Poses (sources = targets) of the GPU throughput rows.

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
    if gpu:
        rows.extend(_gpu_rows(gpu_n, joints, dtypes, repeat, small, small_calls,
                              torch_peer))  # fmt: skip
    return rows


def _gpu_rows(n, joints, dtypes, repeat, small, calls, torch_peer):
    """The device rows, or none (with a note) where no device is usable."""
    from . import _backends

    try:
        _backends.load("cupy")
    except RuntimeError as exc:
        print(f"\nGPU rows skipped: {exc}")
        return []
    import cupy

    torch = None
    if torch_peer:
        try:
            import torch

            if not torch.cuda.is_available():
                torch = None
        except ImportError:
            torch = None
    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    name = name.decode() if isinstance(name, bytes) else name
    print(f"\nGPU: {name}, N = M = {n:,}, J = {joints}")
    rows = []
    for dtype in dtypes:
        rows.extend(
            _gpu_throughput(cupy, torch, n, joints, dtype, repeat, small, calls, name)
        )
        cupy.get_default_memory_pool().free_all_blocks()
    return rows


def _gpu_throughput(cupy, torch, n, joints, dtype, repeat, small, calls, name):
    source, target, camera = (
        cupy.asarray(a) for a in _make_data(n, n, joints, np.dtype(dtype))
    )
    targets = _api.prepare_targets(target, camera)
    out = cupy.empty_like(source)
    cases = {
        "cupy prepared, out": lambda: _api.gpa(source, targets, seed=1, out=out),
        "cupy prepared, out, check=False": lambda: _api.gpa(
            source, targets, seed=1, out=out, check=False
        ),
        "device copy": lambda: cupy.copyto(out, source),
    }
    if torch is not None:
        ts, tt, tc = (torch.from_dlpack(a) for a in (source, target, camera))
        cases["published torch (CUDA)"] = lambda: published(ts, tt, tc)
    ms = _device_rounds(cupy, cases, repeat)
    print(f"\n{np.dtype(dtype).name} on the GPU: median of {repeat} rounds")
    for case, value in ms.items():
        print(f"  {case:<32s} {value:9.3f} ms")
    copy = ms["device copy"]
    ratios = {
        "cupy prepared / device copy": ms["cupy prepared, out"] / copy,
        "cupy prepared check=False / device copy": ms["cupy prepared, out, check=False"]
        / copy,
    }
    if torch is not None:
        ratios["published torch / cupy prepared"] = (
            ms["published torch (CUDA)"] / ms["cupy prepared, out"]
        )
    for case, value in ratios.items():
        print(f"  {case:<42s} {value:6.2f}x")
    throughput = {"dtype": np.dtype(dtype).name, "n": n, "device": name, "ms": ms,
                  "ratios": ratios}  # fmt: skip
    latency = _gpu_latency(cupy, source[:small].copy(), targets, calls, name)
    return [throughput, latency]


def _device_rounds(cupy, cases, repeat):
    """Median CUDA-event milliseconds of each case, interleaved."""
    for fn in cases.values():  # compile, allocate, warm the caches
        fn()
    cupy.cuda.Device().synchronize()
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    samples = {case: [] for case in cases}
    for _ in range(repeat):
        for case, fn in cases.items():
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            samples[case].append(cupy.cuda.get_elapsed_time(start, stop))
    return {case: statistics.median(v) for case, v in samples.items()}


def _gpu_latency(cupy, batch, targets, calls, name):
    """Host time per call of a training-size batch on the device."""
    out = cupy.empty_like(batch)
    cases = {
        "cupy prepared, out": lambda: _api.gpa(batch, targets, seed=1, out=out),
        "cupy prepared, out, check=False": lambda: _api.gpa(
            batch, targets, seed=1, out=out, check=False
        ),
    }
    us = {}
    for case, fn in cases.items():
        for _ in range(50):
            fn()
        per_call = []
        for _ in range(5):
            cupy.cuda.Device().synchronize()
            begin = time.perf_counter()
            for _ in range(calls):
                fn()
            cupy.cuda.Device().synchronize()
            per_call.append((time.perf_counter() - begin) / calls)
        us[case] = statistics.median(per_call) * 1e6
    print(f"  N = {len(batch)} per call on the GPU (median of 5 x {calls} calls):")
    for case, value in us.items():
        print(f"  {case:<32s} {value:9.1f} us")
    return {"dtype": batch.dtype.name, "n": len(batch), "device": name, "us": us}


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
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU rows")
    parser.add_argument(
        "--gpu-n", type=int, default=10_000_000, help="poses of the GPU rows"
    )


def run_args(args):
    """:func:`run` with the options parsed by :func:`add_arguments`."""
    return run(
        n=args.n,
        joints=args.joints,
        dtypes=args.dtype or ("float32", "float64"),
        repeat=args.repeat,
        small=args.small,
        torch_peer=not args.no_torch,
        gpu=not args.no_gpu,
        gpu_n=args.gpu_n,
    )


def main(argv=None):
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    run_args(parser.parse_args(argv))
    return 0
