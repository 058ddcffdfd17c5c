import os

import numpy as np
import pytest

from gpa_arrays import _config
from gpa_arrays._backends import numba_


@pytest.fixture(autouse=True)
def fresh_stall_watch(monkeypatch):
    """Each test starts with a fresh parallel-launch watch (``numba_._Watch``).

    The watch is process state: a launch that stalled in one test (a busy
    machine, first-touch page faults) would otherwise send the next test's
    launches to the serial twin, and tests that check which twin ran would
    depend on the order they run in.
    """
    monkeypatch.setattr(numba_, "_watch", numba_._Watch())


# Hypothesis: deterministic in CI, no deadline (first calls compile kernels).
try:
    from hypothesis import settings

    settings.register_profile("ci", deadline=None, derandomize=True, max_examples=60)
    settings.register_profile("dev", deadline=None, max_examples=60)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover
    pass

#: Host backends, for the tests that loop over backends inside one test.
CPU_BACKENDS = ["numpy", "numba"]

#: Every backend, as parameters of the ``backend`` fixture: the CUDA one is
#: marked ``gpu`` and skipped cleanly where CuPy sees no device (below), so the
#: GPU suite is this same suite once a device appears.
BACKENDS = ["numpy", "numba", pytest.param("cupy", marks=pytest.mark.gpu)]


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


class Backend:
    """One backend under test: its name and its device's array module.

    Inputs are made on the host (NumPy, as the reference sees them), moved to
    the backend's device with `device`, and results come back with `host`,
    which also checks that they came back as arrays of the backend's device:
    CuPy arrays for ``"cupy"``, NumPy arrays for the host backends.
    """

    def __init__(self, name):
        self.name = name
        if name == "cupy":
            import cupy

            self.xp = cupy
        else:
            self.xp = np

    def __repr__(self):
        return f"Backend({self.name!r})"

    @property
    def on_device(self):
        """True for a backend whose arrays live on a GPU."""
        return self.xp is not np

    def device(self, *arrays):
        """`arrays` (NumPy, or None) as arrays of this backend's device: one
        array for one argument, a tuple for several."""
        moved = tuple(None if a is None else self.xp.asarray(a) for a in arrays)
        return moved[0] if len(moved) == 1 else moved

    def host(self, result):
        """`result` (an array, or a tuple of arrays such as a named tuple) as
        NumPy, after checking every array is this backend's kind of array;
        Python floats (reduced metrics) pass through."""
        if isinstance(result, tuple):
            parts = [self.host(part) for part in result]
            # a named tuple stays one (PoseStatistics, procrustes' result)
            return type(result)(*parts) if hasattr(result, "_fields") else tuple(parts)
        if isinstance(result, float | bool):  # a reduced metric, a statistic
            return result
        assert type(result) is self.xp.ndarray, (
            f"{self.name}: expected a {self.xp.__name__} array back, "
            f"got {type(result).__name__}"
        )
        return self.xp.asnumpy(result) if self.on_device else result

    def __call__(self, function, *arrays, **kwargs):
        """``function(*arrays, backend=name, **kwargs)`` on this backend's
        device, the result on the host: NumPy arrays among `arrays` and among
        the keyword values (a pairing index, a camera) are moved first."""
        arrays = [self.device(a) if isinstance(a, np.ndarray) else a for a in arrays]
        kwargs = {
            key: self.device(value) if isinstance(value, np.ndarray) else value
            for key, value in kwargs.items()
        }
        return self.host(function(*arrays, backend=self.name, **kwargs))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    """Every backend in turn (numpy, numba, and cupy where a device exists).

    Session-scoped (it holds no state), so that hypothesis tests may use it.
    """
    return Backend(request.param)


@pytest.fixture(scope="session", params=BACKENDS[1:])
def kernel_backend(request):
    """Every backend but the NumPy reference itself: for the tests that
    compare a backend with the reference, where comparing the reference with
    itself could not fail."""
    return Backend(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(20231001)


@pytest.fixture
def small_chunks(monkeypatch):
    """Run the CPU kernels in parallel with tiny chunks, and the CUDA kernels
    with tiny blocks and tiles, so that small inputs cross chunk, tile and
    pairing-block boundaries.

    On a runner with one CPU, Numba has one thread and the launchers would pick
    the serial twins: the fixture reports at least two threads to them (the
    parallel twins run correctly on one), and fails a test whose Numba launches
    all went serial, so the parallel kernels are what it tested.
    """
    monkeypatch.setattr(_config, "PARALLEL_MIN_POSES", 1)
    # no stall watch: a busy test machine must not send launches to serial
    monkeypatch.setattr(_config, "PARALLEL_WATCH_POSES", 1)
    monkeypatch.setattr(_config, "MIN_POSES_PER_CHUNK", 7)
    monkeypatch.setattr(_config, "PAIRING_BLOCK", 5)
    monkeypatch.setattr(_config, "PREFETCH_DISTANCE", 3)
    # the CUDA kernels' tiles and blocks too, so that on a device the same
    # inputs cross every block and tile boundary (no effect on the host)
    monkeypatch.setattr(_config, "CUDA_THREADS_PER_BLOCK", 32)
    monkeypatch.setattr(_config, "CUDA_TILE_BYTES", 2048)
    monkeypatch.setattr(_config, "CUDA_MIN_TILE_POSES", 1)
    monkeypatch.setattr(_config, "CUDA_BLOCKS_PER_SM", 1)
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
