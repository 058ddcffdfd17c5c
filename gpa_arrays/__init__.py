"""gpa_arrays: Global Position Alignment for 3D human pose, as array kernels.

Global Position Alignment (GPA) is the viewpoint half of PoseDA (Chai et al.,
ICCV 2023): it moves each source-domain 3D pose to the camera-space position at
which, through a target-domain camera, its root lands on a randomly paired
target 2D pose's root and its 2D box has that pose's scale.

Public functions
----------------
gpa               align source poses against targets
GPA               the same as a reusable augmentation (training loops)
prepare_targets   reduce targets to compact records once, for repeated calls
pair_indices      the pairing a ``gpa`` call uses, as indices
project           camera-space points to normalised screen coordinates
backends          backends usable here

NumPy, CuPy and torch arrays (CPU or CUDA), and any DLPack array, go in; the
result comes back in the caller's type, on its device, without copies.

Submodules (imported on first use)
----------------------------------
stats             2D scale / root statistics, summaries, Wasserstein-1 distance
plot              the paper's distribution figure (needs matplotlib)
synthetic         built-in synthetic source and target domains
cli               the ``gpa-arrays`` command line
dask              the same alignment on Dask arrays (needs dask, distributed)
camera            screen normalisation, intrinsics, extrinsics, projection
metrics           MPJPE, P-MPJPE, N-MPJPE, PCK, AUC (millimetres)
skeletons         H36M-17, H36M-16 and MPI-INF-3DHP-17 layouts and mappings
experiments       cross-domain lifting with and without GPA (torch to run)
"""

import importlib

from ._api import backends, gpa, pair_indices, prepare_targets
from ._augment import GPA
from ._targets import Targets

# The one place the version is written: pyproject.toml reads it from here
# (setuptools' dynamic version, read statically, without importing the package).
__version__ = "0.1.0.dev0"

_SUBMODULES = ("camera", "cli", "dask", "experiments", "metrics", "plot",
               "skeletons", "stats", "synthetic")  # fmt: skip


def __getattr__(name):
    # submodules load on first use, so `import gpa_arrays` stays light
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name == "project":
        return importlib.import_module(".camera", __name__).project
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_SUBMODULES, "project"])


__all__ = [
    "GPA",
    "Targets",
    "__version__",
    "backends",
    "camera",
    "gpa",
    "metrics",
    "pair_indices",
    "prepare_targets",
    "project",
    "skeletons",
]
