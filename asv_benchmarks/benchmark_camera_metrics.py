"""Camera, projection and metric kernels at realistic sizes.

Written against the API of the camera/metrics issue (``gpa_arrays.camera``:
``project``, ``world_to_camera``; ``gpa_arrays.metrics``: ``mpjpe``,
``p_mpjpe``, ``n_mpjpe``, ``pck``, ``auc``). A function that is not in the
version under test makes its cases skip (``NotImplementedError`` in
``setup``), so the suite runs on every commit. ``backend="auto"`` calls the
function without a backend keyword; a named backend needs the keyword.

The Procrustes target (P-MPJPE >= 5x faster than batched ``numpy.linalg.svd``
at N = 100,000) compares ``Metrics`` (``metric="p_mpjpe"``) with
``ProcrustesNumPySVD`` at the same size.
"""

import functools
import importlib
import inspect

import numpy as np

from gpa_arrays._peers import p_mpjpe_numpy_svd

from ._common import JOINTS, LARGE, SMOKE, inputs, require_backend, synchronizer

#: Poses per metric call: the 3DHP test set is 2,929 frames, H36M's about 550,000;
#: the Procrustes target is stated at 100,000.
METRIC_SIZES = (512,) if SMOKE else (2_929, 100_000)
BACKENDS = ("auto", "numpy", "numba", "cupy")


def _function(module, name):
    """``gpa_arrays.<module>.<name>``, or skip the case if this version lacks it."""
    try:
        found = importlib.import_module(f"gpa_arrays.{module}")
    except ImportError:
        raise NotImplementedError(
            f"gpa_arrays.{module} is not in this version"
        ) from None
    fn = getattr(found, name, None)
    if fn is None:
        raise NotImplementedError(f"gpa_arrays.{module}.{name} is not in this version")
    return fn


def _on_backend(fn, backend):
    """`fn` bound to `backend`, or skip if it cannot be asked for one."""
    if backend == "auto":
        return fn
    if "backend" not in inspect.signature(fn).parameters:
        raise NotImplementedError(f"{fn.__name__}() takes no backend keyword")
    require_backend(backend)
    return functools.partial(fn, backend=backend)


def _device(backend):
    return "cupy" if backend == "cupy" else "cpu"


def _to_device(array, backend):
    if backend == "cupy":
        import cupy

        return cupy.asarray(array)
    return array


class Project:
    """``camera.project`` of N = 1e6 poses of 17 joints (17 M points)."""

    params = (BACKENDS, ("linear (4)", "distorted (9)"), ("float32", "float64"))
    param_names = ("backend", "camera", "dtype")

    def setup(self, backend, camera, dtype):
        project = _on_backend(_function("camera", "project"), backend)
        source, _, _ = inputs(LARGE, 1, dtype, _device(backend))
        # [fx, fy, cx, cy] normalised (H36M-like), then k1, k2, k3, p1, p2
        row = [2.29, 2.29, 0.025, 0.029]
        if camera.startswith("distorted"):
            row += [-0.2, 0.24, -0.003, -0.0004, -0.0012]
        row = np.array(row, dtype=dtype)
        row = _to_device(row, backend)
        self.call = lambda: project(source, row)
        self.sync = synchronizer(_device(backend))
        self.call()
        self.sync()

    def time_project(self, *params):
        self.call()
        self.sync()


class WorldToCamera:
    """``camera.world_to_camera`` of N = 1e6 poses, quaternion or 3x3 rotation."""

    params = (BACKENDS, ("quaternion", "matrix"))
    param_names = ("backend", "rotation")

    def setup(self, backend, rotation):
        convert = _on_backend(_function("camera", "world_to_camera"), backend)
        points, _, _ = inputs(LARGE, 1, "float64", _device(backend))
        half = np.pi / 8  # a 45 degree rotation about z
        if rotation == "quaternion":
            rot = np.array([np.cos(half), 0.0, 0.0, np.sin(half)])
        else:
            c, s = np.cos(2 * half), np.sin(2 * half)
            rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        rot = _to_device(rot, backend)
        position = _to_device(np.array([0.5, -1.0, 2.0]), backend)
        self.call = lambda: convert(points, rot, position)
        self.sync = synchronizer(_device(backend))
        self.call()
        self.sync()

    def time_world_to_camera(self, *params):
        self.call()
        self.sync()


class Metrics:
    """Each metric's mean over N predicted/ground-truth poses (metres in)."""

    params = (BACKENDS, ("mpjpe", "p_mpjpe", "n_mpjpe", "pck", "auc"), METRIC_SIZES)
    param_names = ("backend", "metric", "n")

    def setup(self, backend, metric, n):
        fn = _on_backend(_function("metrics", metric), backend)
        predicted, target = _pose_pair(n, _device(backend))
        self.call = lambda: fn(predicted, target)
        self.sync = synchronizer(_device(backend))
        self.call()
        self.sync()

    def time_metric(self, *params):
        self.call()
        self.sync()


class ProcrustesNumPySVD:
    """The peer of ``p_mpjpe``: batched ``numpy.linalg.svd`` of the 3x3 matrices."""

    params = (METRIC_SIZES,)
    param_names = ("n",)

    def setup(self, n):
        self.predicted, self.target = _pose_pair(n, "cpu")

    def time_p_mpjpe(self, n):
        p_mpjpe_numpy_svd(self.predicted, self.target)


def _pose_pair(n, device):
    """Ground truth and a noisy, rotated, scaled prediction, root-relative."""
    rng = np.random.default_rng(3)
    target = rng.normal(scale=0.25, size=(n, JOINTS, 3))
    target -= target[:, :1]
    angle = 0.3
    rot = np.array(
        [
            [np.cos(angle), -np.sin(angle), 0.0],
            [np.sin(angle), np.cos(angle), 0.0],
            [0.0, 0.0, 1.0],
        ]
    )
    predicted = 1.1 * target @ rot.T + rng.normal(scale=0.02, size=target.shape)
    if device == "cupy":
        import cupy

        return cupy.asarray(predicted), cupy.asarray(target)
    return predicted, target
