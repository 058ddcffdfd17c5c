import os

import numpy as np
import pytest

from gpa_arrays import _config

# Hypothesis: deterministic in CI, no deadline (first calls compile kernels).
try:
    from hypothesis import settings

    settings.register_profile("ci", deadline=None, derandomize=True, max_examples=60)
    settings.register_profile("dev", deadline=None, max_examples=60)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover
    pass

#: Host backends every test that compares backends runs on.
CPU_BACKENDS = ["numpy", "numba"]


def make_case(
    rng,
    n,
    m,
    joints=17,
    target_joints=None,
    dtype=np.float64,
    camera_cols=4,
    per_target_camera=True,
):
    """Random but plausible GPA inputs.

    Source poses spread 0.3 m across and 0.1 m in depth (people are flatter
    in depth than in height) about 5 m ahead; target poses spread 0.15 about a
    root anywhere in [-0.5, 0.5]^2. Every pose then lands in front of its
    camera, as ``check=True`` requires (isotropic random poses with a few
    joints can point at the camera and land partly behind it).
    """
    target_joints = joints if target_joints is None else target_joints
    # depth spread, smaller for poses of a few joints, which can otherwise
    # point straight at the camera with next to no image extent
    depth = 0.1 if joints >= 5 else 0.1 * joints / 17
    source = rng.normal(scale=(0.3, 0.3, depth), size=(n, joints, 3))
    source[..., 2] += 5.0
    target = rng.uniform(-0.5, 0.5, size=(m, 1, 2))
    target = target + rng.normal(scale=0.15, size=(m, target_joints, 2))
    if per_target_camera:
        camera = np.empty((m, camera_cols))
        camera[:, :2] = rng.uniform(1.2, 2.4, size=(m, 2))
        camera[:, 2:4] = rng.uniform(-0.1, 0.1, size=(m, 2))
        if camera_cols > 4:
            camera[:, 4:] = rng.normal(scale=0.01, size=(m, camera_cols - 4))
    else:
        camera = np.array([1.5, 1.6, 0.02, -0.03] + [0.0] * (camera_cols - 4))
    return source.astype(dtype), target.astype(dtype), camera.astype(dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(20231001)


@pytest.fixture
def small_chunks(monkeypatch):
    """Run the CPU kernels in parallel with tiny chunks, so that small inputs
    cross chunk and pairing-block boundaries.

    On a runner with one CPU, Numba has one thread and the launchers would pick
    the serial twins: the fixture reports at least two threads to them (the
    parallel twins run correctly on one), and fails a test whose Numba launches
    all went serial, so the parallel kernels are what it tested.
    """
    from gpa_arrays._backends import numba_

    monkeypatch.setattr(_config, "PARALLEL_MIN_POSES", 1)
    # no stall watch: a busy test machine must not send launches to serial
    monkeypatch.setattr(_config, "PARALLEL_WATCH_POSES", 1)
    monkeypatch.setattr(_config, "MIN_POSES_PER_CHUNK", 7)
    monkeypatch.setattr(_config, "PAIRING_BLOCK", 5)
    monkeypatch.setattr(_config, "PREFETCH_DISTANCE", 3)
    threads = numba_._threads()
    monkeypatch.setattr(numba_, "_threads", lambda: max(2, threads))
    decisions = []
    decide = numba_.use_parallel

    def recorded(n):
        decisions.append(decide(n))
        return decisions[-1]

    monkeypatch.setattr(numba_, "use_parallel", recorded)
    yield
    assert not decisions or any(decisions), "no Numba launch ran a parallel kernel"


@pytest.fixture
def generic_kernels(monkeypatch):
    """Force the CPU kernels that read the joint count at run time."""
    monkeypatch.setattr(_config, "MAX_SPECIALIZED_JOINTS", 0)


_cuda_usable = None


def _cuda_device_usable():
    global _cuda_usable
    if _cuda_usable is None:
        import gpa_arrays

        _cuda_usable = "cupy" in gpa_arrays.backends()
    return _cuda_usable


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``gpu`` where CuPy sees no usable CUDA device."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_items and not _cuda_device_usable():
        skip = pytest.mark.skip(reason="no usable CUDA device (CuPy backend)")
        for item in gpu_items:
            item.add_marker(skip)
