"""The prepared-targets container returned by :func:`gpa_arrays.prepare_targets`."""

from __future__ import annotations

import numpy as np

__all__ = ["Targets"]


class Targets:
    """Target poses reduced to what GPA needs, computed once.

    Create with :func:`gpa_arrays.prepare_targets`, then pass in place of
    ``target_2d`` to :func:`gpa_arrays.gpa` as often as needed. Each target is
    reduced to one small record (its 2D box scale, its root unprojected through
    its own camera, its focal lengths and centre), so a call gathers a few bytes
    per source pose instead of a whole 2D pose and a camera row.

    Attributes
    ----------
    records : (M, 8) read-only array, the output dtype
        The records (layout in :mod:`gpa_arrays._backends.numpy_`). Live on the
        device of the arrays they were prepared from: a NumPy array on the host,
        a CuPy array on a CUDA device (also for torch CUDA tensors).
    root : int
        The target root joint the records were computed for.
    n_joints : int
        Joints per target pose (``Jt``).
    backend : str
        The backend that prepared the records.
    distortion : (M, 5) array or None
        ``k1, k2, k3, p1, p2`` of each target's camera when it was given as
        9-value rows (used by ``gpa(..., return_2d=True)``), else ``None``.
    """

    __slots__ = ("_backend", "_n_joints", "_records", "_root", "_wide")

    def __init__(self, records, root, n_joints, backend, wide=None):
        self._records = records
        self._root = root
        self._n_joints = n_joints
        self._backend = backend
        # (M, 16) records plus distortion coefficients, for return_2d with
        # 9-value cameras (layout in _backends/numpy_.py), else None
        self._wide = wide

    def __len__(self) -> int:
        return self._records.shape[0]

    def __repr__(self) -> str:
        return (
            f"Targets(m={len(self)}, n_joints={self._n_joints}, root={self._root}, "
            f"dtype={self.dtype}, backend={self._backend!r})"
        )

    @property
    def records(self):
        """(M, 8) records of the output dtype: a read-only view (a copy on a device).

        Per target: the root unprojected by its camera ``(u, v)``, twice the box
        scale, ``fx, fy, cx, cy``, and one unused slot (the layout is documented
        in ``gpa_arrays/_backends/numpy_.py``). CuPy arrays cannot be made
        read-only, so device records are copied rather than exposed for writing.
        """
        if not isinstance(self._records, np.ndarray):
            return self._records.copy()
        view = self._records.view()
        view.flags.writeable = False
        return view

    @property
    def root(self) -> int:
        """Target root joint index."""
        return self._root

    @property
    def n_joints(self) -> int:
        """Joints per target pose."""
        return self._n_joints

    @property
    def backend(self) -> str:
        """Backend that prepared the records."""
        return self._backend

    @property
    def dtype(self):
        """Floating dtype of the records (and of GPA outputs made with them)."""
        return self._records.dtype

    @property
    def scale(self):
        """(M,) 2D box scale ``s = (w + h) / 2`` of each target, normalised units."""
        return self._records[:, 2] / 2

    @property
    def camera(self):
        """(M, 4) ``[fx, fy, cx, cy]`` of each target (a copy)."""
        return self._records[:, 3:7].copy()

    @property
    def distortion(self):
        """(M, 5) ``[k1, k2, k3, p1, p2]`` of each target (a copy), or ``None``."""
        if self._wide is None:
            return None
        return self._wide[:, 8:13].copy()

    @property
    def root_ray(self):
        """(M, 2) target root unprojected: ``((x - cx) / fx, (y - cy) / fy)``."""
        return self._records[:, 0:2].copy()
