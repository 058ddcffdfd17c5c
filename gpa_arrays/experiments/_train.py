"""Training and scoring of the lifters (PyTorch, imported when an experiment runs)."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from .. import metrics
from .._augment import GPA
from ._models import STGCN, SemGCN, SimpleBaseline, TemporalLifter

__all__ = ["train_and_score", "window"]


def window(lifter, config):
    """Frames a temporal lifter sees (None for the single-frame ones)."""
    if lifter == "videopose3d":
        return config.receptive_field
    if lifter == "stgcn":
        return config.stgcn_frames
    return None


def _align_frames(aug, poses_3d):
    """GPA on a batch of single frames: the moved poses' 2D, (B, J, 2)."""
    return aug(poses_3d)[1]


def _align_clips(aug, clips_3d):
    """GPA on a batch of clips (B, F, J, 3): the moved clips' 2D, (B, F, J, 2).

    Clip-consistent GPA: each clip moves by one translation, the one that puts
    its centre frame on its paired target pose's root and box scale, so the
    motion within the clip is kept. (Per-frame GPA, each frame aligned on its
    own, was ``aug(clips_3d.reshape(B * F, J, 3))``; it makes a clip's 2D
    root and scale jump from frame to frame.)
    """
    return aug(clips_3d)[1]


def _lr(config, step):
    """Exponential decay from ``config.lr`` to ``config.lr_final`` over the run."""
    if config.steps <= 1:
        return config.lr
    return config.lr * (config.lr_final / config.lr) ** (step / (config.steps - 1))


class _Lifter:
    """One network with the input and output conventions of its paper.

    ``simple_baseline`` (Martinez et al.): one frame's 2D joints, standardised
    with the per-coordinate mean and standard deviation of the training
    inputs, to the standardised root-relative 3D joints (root excluded); L2
    loss on the standardised outputs. ``videopose3d`` (Pavllo et al.): a
    window of normalised screen coordinates as they are, to the root-relative
    3D joints of the centre frame in metres; MPJPE loss. ``semgcn`` (Zhao et
    al.): one frame's 2D joints in normalised screen coordinates, one node
    per joint, to the root-relative 3D joints; squared-error loss on the
    joints (the paper's joint term; its bone-vector term is left out).
    ``stgcn`` (Cai et al.): a clip of ``config.stgcn_frames`` frames, one
    node per joint and frame, to the centre frame's root-relative 3D joints;
    MPJPE loss.
    """

    def __init__(self, name, config, n_joints, root, device, dtype, parents=None):
        self.name = name
        self.root = root
        self.keep = [k for k in range(n_joints) if k != root]
        n_out = 3 * len(self.keep)
        if name == "simple_baseline":
            net = SimpleBaseline(
                2 * n_joints, n_out, width=config.width, blocks=config.blocks,
                dropout=config.dropout,
            )  # fmt: skip
        elif name == "videopose3d":
            net = TemporalLifter(
                2 * n_joints, n_out, channels=config.channels,
                filter_widths=config.filter_widths, dropout=config.temporal_dropout,
            )  # fmt: skip
        elif name == "semgcn":
            net = SemGCN(
                parents, channels=config.semgcn_channels, blocks=config.semgcn_blocks,
                non_local=config.semgcn_non_local, dropout=config.semgcn_dropout,
            )  # fmt: skip
        else:
            net = STGCN(
                parents, frames=config.stgcn_frames, channels=config.stgcn_channels,
                dropout=config.stgcn_dropout,
            )  # fmt: skip
        self.net = net.to(device=device, dtype=dtype)
        self.in_mean = self.in_std = self.out_mean = self.out_std = None

    def fit_statistics(self, inputs_2d, targets_3d):
        """Standardisation statistics from the training inputs and outputs."""
        if self.name in ("semgcn", "stgcn"):
            # per joint and coordinate, over poses (and frames): node features
            x = inputs_2d.reshape(-1, *inputs_2d.shape[-2:])
            self.in_mean, self.in_std = x.mean(0), x.std(0).clamp_min(1e-6)
        if self.name != "simple_baseline":
            return
        x = inputs_2d.reshape(len(inputs_2d), -1)
        y = self._relative(targets_3d).reshape(len(targets_3d), -1)
        self.in_mean, self.in_std = x.mean(0), x.std(0).clamp_min(1e-6)
        self.out_mean, self.out_std = y.mean(0), y.std(0).clamp_min(1e-6)

    def _relative(self, poses_3d):
        rel = poses_3d - poses_3d[..., self.root : self.root + 1, :]
        return rel[..., self.keep, :]

    def _forward(self, inputs_2d):
        """Flat root-relative outputs (B, 3 (J - 1)) of a batch of inputs."""
        b = inputs_2d.shape[0]
        if self.name == "simple_baseline":
            x = (inputs_2d.reshape(b, -1) - self.in_mean) / self.in_std
            return self.net(x)
        if self.name == "videopose3d":
            return self.net(inputs_2d.reshape(b, inputs_2d.shape[1], -1))
        # the graph lifters give every joint; the root's output is not trained
        x = (inputs_2d - self.in_mean) / self.in_std
        return self.net(x)[:, self.keep].reshape(b, -1)

    def loss(self, inputs_2d, targets_3d):
        """Training loss of a batch (targets: the 3D of the predicted frames)."""
        out = self._forward(inputs_2d)
        rel = self._relative(targets_3d).reshape(len(targets_3d), -1)
        if self.name == "simple_baseline":
            return ((out - (rel - self.out_mean) / self.out_std) ** 2).mean()
        if self.name == "semgcn":
            return ((out - rel) ** 2).mean()
        err = (out - rel).reshape(len(rel), -1, 3)
        return torch.linalg.vector_norm(err, dim=-1).mean()

    @torch.no_grad()
    def predict(self, inputs_2d, batch_size):
        """(B, J, 3) root-relative poses, metres, root at the origin."""
        self.net.eval()
        parts = []
        for start in range(0, len(inputs_2d), batch_size):
            out = self._forward(inputs_2d[start : start + batch_size])
            if self.name == "simple_baseline":
                out = out * self.out_std + self.out_mean
            parts.append(out)
        flat = torch.cat(parts).reshape(len(inputs_2d), len(self.keep), 3)
        poses = flat.new_zeros((len(inputs_2d), len(self.keep) + 1, 3))
        poses[:, self.keep] = flat
        self.net.train()
        return poses


def train_and_score(data, lifter, variant, seed, config, device, progress=None):
    """Train one lifter with one variant and seed; score it on the test set.

    Parameters
    ----------
    data : dict
        Prepared tensors and arrays (see ``_prepare`` in the package).
    lifter : {"simple_baseline", "videopose3d", "semgcn", "stgcn"}
    variant : {"none", "weak", "perspective"}
    seed : int
    config : ExperimentConfig
    device : torch.device
    progress : callable, optional
        Called with a one-line message now and then.

    Returns
    -------
    dict
        ``mpjpe``, ``p_mpjpe`` (mm), ``pck``, ``auc`` (%), ``seconds`` and
        ``final_loss``.
    """
    start = time.perf_counter()
    dtype = config.torch_dtype()
    torch.manual_seed(seed)
    # one batch stream per seed, the same for every variant and lifter
    rng = np.random.default_rng(seed)
    frames = window(lifter, config)
    temporal = frames is not None
    source_3d = data["windows_3d"][frames] if temporal else data["frames_3d"]
    source_2d = data["windows_2d"][frames] if temporal else data["frames_2d"]
    model = _Lifter(lifter, config, source_3d.shape[-2], data["root"], device, dtype,
                    data.get("parents"))  # fmt: skip

    aug = None
    if variant != "none":
        aug = GPA(
            data["target_2d"], data["target_camera"], seed=seed, root=data["root"],
            target_root=data["target_root"], depth=variant, return_2d=True,
        )  # fmt: skip
        # The statistics of the training inputs are those of the aligned
        # source (one pass with an independent stream), as Martinez et al.
        # compute them on the training data the network sees.
        stats_seed = int(
            np.random.SeedSequence([seed, 1]).generate_state(1, np.uint64)[0]
        )
        stats_aug = GPA(
            data["target_2d"], data["target_camera"], seed=stats_seed,
            root=data["root"], target_root=data["target_root"], depth=variant,
            return_2d=True,
        )  # fmt: skip
        stats_2d = (_align_clips if temporal else _align_frames)(stats_aug, source_3d)
    else:
        stats_2d = source_2d
    model.fit_statistics(stats_2d, source_3d)

    optimiser = torch.optim.Adam(model.net.parameters(), lr=config.lr)
    n = len(source_3d)
    centre = source_3d.shape[1] // 2 if temporal else None
    loss = torch.zeros(())
    for step in range(config.steps):
        for group in optimiser.param_groups:
            group["lr"] = _lr(config, step)
        index = torch.from_numpy(rng.integers(0, n, size=min(config.batch_size, n)))
        index = index.to(device)
        batch_3d = source_3d[index]
        if aug is None:
            batch_2d = source_2d[index]
        elif temporal:
            batch_2d = _align_clips(aug, batch_3d)
        else:
            batch_2d = _align_frames(aug, batch_3d)
        target = batch_3d[:, centre] if temporal else batch_3d
        optimiser.zero_grad(set_to_none=True)
        loss = model.loss(batch_2d, target)
        loss.backward()
        optimiser.step()
        if progress is not None and (step + 1) % max(1, config.steps // 4) == 0:
            progress(f"  {lifter} {variant} seed {seed}: step {step + 1}/"
                     f"{config.steps}, loss {loss.item():.4f}")  # fmt: skip

    test_2d = data["test_windows_2d"][frames] if temporal else data["test_frames_2d"]
    predicted = model.predict(test_2d, 4096).double().cpu().numpy()
    truth = data["test_truth"]
    joints = data["joints"]
    scores = {
        "mpjpe": metrics.mpjpe(predicted, truth, joints=joints, root=data["root"]),
        "p_mpjpe": metrics.p_mpjpe(predicted, truth, joints=joints),
        "pck": metrics.pck(predicted, truth, joints=joints, root=data["root"]),
        "auc": metrics.auc(predicted, truth, joints=joints, root=data["root"]),
    }
    final = float(loss.item())
    if not math.isfinite(final):
        raise FloatingPointError(
            f"{lifter} with variant {variant!r}, seed {seed}: the training loss "
            "diverged; lower the learning rate"
        )
    scores["final_loss"] = final
    scores["seconds"] = time.perf_counter() - start
    return scores
