"""The backend interface, declared once: names, signatures, calling convention.

Every backend module (``numpy_``, ``numba_``, ``cupy_``) defines each function
below under the same name with the same :func:`inspect.signature` (parameter
names, kinds and defaults), and lists :data:`NAMES` in its ``__all__``;
``tests/test_backend_interface.py`` checks both for every backend. The
functions here are the reference signatures only; :mod:`.numpy_` holds the
reference implementations and their documentation (shapes, units, record
layout, status categories).

Calling convention
------------------
* Arrays are of the backend's kind: NumPy arrays for the host backends, CuPy
  arrays of one device for ``cupy``. Outputs passed in (``out``, ``out2d``) are
  written in full; nothing else the caller passed is modified.
* A function that checks its input takes the keyword ``status`` and returns a
  *status* as its last (or only) value: ``None`` when nothing was flagged (or
  with ``status=False``, which asks for no counting), otherwise something
  :func:`read_status` turns into a ``(N_CATEGORIES, 2)`` int64 host array of
  ``[count, first index]`` per category of :mod:`gpa_arrays._status`. Host
  backends return that array itself; the device backend returns a pending
  device buffer and never waits for the device by itself.
* ``read_status(*pending, wait=False)`` returns the host statuses of a call,
  one per argument, in a single round trip on a device and as they are on the
  host. Callers read every status through it, so they need no ``if device:``.
* The statistics kernels (``pose_statistics``, ``wasserstein_sorted``) report
  no status: their inputs are checked by the caller.
* A module may also define ``DEVICE = True`` (its arrays live on a CUDA device)
  and ``unusable_reason()`` (a string when the backend cannot run here).
"""

from __future__ import annotations

import inspect

__all__ = ["NAMES", "STATUS_FREE", "mismatches"]


def pair_indices(spec):
    """``(spec.count,)`` int64 target index of each source pose of a pairing."""


def prepare_records(target, camera, root, *, status=True):
    """``(records, status)``: compact per-target records for ``mode="paired"``."""


def prepare_poseda_records(target, camera, root, *, status=True):
    """``(records, status)``: per-target records for ``mode="poseda"``."""


def prepare_wide_records(records, camera, *, status=True):
    """``(wide, status)``: records with the coefficients of 9-value cameras."""


def gpa_records(source, records, out, root, spec, out2d=None, distortion=None,
                perspective=False, *, status=True):  # fmt: skip
    """``status``: GPA of `source` into `out` against prepared records."""


def gpa_poseda(source, records, camera, out, root, spec, out2d=None, *, status=True):
    """``status``: the published arithmetic (``mode="poseda"``) into `out`."""


def gpa_clip(source, origin, anchor, out, *, status=True):
    """``status``: every frame of each clip moved by its reference translation."""


def project_points(points, camera, per, out, *, status=True):
    """``status``: camera-space points projected into `out`."""


def joint_errors(predicted, target, joints, root, align, *, status=True):
    """``(errors, status)``: per-joint errors after an optional alignment."""


def procrustes_fit(predicted, target, joints, *, status=True):
    """``(scale, rotation, translation, status)``: per-pose similarity fits."""


def pose_statistics(poses, root):
    """``(N, 3)`` rows ``[scale, root_x, root_y]`` of ``(N, J, 2)`` poses."""


def wasserstein_sorted(a, b):
    """The 1-D Wasserstein-1 distance (a float) of two sorted finite samples."""


def read_status(*pending, wait=False):
    """Host statuses (list, one per argument) of a call's statuses."""


_REFERENCE = (
    pair_indices,
    prepare_records,
    prepare_poseda_records,
    prepare_wide_records,
    gpa_records,
    gpa_poseda,
    gpa_clip,
    project_points,
    joint_errors,
    procrustes_fit,
    pose_statistics,
    wasserstein_sorted,
    read_status,
)

#: The names every backend module defines, in the order above.
NAMES = tuple(function.__name__ for function in _REFERENCE)

#: The interface functions that take no ``status`` keyword.
STATUS_FREE = ("pair_indices", "pose_statistics", "wasserstein_sorted", "read_status")


def mismatches(module) -> list[str]:
    """What `module` lacks or defines differently from the interface.

    Parameters
    ----------
    module : module
        A backend module.

    Returns
    -------
    list of str
        One line per missing name, name absent from ``module.__all__``, or
        signature that differs from the reference; empty when it conforms.
    """
    problems = []
    exported = set(getattr(module, "__all__", ()))
    for reference in _REFERENCE:
        name = reference.__name__
        function = getattr(module, name, None)
        if function is None:
            problems.append(f"{name}: missing")
            continue
        if name not in exported:
            problems.append(f"{name}: not in __all__")
        expected = inspect.signature(reference)
        found = inspect.signature(function)
        if found != expected:
            problems.append(f"{name}: signature {found}, expected {expected}")
    return problems
