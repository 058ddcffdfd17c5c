"""Smoke test of an installed gpa-arrays wheel, run inside a clean environment.

Usage: ``python smoke_test.py VERSION``, with the environment's own Python, from a
directory outside the repository (so that the installed package, not the source
tree, is imported). Run by ``.ci/check_dist.sh``.
"""

import sys
from importlib import metadata, resources
from pathlib import Path

import numpy as np

import gpa_arrays


def main(version):
    """Import, version, shipped files, and one tiny call per host backend."""
    where = Path(gpa_arrays.__file__).resolve()
    assert Path(sys.prefix).resolve() in where.parents, f"imported from {where}"
    assert gpa_arrays.__version__ == version, (gpa_arrays.__version__, version)
    assert metadata.version("gpa-arrays") == version, metadata.version("gpa-arrays")

    package = resources.files("gpa_arrays")
    assert package.joinpath("py.typed").is_file(), "py.typed not installed"
    kernels = package.joinpath("_backends", "kernels")
    names = sorted(p.name for p in kernels.iterdir())
    assert "gpa.cu" in names and "common.cuh" in names, names

    usable = gpa_arrays.backends()
    assert "numpy" in usable and "numba" in usable, usable
    rng = np.random.default_rng(0)
    source = rng.normal(scale=0.3, size=(8, 17, 3))
    source[..., 2] += 5.0
    target = rng.uniform(-0.5, 0.5, size=(8, 17, 2))
    camera = np.array([1.5, 1.5, 0.0, 0.0])
    results = {
        backend: gpa_arrays.gpa(source, target, camera, seed=0, backend=backend)
        for backend in ("numpy", "numba")
    }
    assert results["numpy"].shape == source.shape
    assert np.isfinite(results["numpy"]).all()
    # the Numba kernels agree with the NumPy reference bit for bit (no fastmath)
    np.testing.assert_array_equal(results["numba"], results["numpy"])
    # the alignment moves poses rigidly: joint-to-root offsets are unchanged
    offsets = results["numba"] - results["numba"][:, :1]
    np.testing.assert_allclose(offsets, source - source[:, :1], atol=1e-12)
    print(f"smoke test: ok (gpa-arrays {version} from {where.parent}, "
          f"backends {', '.join(usable)})")  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:])
