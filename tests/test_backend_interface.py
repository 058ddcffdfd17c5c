"""Every backend implements the one interface of ``_backends/_interface.py``.

Names and :func:`inspect.signature` of every backend module, the CUDA one
included: without CuPy it is imported against a stand-in for the one CuPy
function its import calls (``cupy.memoize``), so its signatures are checked on
every machine.
"""

import importlib.util
import inspect
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from gpa_arrays import _backends
from gpa_arrays._backends import _interface, numba_, numba_stats, numpy_, numpy_stats

#: Names a backend may export beyond the interface.
EXTRAS = {"DEVICE", "unusable_reason"}


def _cupy_backend():
    """``cupy_``: the real module when CuPy imports, else loaded on a stand-in."""
    try:
        import cupy  # noqa: F401
    except ImportError:
        pass
    else:
        from gpa_arrays._backends import cupy_

        return cupy_
    stand_in = types.ModuleType("cupy")
    stand_in.memoize = lambda **options: lambda function: function
    path = Path(_interface.__file__).parent / "cupy_.py"
    spec = importlib.util.spec_from_file_location(
        "gpa_arrays._backends._cupy_interface", path
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["cupy"] = stand_in
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["cupy"]
    assert module.cupy is stand_in
    return module


BACKENDS = {"numpy": numpy_, "numba": numba_, "cupy": _cupy_backend()}


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_backend_implements_the_interface(name):
    assert _interface.mismatches(BACKENDS[name]) == []


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_signatures_equal_across_backends(name):
    module = BACKENDS[name]
    for function in _interface.NAMES:
        want = inspect.signature(getattr(numpy_, function))
        assert inspect.signature(getattr(module, function)) == want, function


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_exports_are_the_interface(name):
    module = BACKENDS[name]
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__)
    assert exported - set(_interface.NAMES) <= EXTRAS
    for export in exported:
        assert hasattr(module, export), export


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_status_keyword(name):
    """Functions that check take keyword-only ``status=True``; the others none."""
    module = BACKENDS[name]
    for function in _interface.NAMES:
        parameters = inspect.signature(getattr(module, function)).parameters
        if function in _interface.STATUS_FREE:
            assert "status" not in parameters, function
        else:
            status = parameters["status"]
            assert status.kind is inspect.Parameter.KEYWORD_ONLY, function
            assert status.default is True, function


def test_interface_is_declared_once():
    assert _backends.INTERFACE == _interface.NAMES
    assert {"gpa_clip", "read_status", "pose_statistics"} <= set(_interface.NAMES)
    assert getattr(BACKENDS["cupy"], "DEVICE", False) is True
    assert not hasattr(numpy_, "DEVICE") and not hasattr(numba_, "DEVICE")


def test_stats_family_is_the_backends():
    assert numpy_stats.pose_statistics is numpy_.pose_statistics
    assert numpy_stats.wasserstein_sorted is numpy_.wasserstein_sorted
    assert numba_stats.pose_statistics is numba_.pose_statistics
    assert numba_stats.wasserstein_sorted is numba_.wasserstein_sorted
    # CuPy arrays run the NumPy reference's (it uses only the array's module)
    assert BACKENDS["cupy"].pose_statistics is numpy_stats.pose_statistics
    assert BACKENDS["cupy"].wasserstein_sorted is numpy_stats.wasserstein_sorted


def test_mismatches_names_what_differs():
    fake = types.ModuleType("fake_backend")
    for function in _interface.NAMES:
        setattr(fake, function, getattr(numpy_, function))
    fake.__all__ = [n for n in _interface.NAMES if n != "gpa_clip"]
    fake.project_points = lambda points, camera, per, out: None
    del fake.read_status
    problems = _interface.mismatches(fake)
    assert problems[0] == "gpa_clip: not in __all__"
    assert problems[1].startswith("project_points: signature (points, camera, per,")
    assert problems[2] == "read_status: missing"
    assert len(problems) == 3


def test_load_refuses_a_module_without_the_interface(monkeypatch):
    monkeypatch.setattr(_backends, "_loaded", {})
    monkeypatch.setattr(_backends, "_failed", {})
    partial = types.ModuleType("partial_backend")
    partial.pair_indices = numpy_.pair_indices
    monkeypatch.setattr(
        _backends.importlib, "import_module", lambda name, package: partial
    )
    with pytest.raises(RuntimeError, match="lacks the interface functions prepare_"):
        _backends.load("numpy")


@pytest.mark.parametrize("module", [numpy_, numba_], ids=["numpy", "numba"])
def test_host_read_status_returns_statuses_as_they_are(module):
    status = np.zeros((4, 2), dtype=np.int64)
    got = module.read_status(status, None, wait=True)
    assert got == [status, None] and got[0] is status
    assert module.read_status() == []


@pytest.mark.parametrize("module", [numpy_, numba_], ids=["numpy", "numba"])
def test_host_status_false_counts_nothing(module):
    """``status=False`` gives None where ``status=True`` reports; results equal."""
    target = np.random.default_rng(0).normal(size=(5, 4, 2))
    target[2, 1, 0] = np.nan
    camera = np.tile([1.0, 1.0, 0.0, 0.0], (5, 1))
    camera[3, 0] = -1.0
    records, found = module.prepare_records(target, camera, 0)
    records_on, found_on = module.prepare_records(target, camera, 0, status=True)
    records_off, found_off = module.prepare_records(target, camera, 0, status=False)
    assert found is not None and found_off is None
    np.testing.assert_array_equal(found_on, found)
    np.testing.assert_array_equal(records_off, records)
    np.testing.assert_array_equal(records_on, records)
    points = np.ones((3, 3))
    points[1, 2] = -1.0
    out = np.empty((3, 2))
    assert module.project_points(points, camera[:1], 3, out) is not None
    assert module.project_points(points, camera[:1], 3, out, status=False) is None
