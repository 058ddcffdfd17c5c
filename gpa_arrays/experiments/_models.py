"""The lifting networks, in PyTorch (imported only when an experiment runs)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._graphs import NEIGHBOUR_CLASSES, adjacency, body_parts, st_neighbour_classes

__all__ = [
    "STGCN",
    "STGraphConv",
    "SemGCN",
    "SemGraphConv",
    "SimpleBaseline",
    "TemporalLifter",
]


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


class SemGraphConv(nn.Module):
    """A semantic graph convolution (Zhao et al., CVPR 2019, section 3.1).

    For node features ``x`` of shape (B, J, C_in), the output at joint i is
    ``W0 x_i`` weighted by ``w_ii`` plus ``W1 x_j`` weighted by ``w_ij`` summed
    over its skeleton neighbours j, plus a bias: one transform for a joint
    itself and one for its neighbours, and a learnable weight per edge of
    the adjacency with self-loops, normalised over each joint's neighbours by
    a softmax (``w = softmax_j(M masked to the adjacency)``). The learnable
    matrix M starts at ones (equal weights).

    Parameters
    ----------
    c_in, c_out : int
        Feature channels in and out.
    adjacency : (J, J) array of 0 and 1
        The skeleton's adjacency with self-loops (:func:`._graphs.adjacency`).
    """

    def __init__(self, c_in, c_out, adjacency):
        super().__init__()
        mask = torch.as_tensor(np.asarray(adjacency) > 0)
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("eye", torch.eye(len(mask)), persistent=False)
        self.weight = nn.Parameter(torch.empty(2, c_in, c_out))
        with torch.no_grad():
            nn.init.xavier_uniform_(self.weight[0])
            nn.init.xavier_uniform_(self.weight[1])
        self.edge_logits = nn.Parameter(torch.ones(mask.shape))
        self.bias = nn.Parameter(torch.zeros(c_out))

    def edge_weights(self):
        """(J, J) neighbour weights; each row sums to one over its neighbours."""
        logits = self.edge_logits.masked_fill(~self.mask, float("-inf"))
        return torch.softmax(logits, dim=1)

    def forward(self, x):
        """(B, J, C_in) -> (B, J, C_out)."""
        w = self.edge_weights().to(x.dtype)
        eye = self.eye.to(x.dtype)
        c_out = self.weight.shape[2]
        # both transforms in one product, then the weighted sum over neighbours
        both = x @ torch.cat([self.weight[0], self.weight[1]], dim=1)
        own, others = both[..., :c_out], both[..., c_out:]
        mixed = torch.einsum("ij,bjc->bic", w * (1 - eye), others)
        return torch.diagonal(w)[:, None] * own + mixed + self.bias


class _GraphNonLocal(nn.Module):
    """A non-local layer over the joints (Wang et al., CVPR 2018), as SemGCN uses.

    ``x_i + BN(W_z sum_j f(x_i, x_j) g(x_j))`` with the embedded Gaussian
    affinity ``f = softmax_j(theta(x_i) . phi(x_j))`` on half the channels
    (bounded: the dot-product form grows with the square of the features and
    blew up on inputs from the other domain); ``W_z`` starts at zero so the
    layer starts as the identity.
    """

    def __init__(self, channels):
        super().__init__()
        half = max(1, channels // 2)
        self.theta = nn.Linear(channels, half)
        self.phi = nn.Linear(channels, half)
        self.g = nn.Linear(channels, half)
        self.z = nn.Linear(half, channels)
        nn.init.zeros_(self.z.weight)
        nn.init.zeros_(self.z.bias)
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x):
        affinity = torch.softmax(self.theta(x) @ self.phi(x).transpose(1, 2), dim=-1)
        y = self.z(affinity @ self.g(x))
        return x + self.bn(y.transpose(1, 2)).transpose(1, 2)


class _GraphLayer(nn.Module):
    """A graph convolution, batch norm over channels, ReLU and dropout."""

    def __init__(self, conv, channels, dropout):
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm1d(channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        """(B, ..., C) -> (B, ..., C'): nodes (and frames) on the middle axes."""
        y = self.conv(x)
        shape = y.shape
        # Batch norm of the (B * nodes, C) rows: the same statistics per channel
        # as over (B, C, nodes), without the two transposed copies, which took
        # about a third of a CPU training step.
        y = self.bn(y.reshape(-1, shape[-1])).reshape(shape)
        return self.drop(torch.relu(y))


class SemGCN(nn.Module):
    """The semantic graph convolutional lifter of Zhao et al. (CVPR 2019).

    Zhao, Peng, Tian, Kapadia and Metaxas, "Semantic graph convolutional
    networks for 3D human pose regression", CVPR 2019. One frame's 2D joints,
    two features per node of the skeleton graph, go through an input
    :class:`SemGraphConv` layer, `blocks` residual blocks of two semantic
    graph convolutions (each with batch norm and ReLU), each block followed
    by a non-local layer over the joints when `non_local`, and an output
    semantic graph convolution to three coordinates per joint. The
    authors' configuration (github.com/garyzhao/SemGCN, ``main_gcn.py`` and
    README): 128 channels, 4 residual blocks, no dropout, and non-local
    layers in their best model (there one also follows the input layer).

    Parameters
    ----------
    parents : sequence of int
        The skeleton's tree (``Skeleton.parents``): the graph.
    channels, blocks : int
    non_local : bool
    dropout : float
        After each ReLU (0 in the paper).
    """

    def __init__(self, parents, *, channels=128, blocks=4, non_local=True,
                 dropout=0.0):  # fmt: skip
        super().__init__()
        adj = adjacency(parents)

        def layer(c_in):
            return _GraphLayer(SemGraphConv(c_in, channels, adj), channels, dropout)

        self.inp = layer(2)
        self.blocks = nn.ModuleList(
            nn.Sequential(layer(channels), layer(channels)) for _ in range(blocks)
        )
        self.non_local = nn.ModuleList(
            _GraphNonLocal(channels) if non_local else nn.Identity()
            for _ in range(blocks)
        )
        self.out = SemGraphConv(channels, 3, adj)
        with torch.no_grad():  # start at the origin, not metres away from it
            self.out.weight.mul_(0.01)

    def forward(self, x):
        """(B, J, 2) -> (B, J, 3)."""
        h = self.inp(x)
        for block, non_local in zip(self.blocks, self.non_local, strict=True):
            h = non_local(h + block(h))
        return self.out(h)


class STGraphConv(nn.Module):
    """A spatial-temporal graph convolution with one kernel per neighbour class.

    Cai, Ge, Liu, Cai, Cham, Yuan and Thalmann, "Exploiting spatial-temporal
    relationships for 3D pose estimation via graph convolutional networks",
    ICCV 2019, section 3.2: ``y_a = sum_k sum_b A_k[a, b] x_b W_k / deg_k(a)``
    over the five neighbour classes k of :func:`._graphs.st_neighbour_classes`
    (self, centripetal, centrifugal, past, future) of the ``T * J`` nodes,
    each class normalised by the node's number of neighbours in it (a class
    without neighbours adds nothing: the past of the first frame).

    The classes are Kronecker products (a spatial class within each frame,
    the same joint in the neighbouring frames), so each class's aggregation
    is a (J, J) product per frame or a shift by one frame, and the five
    kernels are one matrix product over the concatenated aggregates: the
    same function as the dense (T J, T J) form, at a fraction of its cost.

    Parameters
    ----------
    c_in, c_out : int
    parents : sequence of int, length J
        The graph's tree (joints, or :func:`._graphs.body_parts` parts).
    """

    def __init__(self, c_in, c_out, parents):
        super().__init__()
        a = st_neighbour_classes(parents, 1)[1:3]  # centripetal, centrifugal
        degree = a.sum(axis=2, keepdims=True)
        norm = np.divide(a, degree, out=np.zeros_like(a), where=degree > 0)
        self.register_buffer("spatial", torch.from_numpy(norm), persistent=False)
        self.linear = nn.Linear(len(NEIGHBOUR_CLASSES) * c_in, c_out)

    @property
    def weight(self):
        """(5, C_in, C_out) kernels, one per neighbour class, in class order."""
        k = len(NEIGHBOUR_CLASSES)
        return self.linear.weight.T.reshape(k, -1, self.linear.out_features)

    def forward(self, x):
        """(B, T, J, C_in) -> (B, T, J, C_out)."""
        near = torch.einsum("kij,btjc->kbtic", self.spatial.to(x.dtype), x)
        past = torch.nn.functional.pad(x[:, :-1], (0, 0, 0, 0, 1, 0))
        future = torch.nn.functional.pad(x[:, 1:], (0, 0, 0, 0, 0, 1))
        return self.linear(torch.cat([x, near[0], near[1], past, future], dim=-1))


class STGCN(nn.Module):
    """The spatial-temporal graph lifter of Cai et al. (ICCV 2019), local to global.

    Cai, Ge, Liu, Cai, Cham, Yuan and Thalmann, "Exploiting spatial-temporal
    relationships for 3D pose estimation via graph convolutional networks",
    ICCV 2019. A clip of `frames` 2D poses is a graph of ``frames * J``
    nodes; :class:`STGraphConv` layers (batch norm, ReLU, dropout) run on it
    in the paper's local-to-global structure: two layers at the joint level,
    pooling (the mean) into body parts (:func:`._graphs.body_parts`), a layer
    on the parts' own spatial-temporal graph, pooling into one body node per
    frame and a temporal layer there; then back up, the coarser features
    broadcast to the finer nodes and added to their features before a layer
    at each level (part, then joint), and a linear map to the centre frame's
    3D joints. Left out: the paper's pose-refinement stage and its extra loss
    terms.

    Parameters
    ----------
    parents : sequence of int
    frames : int
        Frames per input clip (odd; the centre frame's pose comes out). The
        authors' code (github.com/vanoracai/Exploiting-Spatial-temporal-
        Relationships-for-3D-Pose-Estimation-via-Graph-Convolutional-Networks,
        ``opt1.py``) defaults to 5 and publishes results for 1, 3 and 5.
    channels : int
        One width at every level (the authors' code: 128, 128 and 256 on the
        joints, 512 on the parts and the body).
    dropout : float
    """

    def __init__(self, parents, *, frames=5, channels=128, dropout=0.1):
        super().__init__()
        part, part_parents = body_parts(parents)
        self.frames = frames
        self.n_joints = len(part)
        pool = np.zeros((len(part_parents), len(part)))
        pool[part, np.arange(len(part))] = 1.0
        self.register_buffer("unpool", torch.from_numpy(pool.T.copy()),
                             persistent=False)  # fmt: skip
        pool /= pool.sum(axis=1, keepdims=True)
        self.register_buffer("pool", torch.from_numpy(pool), persistent=False)
        joints, parts, body = parents, part_parents, [-1]

        def layer(c_in, tree):
            conv = STGraphConv(c_in, channels, tree)
            return _GraphLayer(conv, channels, dropout)

        self.joint_in = layer(2, joints)
        self.joint_mid = layer(channels, joints)
        self.part_down = layer(channels, parts)
        self.body = layer(channels, body)
        self.part_up = layer(channels, parts)
        self.joint_up = layer(channels, joints)
        self.out = nn.Linear(channels, 3)
        with torch.no_grad():  # start at the origin, not metres away from it
            self.out.weight.mul_(0.01)

    def _nodes(self, x, op):
        """Apply ``op`` ((P, Q) map) to the node axis of (B, T, Q, C) features."""
        return torch.einsum("pq,btqc->btpc", op.to(x.dtype), x)

    def forward(self, x):
        """(B, T, J, 2) clips -> (B, J, 3), the centre frame."""
        joint = self.joint_in(x)
        joint = joint + self.joint_mid(joint)
        part = self.part_down(self._nodes(joint, self.pool))
        body = self.body(part.mean(dim=2, keepdim=True))
        part = part + self.part_up(part + body)
        joint = joint + self.joint_up(joint + self._nodes(part, self.unpool))
        return self.out(joint[:, x.shape[1] // 2])


def count_parameters(model):
    """Number of trainable parameters of `model`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def manual_seed(seed):
    """Seed torch's generators (all devices) for model initialisation and dropout."""
    torch.manual_seed(seed)
