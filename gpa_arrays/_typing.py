"""Type aliases for the public annotations.

gpa_arrays takes NumPy, CuPy and torch arrays (CPU or CUDA) and any object that
speaks DLPack, and gives the result back in the caller's type. No static type
covers that set without importing CuPy or torch (which ``import gpa_arrays``
never does), and ``numpy.typing.ArrayLike`` would wrongly promise that lists and
scalars are accepted and that NumPy comes back. So the array alias is
:data:`typing.Any`, named for what it documents: a type checker accepts any array
there, and a reader of a signature sees which arguments are arrays.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import numpy as np

__all__ = ["ArrayLike", "BackendName", "PairingName", "Seed"]

#: An array of any supported library: NumPy, CuPy, torch (CPU or CUDA) or any
#: object with ``__dlpack__``. Results of functions that take one are of the
#: caller's type, on its device.
ArrayLike: TypeAlias = Any

#: A backend name as accepted by ``backend=`` arguments.
BackendName: TypeAlias = Literal["auto", "numba", "numpy", "cupy"]

#: A named pairing, as accepted by ``pairing=`` arguments (which also take an
#: integer array of target indices).
PairingName: TypeAlias = Literal["permutation", "random", "identity"]

#: A pairing seed: ``None`` draws fresh entropy, an int or a Generator is
#: reproducible.
Seed: TypeAlias = int | np.random.Generator | None
