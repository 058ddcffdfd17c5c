"""What users would otherwise run: peers for tests and benchmarks.

* :func:`published_torch` is the published PoseDA function's arithmetic, written
  anew in PyTorch with the same operations in the same order (a random
  permutation, a gather of whole target poses, per-pose reductions, the row-0
  focal depth and the per-row unprojection). It imports torch when called.
* :func:`straightforward_numpy` is the vectorised NumPy code a user would write
  for the corrected (paired) method: gather, reduce, broadcast.
* :func:`p_mpjpe_numpy_svd` is P-MPJPE by batched ``numpy.linalg.svd``, the
  peer of the library's Procrustes kernel.

None is used by the library itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["p_mpjpe_numpy_svd", "published_torch", "straightforward_numpy"]


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
