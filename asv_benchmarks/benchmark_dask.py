"""gpa_arrays.dask.gpa on a local cluster of 1 and 2 single-threaded workers.

Self-contained (it shares no helpers with the rest of the suite). Skipped where
the ``dask`` extra is not installed. ``benchmarks/bench_dask.py`` times the same
call beside the in-memory call and a plain block copy, in one process.
"""

import os

import numpy as np

import gpa_arrays

# GPA_ARRAYS_ASV_SMOKE (the CI smoke run) shrinks the sizes like the other files
_SMOKE = bool(os.environ.get("GPA_ARRAYS_ASV_SMOKE"))
N = 20_000 if _SMOKE else 2_000_000
M = 2_000 if _SMOKE else 200_000
CHUNK = 2_500 if _SMOKE else 250_000
JOINTS = 17


class DaskGPA:
    """``N`` float32 poses persisted on the workers in blocks of ``CHUNK``.

    A timed call builds the graph (scattering the target records), computes and
    waits for the result blocks, which stay on the workers: throughput of the
    scale-out path, with no data passing through the client.
    """

    params = ((1, 2),)
    param_names = ("workers",)
    number = 1
    repeat = (3, 10, 60.0)
    warmup_time = 0
    timeout = 300

    def setup(self, workers):
        """Start the cluster, load the kernels, persist the source."""
        try:
            import dask
            import dask.array as da
            from distributed import Client, LocalCluster, wait

            import gpa_arrays.dask
        except ImportError as exc:
            raise NotImplementedError(f"needs the dask extra: {exc}") from exc
        self.cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            env={"NUMBA_NUM_THREADS": "1"},
        )
        self.client = Client(self.cluster, set_as_default=False)
        self.client.wait_for_workers(workers)
        with dask.config.set(scheduler=self.client), self.client.as_current():
            rng = da.random.default_rng(0)
            source = rng.normal(scale=0.3, size=(N, JOINTS, 3), chunks=(CHUNK, -1, -1))
            # flatter in depth than across, as people are (every pose then
            # lands in front of its camera, which gpa checks)
            depth = np.array([1.0, 1.0, 1 / 3])
            source = (source * depth + np.array([0.0, 0.0, 5.0])).astype(np.float32)
            self.source = source.persist()
            wait(self.source)
        rng = np.random.default_rng(1)
        target = rng.uniform(-0.5, 0.5, size=(M, 1, 2))  # pose-like 2D targets
        target = (target + rng.normal(scale=0.15, size=(M, JOINTS, 2))).astype(
            np.float32
        )
        self.targets = gpa_arrays.prepare_targets(
            target, np.float32([1.46, 1.46, 0.0, 0.0])
        )
        self.seed = 0
        # The first call loads the Numba kernels in every worker (a function of
        # this module cannot be shipped to them: asv_benchmarks is no package
        # they can import) and fills the workers' allocators.
        self.time_gpa(workers)

    def teardown(self, workers):
        """Stop the cluster."""
        self.client.close()
        self.cluster.close()

    def time_gpa(self, workers):
        """One call over the persisted source, waited for."""
        import dask
        from distributed import wait

        self.seed += 1  # fresh keys: nothing is reused from the previous call
        with dask.config.set(scheduler=self.client), self.client.as_current():
            lazy = gpa_arrays.dask.gpa(self.source, self.targets, seed=self.seed)
            wait(lazy.persist())
