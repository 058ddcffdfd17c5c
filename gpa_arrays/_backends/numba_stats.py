"""Distribution statistics, Numba kernels (tested against ``numpy_stats``).

The kernels are part of the backend interface (:mod:`._interface`) and live in
:mod:`.numba_` with the others; this module names them for callers that ask
for the statistics family alone.
"""

from __future__ import annotations

from .numba_ import pose_statistics, wasserstein_sorted

__all__ = ["pose_statistics", "wasserstein_sorted"]
