"""Backend registry: which kernels exist, which work here, and lazy loading.

Backends are modules with the same function names and argument order
(``prepare_records``, ``prepare_poseda_records``, ``gpa_records``,
``gpa_poseda``, ``pair_indices``). A backend module is imported the first time it
is used, so ``import gpa_arrays`` costs neither Numba's nor CuPy's import time.
"""

from __future__ import annotations

import importlib

__all__ = ["HOST_BACKENDS", "available", "load"]

#: Backends that run on host (NumPy) arrays, fastest first.
HOST_BACKENDS = ("numba", "numpy")
_ALL = ("numpy", "numba")

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
        carries the underlying error.
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
    _loaded[name] = module
    return module


def available() -> tuple[str, ...]:
    """Names of the backends that import and run here, fastest first."""
    names = []
    for name in HOST_BACKENDS:
        try:
            load(name)
        except RuntimeError:
            continue
        names.append(name)
    return tuple(names)
