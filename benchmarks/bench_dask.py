"""Throughput of gpa_arrays.dask.gpa with 1 and 2 worker processes.

Usage: python benchmarks/bench_dask.py [-n 2000000] [-m 200000] [--chunk 250000]
       [--dtype float32] [--repeat 5]

Rows, timed interleaved round by round in one run (the machines this runs on are
shared and noisy, so compare ratios within one run):

in-memory, 1 thread
    ``gpa_arrays.gpa`` on the whole array in this process, Numba limited to one
    thread (the work one single-threaded Dask worker does per pose).
in-memory, all threads
    The same with Numba's full thread pool.
dask threads
    ``gpa_arrays.dask.gpa`` on a Dask array wrapping the same in-memory source,
    Dask's threaded scheduler, stored into a preallocated array.
cluster, W workers
    ``distributed.LocalCluster(n_workers=W, threads_per_worker=1)`` with
    ``NUMBA_NUM_THREADS=1`` in the workers. The source is generated on the
    workers and persisted there first; a timed call builds the graph (target
    records are scattered), computes and waits for the result blocks, which stay
    on the workers. This is the scale-out case: the data never passes through
    the client.
copy, W workers
    The floor of the cluster rows: each block copied into a fresh array (the
    same bytes read and written, the same allocation, scheduling and
    bookkeeping), no GPA.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _source_on_workers(client, n, joints, chunk, dtype):
    """(N, J, 3) source poses generated on the workers and kept there."""
    import dask
    import dask.array as da
    from distributed import wait

    with dask.config.set(scheduler=client), client.as_current():
        rng = da.random.default_rng(0)
        source = rng.normal(scale=0.3, size=(n, joints, 3), chunks=(chunk, -1, -1))
        source = (source + np.array([0.0, 0.0, 5.0])).astype(dtype).persist()
        wait(source)
    return source


def _copy(block, _token):
    return block.copy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2_000_000, help="source poses")
    parser.add_argument("-m", type=int, default=200_000, help="target poses")
    parser.add_argument("--joints", type=int, default=17)
    parser.add_argument("--chunk", type=int, default=250_000, help="poses per block")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    import dask
    import dask.array as da
    import numba
    from distributed import Client, LocalCluster, wait

    import gpa_arrays
    import gpa_arrays.dask as gdask

    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(1)
    source = rng.normal(scale=(0.3, 0.3, 0.1), size=(args.n, args.joints, 3))
    source = source.astype(dtype)
    source[..., 2] += 5
    target = rng.uniform(-0.5, 0.5, size=(args.m, 1, 2))
    target = target + rng.normal(scale=0.15, size=(args.m, args.joints, 2))
    target = target.astype(dtype)
    camera = np.array([1.46, 1.46, 0.0, 0.0], dtype=dtype)
    targets = gpa_arrays.prepare_targets(target, camera, dtype=dtype)
    out = np.empty_like(source)
    lazy_source = da.from_array(source, chunks=(args.chunk, -1, -1))
    threads = numba.get_num_threads()

    clusters = {}
    for workers in (1, 2):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            env={"NUMBA_NUM_THREADS": "1"},
        )
        client = Client(cluster, set_as_default=False)
        client.wait_for_workers(workers)
        persisted = _source_on_workers(client, args.n, args.joints, args.chunk, dtype)
        clusters[workers] = (cluster, client, persisted)

    seed = iter(range(10**9))

    def in_memory_one_thread():
        numba.set_num_threads(1)
        try:
            gpa_arrays.gpa(source, targets, seed=next(seed), out=out)
        finally:
            numba.set_num_threads(threads)

    def in_memory_all_threads():
        gpa_arrays.gpa(source, targets, seed=next(seed), out=out)

    def dask_threads():
        lazy = gdask.gpa(lazy_source, targets, seed=next(seed), scatter=False)
        da.store(lazy, out, lock=False, scheduler="threads")

    def on_cluster(workers, copy=False):
        _, client, persisted = clusters[workers]

        def run():
            with dask.config.set(scheduler=client), client.as_current():
                if copy:
                    # a fresh key each time, so that nothing is reused
                    lazy = persisted.map_blocks(
                        _copy, next(seed), dtype=persisted.dtype
                    )
                else:
                    lazy = gdask.gpa(persisted, targets, seed=next(seed))
                result = lazy.persist()
                wait(result)
            del result

        return run

    cases = {
        "in-memory, 1 thread": in_memory_one_thread,
        f"in-memory, {threads} threads": in_memory_all_threads,
        "dask threads": dask_threads,
        "cluster, 1 worker": on_cluster(1),
        "cluster, 2 workers": on_cluster(2),
        "copy, 1 worker": on_cluster(1, copy=True),
        "copy, 2 workers": on_cluster(2, copy=True),
    }
    for fn in cases.values():  # warm-up: compile, fault in, start worker pools
        fn()
    samples = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)

    print(
        f"N = {args.n:,} poses, M = {args.m:,} targets, J = {args.joints}, "
        f"{dtype.name}, blocks of {args.chunk:,} ({-(-args.n // args.chunk)} "
        f"blocks), median of {args.repeat}"
    )
    medians = {name: statistics.median(s) for name, s in samples.items()}
    base = medians["cluster, 1 worker"]
    print(f"{'':<26}{'ms':>10}{'Mposes/s':>11}{'vs 1 worker':>13}")
    for name, seconds in medians.items():
        print(
            f"{name:<26}{seconds * 1e3:>10.1f}{args.n / seconds / 1e6:>11.1f}"
            f"{base / seconds:>12.2f}x"
        )
    for cluster, client, _ in clusters.values():
        client.close()
        cluster.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
