"""Backend registry: which kernels exist, which work here, and lazy loading.

Backends are modules that implement one interface, declared once in
:mod:`._interface` (:data:`INTERFACE`: the function names; their reference
signatures and the calling convention are there): ``numpy_`` (the reference),
``numba_`` (fused CPU kernels) and ``cupy_`` (CUDA kernels). A backend module is
imported the first time it is used, so ``import gpa_arrays`` costs neither
Numba's nor CuPy's import time.

Every function that checks its input takes a keyword ``status`` (False: count
nothing) and returns a status that the module's ``read_status`` turns into a
host ``(N_CATEGORIES, 2)`` array or None: on the host backends the statuses are
host arrays already and ``read_status`` returns them as they are; the device
backend (``cupy``, CuPy arrays, marked by ``DEVICE = True``) returns pending
device statuses, which its ``read_status`` reads in a single round trip. A
module may define ``unusable_reason()``; a string result makes the backend
unusable here (CuPy imports without a GPU, but cannot run).
"""

from __future__ import annotations

import importlib

from ._interface import NAMES as INTERFACE

__all__ = ["DEVICE_BACKENDS", "HOST_BACKENDS", "INTERFACE", "available", "load"]

#: Backends that run on host (NumPy) arrays, fastest first.
HOST_BACKENDS = ("numba", "numpy")
#: Backends that run on CUDA device (CuPy) arrays.
DEVICE_BACKENDS = ("cupy",)
_ALL = ("numpy", "numba", "cupy")

_loaded: dict = {}
_failed: dict = {}


def load(name: str):
    """Import and return backend module `name`.

    Raises
    ------
    ValueError
        If `name` is not a backend.
    RuntimeError
        If the backend cannot be used here (its import failed); the message
        carries the underlying error. Also when the module lacks a function of
        the interface.
    """
    module = _loaded.get(name)
    if module is not None:
        return module
    if name not in _ALL:
        raise ValueError(
            f"backend: expected 'auto' or one of {', '.join(map(repr, _ALL))}, "
            f"got {name!r}"
        )
    if name in _failed:
        raise RuntimeError(f"backend {name!r} is not usable here: {_failed[name]}")
    try:
        module = importlib.import_module(f".{name}_", __name__)
    except ImportError as exc:
        _failed[name] = f"{type(exc).__name__}: {exc}"
        raise RuntimeError(
            f"backend {name!r} is not usable here: {_failed[name]}"
        ) from exc
    missing = [function for function in INTERFACE if not hasattr(module, function)]
    if missing:  # a programming error, caught here rather than mid-call
        raise RuntimeError(
            f"backend {name!r} lacks the interface functions {', '.join(missing)}"
        )
    unusable = getattr(module, "unusable_reason", None)
    reason = unusable() if unusable is not None else None
    if reason is not None:
        _failed[name] = reason
        raise RuntimeError(f"backend {name!r} is not usable here: {reason}")
    _loaded[name] = module
    return module


def available() -> tuple[str, ...]:
    """Names of the backends that import and run here, device backends first."""
    names = []
    for name in DEVICE_BACKENDS + HOST_BACKENDS:
        try:
            load(name)
        except RuntimeError:
            continue
        names.append(name)
    return tuple(names)
