"""What users would otherwise run: peers for tests and benchmarks.

* :func:`published_torch` is the published PoseDA function's arithmetic, written
  anew in PyTorch with the same operations in the same order (a random
  permutation, a gather of whole target poses, per-pose reductions, the row-0
  focal depth and the per-row unprojection). It imports torch when called.
* :func:`published_numpy` and :func:`published_jax` are the same formula in
  NumPy and in ``jax.numpy``.
* :func:`formula_peers` makes each of them ready to time on given inputs and a
  given pairing: the published formula in NumPy, eager torch, ``torch.compile``
  of :func:`published_torch` (inductor; on CUDA tensors, Triton) and
  ``jax.jit`` of :func:`published_jax`, on the host or on a CUDA device. It is
  what ``gpa-arrays bench`` and the asv suite both time, and what
  ``tests/test_peers.py`` holds to ``gpa(..., mode="poseda")`` for the same
  pairing, so that a peer computing something else cannot flatter us.
* :func:`straightforward_numpy` is the vectorised NumPy code a user would write
  for the corrected (paired) method: gather, reduce, broadcast.
* :func:`p_mpjpe_numpy_svd` is P-MPJPE by batched ``numpy.linalg.svd``, the
  peer of the library's Procrustes kernel.

None is used by the library itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "FORMULA_PEERS",
    "FormulaPeer",
    "PeerUnavailable",
    "formula_peer",
    "formula_peers",
    "p_mpjpe_numpy_svd",
    "published_jax",
    "published_numpy",
    "published_torch",
    "straightforward_numpy",
]

#: The published-formula peers, weakest to strongest as measured on a 2-core CPU.
FORMULA_PEERS = ("numpy (published)", "torch eager", "torch.compile", "jax.jit")


def published_torch(source_3d, target_2d, camera_params, index=None):
    """The published GPA function, reimplemented operation for operation.

    Parameters
    ----------
    source_3d : (N, J, 3) torch.Tensor, metres
    target_2d : (N, J, 2) torch.Tensor, normalised screen coordinates
    camera_params : (N, 4+) torch.Tensor, rows ``[fx, fy, cx, cy, ...]``
    index : (N,) torch.Tensor of int64, optional
        The permutation to pair with; ``torch.randperm(N)`` when omitted, as in
        the published code.

    Returns
    -------
    (N, J, 3) torch.Tensor
        Equal bit for bit to ``gpa(..., mode="poseda", pairing=index)``.
    """
    import torch

    if source_3d.shape[:2] != target_2d.shape[:2]:
        raise ValueError("poses should have same size")
    if index is None:
        index = torch.randperm(target_2d.shape[0], device=target_2d.device)
    target = target_2d[index]  # advanced indexing copies: the caller's array is safe
    w = torch.max(target[..., 0], dim=-1)[0] - torch.min(target[..., 0], dim=-1)[0]
    h = torch.max(target[..., 1], dim=-1)[0] - torch.min(target[..., 1], dim=-1)[0]
    s = (w + h) / 2
    dx = (
        torch.max(source_3d[..., 0], dim=-1)[0]
        - torch.min(source_3d[..., 0], dim=-1)[0]
    )
    dy = (
        torch.max(source_3d[..., 1], dim=-1)[0]
        - torch.min(source_3d[..., 1], dim=-1)[0]
    )
    fx, fy = camera_params[0, :2]
    z = (fx * dx + fy * dy) / (2 * s)
    target[..., 0, :] -= camera_params[..., 2:4]
    target[..., 0, :] /= camera_params[..., :2]
    u, v = target[..., 0, 0], target[..., 0, 1]
    x, y = z * u, z * v
    position = torch.stack([x, y, z], dim=1).reshape(-1, 1, 3)
    return source_3d - source_3d[:, :1, :] + position


def published_numpy(source_3d, target_2d, camera_params, index):
    """The published GPA formula in NumPy, operation for operation.

    The same operations, in the same order and dtype, as :func:`published_torch`
    (hence as the published function) with the pairing given.

    Parameters
    ----------
    source_3d : (N, J, 3) ndarray, metres
    target_2d : (N, J, 2) ndarray, normalised screen coordinates
    camera_params : (N, 4+) ndarray, rows ``[fx, fy, cx, cy, ...]``
    index : (N,) integer ndarray
        The permutation to pair with (the published code draws
        ``torch.randperm(N)``).

    Returns
    -------
    (N, J, 3) ndarray
        Equal bit for bit to ``gpa(..., mode="poseda", pairing=index)``.
    """
    if source_3d.shape[:2] != target_2d.shape[:2]:
        raise ValueError("poses should have same size")
    target = target_2d[index]  # a copy: the in-place steps below leave the input
    w = target[..., 0].max(axis=-1) - target[..., 0].min(axis=-1)
    h = target[..., 1].max(axis=-1) - target[..., 1].min(axis=-1)
    s = (w + h) / 2
    dx = source_3d[..., 0].max(axis=-1) - source_3d[..., 0].min(axis=-1)
    dy = source_3d[..., 1].max(axis=-1) - source_3d[..., 1].min(axis=-1)
    fx, fy = camera_params[0, :2]
    z = (fx * dx + fy * dy) / (2 * s)
    target[..., 0, :] -= camera_params[..., 2:4]
    target[..., 0, :] /= camera_params[..., :2]
    u, v = target[..., 0, 0], target[..., 0, 1]
    position = np.stack([z * u, z * v, z], axis=1).reshape(-1, 1, 3)
    return source_3d - source_3d[:, :1, :] + position


def published_jax(source_3d, target_2d, camera_params, index):
    """The published GPA formula in ``jax.numpy``, to be traced by ``jax.jit``.

    JAX arrays are immutable, so the published code's in-place update of the
    paired targets' root joint becomes one expression on that joint; the
    arithmetic (operations, order, dtype) is the published one.

    Parameters
    ----------
    source_3d : (N, J, 3) jax.Array, metres
    target_2d : (N, J, 2) jax.Array, normalised screen coordinates
    camera_params : (N, 4+) jax.Array, rows ``[fx, fy, cx, cy, ...]``
    index : (N,) integer jax.Array
        The permutation to pair with.

    Returns
    -------
    (N, J, 3) jax.Array
        Called eagerly, equal bit for bit to ``gpa(..., mode="poseda",
        pairing=index)``. Under ``jax.jit`` XLA contracts ``fx * dx + fy * dy``
        into a fused multiply-add (on the CPU too), which rounds once instead
        of twice: the depth, and so the position, may differ by an ulp
        (``tests/test_peers.py`` bounds it).
    """
    import jax.numpy as jnp

    if source_3d.shape[:2] != target_2d.shape[:2]:
        raise ValueError("poses should have same size")
    target = target_2d[index]
    w = jnp.max(target[..., 0], axis=-1) - jnp.min(target[..., 0], axis=-1)
    h = jnp.max(target[..., 1], axis=-1) - jnp.min(target[..., 1], axis=-1)
    s = (w + h) / 2
    dx = jnp.max(source_3d[..., 0], axis=-1) - jnp.min(source_3d[..., 0], axis=-1)
    dy = jnp.max(source_3d[..., 1], axis=-1) - jnp.min(source_3d[..., 1], axis=-1)
    fx, fy = camera_params[0, 0], camera_params[0, 1]
    z = (fx * dx + fy * dy) / (2 * s)
    root = (target[:, 0, :] - camera_params[:, 2:4]) / camera_params[:, :2]
    u, v = root[:, 0], root[:, 1]
    position = jnp.stack([z * u, z * v, z], axis=1).reshape(-1, 1, 3)
    return source_3d - source_3d[:, :1, :] + position


# --- ready-to-time peers -------------------------------------------------------------


class PeerUnavailable(RuntimeError):
    """A peer cannot run here (its framework or device is missing)."""


@dataclasses.dataclass
class FormulaPeer:
    """One peer, set up on its inputs and ready to time.

    Attributes
    ----------
    name : str
        One of :data:`FORMULA_PEERS`.
    device : {"cpu", "cuda"}
    call : callable
        ``call()`` computes the published formula once on the peer's inputs
        (put on its device once, at setup) and returns when the result is
        ready (device work synchronised): the steady-state call to time.
    compile_s : float or None
        Wall time of the first call, which traced and compiled the function
        (``torch.compile``, ``jax.jit``); None for eager peers. Reported apart
        from the steady-state time.
    to_numpy : callable
        ``to_numpy(result)``: a result of `call` as a host ndarray.
    """

    name: str
    device: str
    call: Callable[[], Any]
    compile_s: float | None
    to_numpy: Callable[[Any], np.ndarray]

    def result(self):
        """One call's result as an (N, J, 3) host ndarray."""
        return self.to_numpy(self.call())


@contextlib.contextmanager
def _compiler_warnings_ignored():
    # torch.compile imports parts of torch that warn about their own deprecated
    # APIs (torch.jit.script_method); they are not ours to fix and must not
    # stop a run under -W error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _first_call(fn):
    """Call `fn` once (it compiles); return its wall time in seconds."""
    start = time.perf_counter()
    with _compiler_warnings_ignored():
        fn()
    return time.perf_counter() - start


def _torch_peer(name, data, index, device):
    try:
        import torch
    except ImportError:
        raise PeerUnavailable("torch is not installed") from None
    if device == "cuda" and not torch.cuda.is_available():
        raise PeerUnavailable("torch sees no CUDA device")
    ts, tt, tc, ti = (torch.from_numpy(a).to(device) for a in (*data, index))
    sync = torch.cuda.synchronize if device == "cuda" else _no_sync
    fn, compile_s = published_torch, None
    if name == "torch.compile":
        # dynamic=False: one graph for these shapes, as a training loop of
        # fixed batches gets; the pairing is an argument, so a new permutation
        # per call would not recompile
        with _compiler_warnings_ignored():
            fn = torch.compile(published_torch, dynamic=False)

    def call():
        result = fn(ts, tt, tc, index=ti)
        sync()
        return result

    if name == "torch.compile":
        compile_s = _first_call(call)
    return FormulaPeer(name, device, call, compile_s, lambda r: r.cpu().numpy())


def _import_jax():
    # JAX takes 75 % of a GPU's memory at start-up unless told otherwise: next
    # to CuPy and torch that memory is needed; set before jax is imported
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    try:
        import jax
    except ImportError:
        raise PeerUnavailable("jax is not installed") from None
    return jax


def _jax_peer(data, index, device):
    jax = _import_jax()
    try:
        target_device = jax.devices("gpu" if device == "cuda" else "cpu")[0]
    except RuntimeError as exc:
        raise PeerUnavailable(f"jax has no {device} device ({exc})") from None
    # JAX computes float64 only with x64 enabled; the context (also around
    # every call: it is part of what a jitted function is compiled for) keeps
    # the setting local to this peer
    x64 = data[0].dtype == np.float64
    with jax.enable_x64(x64):
        args = [jax.device_put(a, target_device) for a in (*data, index)]
    fn = jax.jit(published_jax)

    def call():
        with jax.enable_x64(x64):
            return fn(*args).block_until_ready()

    compile_s = _first_call(call)
    return FormulaPeer("jax.jit", device, call, compile_s, np.asarray)


def formula_peer(name, source_3d, target_2d, camera_params, index, device="cpu"):
    """Set up one published-formula peer on host inputs.

    Parameters
    ----------
    name : str
        One of :data:`FORMULA_PEERS`.
    source_3d : (N, J, 3) ndarray, float32 or float64, metres
    target_2d : (N, J, 2) ndarray, same dtype
    camera_params : (N, 4+) ndarray, same dtype
    index : (N,) integer ndarray
        The pairing (a permutation of ``range(N)``; ``pair_indices(N, N,
        seed=s)`` is the one ``gpa(..., seed=s)`` uses).
    device : {"cpu", "cuda"}
        Where the peer computes; its inputs are put there once, here (torch
        views host arrays on the CPU, JAX copies them; no peer writes them).

    Returns
    -------
    FormulaPeer
        Compiled peers have been called once (their ``compile_s``).

    Raises
    ------
    PeerUnavailable
        When the peer's framework is not installed or sees no such device, or
        for the NumPy peer on a device.
    ValueError
        For an unknown `name` or `device`.
    """
    if name not in FORMULA_PEERS:
        raise ValueError(f"name: expected one of {FORMULA_PEERS}, got {name!r}")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    data = (source_3d, target_2d, camera_params)
    index = np.asarray(index, dtype=np.int64)
    if name == "numpy (published)":
        if device != "cpu":
            raise PeerUnavailable("NumPy computes on the host only")
        return FormulaPeer(
            name, device, lambda: published_numpy(*data, index), None, np.asarray
        )
    if name == "jax.jit":
        return _jax_peer(data, index, device)
    return _torch_peer(name, data, index, device)


def formula_peers(
    source_3d, target_2d, camera_params, index, device="cpu", names=FORMULA_PEERS
):
    """Set up every peer of `names` that can run here; note why the others cannot.

    Parameters
    ----------
    source_3d, target_2d, camera_params, index, device
        As for :func:`formula_peer`.
    names : sequence of str
        Peers to set up, from :data:`FORMULA_PEERS`.

    Returns
    -------
    peers : dict
        Name -> :class:`FormulaPeer`, for the peers that run.
    skipped : dict
        Name -> the reason, one line, for the others (not installed, no such
        device, or the compiler failed: ``torch.compile`` needs a C++ compiler
        on the host and Triton on a GPU).
    """
    peers, skipped = {}, {}
    for name in names:
        try:
            peers[name] = formula_peer(
                name, source_3d, target_2d, camera_params, index, device
            )
        except PeerUnavailable as exc:
            skipped[name] = str(exc)
        except Exception as exc:  # a compiler that is missing or fails
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            skipped[name] = f"failed to set up: {type(exc).__name__}: {first}"[:200]
    return peers, skipped


def _no_sync():
    pass


def straightforward_numpy(source, target, camera, index, root=0, target_root=0):
    """Vectorised NumPy GPA in paired mode with explicit pairing indices.

    Parameters
    ----------
    source : (N, J, 3) ndarray
    target : (M, Jt, 2) ndarray
    camera : (M, 4+) ndarray
    index : (N,) integer ndarray
    root, target_root : int

    Returns
    -------
    (N, J, 3) ndarray
    """
    t = target[index]
    c = camera[index]
    s = (
        (t[..., 0].max(1) - t[..., 0].min(1)) + (t[..., 1].max(1) - t[..., 1].min(1))
    ) / 2
    dx = source[..., 0].max(1) - source[..., 0].min(1)
    dy = source[..., 1].max(1) - source[..., 1].min(1)
    z = (c[:, 0] * dx + c[:, 1] * dy) / (2 * s)
    u = (t[:, target_root, 0] - c[:, 2]) / c[:, 0]
    v = (t[:, target_root, 1] - c[:, 3]) / c[:, 1]
    position = np.stack([z * u, z * v, z], axis=1)[:, None, :]
    return source - source[:, root : root + 1] + position


def p_mpjpe_numpy_svd(predicted, target):
    """P-MPJPE the way NumPy users compute it: batched ``numpy.linalg.svd``.

    For every pose, the similarity transform (scale, rotation, translation) that
    best maps the prediction onto the ground truth in the least-squares sense
    (Umeyama/Kabsch: the SVD of the 3x3 cross-covariance, with the sign of the
    last singular vector flipped when the rotation would be a reflection), then
    the mean joint distance. The batched-SVD formulation is the one of
    VideoPose3D's ``p_mpjpe`` (Pavllo et al., CVPR 2019); written anew here as
    the peer the library's Procrustes kernel is benchmarked against.

    Parameters
    ----------
    predicted, target : (N, J, 3) ndarray, metres

    Returns
    -------
    float
        Mean per-joint position error after alignment, millimetres.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mu_p = predicted.mean(axis=1, keepdims=True)
    mu_t = target.mean(axis=1, keepdims=True)
    p = predicted - mu_p
    t = target - mu_t
    # row vectors: find R, s minimising sum_k |s p_k R - t_k|^2
    cross = np.einsum("nki,nkj->nij", p, t)  # (N, 3, 3) = p^T t
    u, sigma, vt = np.linalg.svd(cross)
    flip = np.sign(np.linalg.det(u @ vt))  # -1 where U V^T is a reflection
    u[:, :, -1] *= flip[:, None]
    sigma[:, -1] *= flip
    rotation = u @ vt
    scale = sigma.sum(axis=1) / np.einsum("nki,nki->n", p, p)
    aligned = scale[:, None, None] * (p @ rotation) + mu_t
    return float(np.linalg.norm(aligned - target, axis=-1).mean() * 1000.0)
