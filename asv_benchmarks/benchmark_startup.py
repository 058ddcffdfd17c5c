"""What a new process pays before its first result: import and first call.

``timeraw_*`` benchmarks run their code in a fresh interpreter each time. The
first call of a Numba backend loads its compiled kernels from the on-disk cache
(``cache=True``); ``FirstCall.setup`` runs the same call once in the benchmark
process so that the cache exists and the timing is the load, not a compile.
"""

import os

import gpa_arrays

from ._common import require_backend

# The fresh interpreter must import the gpa_arrays this suite imported (asv
# strips PYTHONPATH from the child's environment).
_PATH = (
    "import sys\n"
    f"sys.path.insert(0, {os.path.dirname(os.path.dirname(gpa_arrays.__file__))!r})\n"
)

_DATA = """
import numpy as np
rng = np.random.default_rng(0)
source = rng.normal(scale=(0.3, 0.3, 0.1), size=(1024, 17, 3)).astype(np.float32)
source[..., 2] += 5
target = rng.uniform(-0.5, 0.5, size=(1024, 1, 2))
target = (target + rng.normal(scale=0.15, size=(1024, 17, 2))).astype(np.float32)
camera = np.array([1.5, 1.5, 0.0, 0.0], dtype=np.float32)
"""

_CALLS = {
    "one-shot": "gpa_arrays.gpa(source, target, camera, seed=1, backend={backend!r})",
    "prepared": (
        "gpa_arrays.gpa(source, gpa_arrays.prepare_targets(target, camera, "
        "backend={backend!r}), seed=1, backend={backend!r})"
    ),
}


def timeraw_import():
    """``import gpa_arrays`` (must stay light: no Numba, torch or CuPy)."""
    return "import gpa_arrays", _PATH


def timeraw_import_and_load_backends():
    """``import gpa_arrays`` and ``backends()``, which imports Numba's backend."""
    return "import gpa_arrays; gpa_arrays.backends()", _PATH


class FirstCall:
    """The first ``gpa`` call of a process after import, 1024 poses, float32.

    The timed code starts after ``import gpa_arrays`` and ``backends()`` (so
    after Numba's import): it is the kernels' cache load, the first dispatch
    and the call itself.
    """

    params = (("numpy", "numba"), ("one-shot", "prepared"))
    param_names = ("backend", "targets")

    def setup(self, backend, targets):
        require_backend(backend)
        namespace = {}
        exec(self._setup_code() + self._code(backend, targets), namespace)

    @staticmethod
    def _setup_code():
        return _PATH + "import gpa_arrays\ngpa_arrays.backends()\n" + _DATA

    @staticmethod
    def _code(backend, targets):
        return _CALLS[targets].format(backend=backend)

    def timeraw_first_call(self, backend, targets):
        return self._code(backend, targets), self._setup_code()
