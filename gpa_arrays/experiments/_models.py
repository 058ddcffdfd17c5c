"""The two lifting networks, in PyTorch (imported only when an experiment runs)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SimpleBaseline", "TemporalLifter"]


class _Residual(nn.Module):
    """Two linear-BN-ReLU-dropout layers with an identity skip (Martinez et al.)."""

    def __init__(self, width, dropout):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(width, width),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(width, width),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Dropout(dropout),
        )

    def forward(self, x):
        return x + self.body(x)


class SimpleBaseline(nn.Module):
    """The fully connected lifter of Martinez et al. (ICCV 2017).

    A linear layer to `width` units, `blocks` residual blocks of two
    linear-batch-norm-ReLU-dropout layers each, and a linear output layer
    (the paper: width 1024, two blocks, dropout 0.5). Maps the J 2D joints of
    one frame, flattened, to the 3D joints of that frame, flattened.
    """

    def __init__(self, n_in, n_out, *, width=1024, blocks=2, dropout=0.5):
        super().__init__()
        self.inp = nn.Sequential(
            nn.Linear(n_in, width),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.blocks = nn.Sequential(*[_Residual(width, dropout) for _ in range(blocks)])
        self.out = nn.Linear(width, n_out)

    def forward(self, x):
        return self.out(self.blocks(self.inp(x)))


class TemporalLifter(nn.Module):
    """The temporal convolutional lifter of Pavllo et al. (VideoPose3D, CVPR 2019).

    A 1D convolution of width ``filter_widths[0]`` over the frames, then one
    residual block per further width: a temporal convolution and a 1x1
    convolution, each followed by batch norm, ReLU and dropout, with a skip
    connection; a 1x1 output convolution. With widths (3, 3) the receptive
    field is 9 frames, and a window of 9 frames gives the 3D pose of its
    centre frame (the paper: 1024 channels, widths up to (3, 3, 3, 3, 3) for
    243 frames, dropout 0.25).

    This is the paper's single-frame training form: since each window yields
    one output frame, the dilated convolutions become strided ones (stride =
    filter width), which computes the same function for that frame without
    the intermediate frames no output needs, and each skip connection takes
    the centre frame of every group the next convolution merges.
    """

    def __init__(self, n_in, n_out, *, channels=1024, filter_widths=(3, 3),
                 dropout=0.25):  # fmt: skip
        super().__init__()
        self.receptive_field = 1
        for w in filter_widths:
            self.receptive_field *= w
        self.expand = nn.Sequential(
            nn.Conv1d(n_in, channels, filter_widths[0], stride=filter_widths[0],
                      bias=False),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
            nn.Dropout(dropout),
        )  # fmt: skip
        self.widths = tuple(filter_widths[1:])
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(channels, channels, w, stride=w, bias=False),
                nn.BatchNorm1d(channels),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Conv1d(channels, channels, 1, bias=False),
                nn.BatchNorm1d(channels),
                nn.ReLU(),
                nn.Dropout(dropout),
            )
            for w in self.widths
        )
        self.out = nn.Conv1d(channels, n_out, 1)

    def forward(self, x):
        """(B, F, C_in) windows of F = receptive field frames -> (B, C_out)."""
        x = self.expand(x.transpose(1, 2))
        for w, layer in zip(self.widths, self.layers, strict=True):
            x = x[:, :, w // 2 :: w] + layer(x)
        return self.out(x)[:, :, 0]


def count_parameters(model):
    """Number of trainable parameters of `model`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def manual_seed(seed):
    """Seed torch's generators (all devices) for model initialisation and dropout."""
    torch.manual_seed(seed)
