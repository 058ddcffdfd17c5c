"""The paper's claim in miniature: cross-domain 2D-to-3D lifting with and without GPA.

PoseDA (Chai et al., ICCV 2023, table 6) reports that GPA alone cuts the MPJPE
of lifting networks trained on Human3.6M and tested on MPI-INF-3DHP by 6.8 to
16.5 mm. This package reruns that experiment on arrays: it trains a lifter on
a labelled source domain three ways, all else equal and seeded,

* ``"none"``: on the source 2D as they are (no augmentation),
* ``"weak"``: on GPA-aligned source poses (:class:`gpa_arrays.GPA`, the
  published weak-perspective depth), aligned afresh on every training batch,
* ``"perspective"``: the same with ``depth="perspective"``,

and scores each on a labelled target test set (MPJPE, P-MPJPE, PCK@150 mm,
AUC). GPA sees only unlabelled target 2D poses and their cameras.

Lifters, written from their papers (:mod:`torch` needed):

``simple_baseline``
    Martinez et al., "A simple yet effective baseline for 3d human pose
    estimation", ICCV 2017: residual blocks of linear-BN-ReLU-dropout layers.
``videopose3d``
    Pavllo et al., "3D human pose estimation in video with temporal
    convolutions and semi-supervised training", CVPR 2019: dilated temporal
    convolutions over a window of frames, the centre frame's pose out.
``semgcn``
    Zhao et al., "Semantic graph convolutional networks for 3D human pose
    regression", CVPR 2019: semantic graph convolutions (a learnable,
    normalised weight per skeleton edge) in residual blocks with non-local
    layers, one frame in.
``stgcn``
    Cai et al., "Exploiting spatial-temporal relationships for 3D pose
    estimation via graph convolutional networks", ICCV 2019: graph
    convolutions over joints across neighbouring frames, one kernel per
    neighbour class, from joints to body parts to the body and back; a short
    clip in, the centre frame's pose out.

The graph lifters take their graph from the parents of a
:mod:`gpa_arrays.skeletons` layout (``skeleton=``, H36M-17 by default).

Functions
---------
run_experiment      the experiment on your arrays; returns an ExperimentResult
synthetic_inputs    the built-in synthetic studio -> wild inputs of it
make_clip_domains   synthetic clips (no torch needed)
load_h36m_npz       VideoPose3D's ``data_3d_h36m.npz`` -> camera-space clips
load_3dhp_test_npz  an MPI-INF-3DHP test ``.npz`` -> test clips
format_table        the result in the layout of the paper's table

``import gpa_arrays.experiments`` does not import torch; running an experiment
does (``pip install torch``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace

import numpy as np

from .._validate import camera_rows
from ._clips import ClipDomains, make_clip_domains
from ._loaders import clips_from_sequences, load_3dhp_test_npz, load_h36m_npz

__all__ = [
    "CPU",
    "GPU",
    "LIFTERS",
    "VARIANTS",
    "ClipDomains",
    "ExperimentConfig",
    "ExperimentResult",
    "clips_from_sequences",
    "format_table",
    "load_3dhp_test_npz",
    "load_h36m_npz",
    "make_clip_domains",
    "run_experiment",
    "synthetic_inputs",
]

#: Lifters and their display names, in the order of PoseDA's table.
LIFTERS = {
    "semgcn": "SemGCN",
    "simple_baseline": "SimpleBaseline",
    "stgcn": "ST-GCN",
    "videopose3d": "VideoPose3D",
}

#: The lifters that convolve over the skeleton graph.
GRAPH_LIFTERS = ("semgcn", "stgcn")

#: Training variants and their display names.
VARIANTS = {
    "none": "baseline",
    "weak": "+ GPA (weak)",
    "perspective": "+ GPA (perspective)",
}

_METRICS = ("mpjpe", "p_mpjpe", "pck", "auc")


@dataclass(frozen=True)
class ExperimentConfig:
    """Sizes and training settings of an experiment.

    Attributes
    ----------
    steps : int
        Training steps (batches) per run.
    batch_size : int
        Poses (SimpleBaseline) or windows (VideoPose3D) per batch.
    lr, lr_final : float
        Adam learning rate, decayed exponentially from `lr` to `lr_final`.
    width, blocks, dropout : int, int, float
        SimpleBaseline's units per layer, residual blocks and dropout (the
        paper: 1024, 2, 0.5).
    channels, filter_widths, temporal_dropout : int, tuple of int, float
        VideoPose3D's channels, convolution widths (their product is the
        receptive field in frames) and dropout (the paper: 1024, up to
        (3, 3, 3, 3, 3), 0.25).
    semgcn_channels, semgcn_blocks : int
        SemGCN's channels and residual blocks (the authors' code: 128, 4).
    semgcn_non_local : bool
        A non-local layer after each SemGCN block (the authors' best model:
        yes).
    semgcn_dropout : float
        SemGCN's dropout (the authors' code: none).
    stgcn_channels, stgcn_frames, stgcn_dropout : int, int, float
        ST-GCN's channels (one width at every level here; the authors' code
        has 128, 128 and 256 on the joints and 512 on the parts and the body),
        frames per input clip (odd; the authors' code defaults to 5) and
        dropout.
    dtype : {"float32", "float64"}
        Training dtype (also the dtype GPA runs in).
    n_source, n_target, n_test, frames : int
        Sizes of the built-in synthetic data (:func:`synthetic_inputs`): clips
        per set and frames per clip.
    """

    steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    lr_final: float = 1e-4
    width: int = 256
    blocks: int = 2
    dropout: float = 0.25
    channels: int = 256
    filter_widths: tuple = (3, 3)
    temporal_dropout: float = 0.25
    semgcn_channels: int = 64
    semgcn_blocks: int = 2
    semgcn_non_local: bool = False
    semgcn_dropout: float = 0.0
    stgcn_channels: int = 24
    stgcn_frames: int = 3
    stgcn_dropout: float = 0.1
    dtype: str = "float32"
    n_source: int = 2000
    n_target: int = 2000
    n_test: int = 1000
    frames: int = 9

    def torch_dtype(self):
        """The training dtype as a torch dtype."""
        import torch

        return {"float32": torch.float32, "float64": torch.float64}[self.dtype]

    @property
    def receptive_field(self):
        """Frames VideoPose3D sees: the product of the filter widths."""
        return int(np.prod(self.filter_widths))


#: Defaults for a CPU: scaled down from the papers (SimpleBaseline and
#: VideoPose3D 256 units and channels instead of 1024; SemGCN 64 channels, 2
#: residual blocks and no non-local layers instead of 128, 4 and non-local
#: layers; ST-GCN 24 channels at every level on 3-frame clips instead of 128
#: to 512 on 5), every lifter 1,000 steps of 256 on 2,000 clips per domain,
#: sized so that the two graph lifters take about 10 minutes together for 3
#: seeds on 2 idle cores (docs/howto/experiment.rst has the measurement).
CPU = ExperimentConfig()

#: A GPU-size run: the papers' sizes (1024 units and channels; SemGCN 128
#: channels, 4 blocks, non-local layers, as in the authors' code; ST-GCN 128
#: channels, the width of the first layers of the authors' code, on its
#: default 5-frame clips), more data and steps.
GPU = ExperimentConfig(
    steps=20_000,
    batch_size=1024,
    width=1024,
    channels=1024,
    dropout=0.5,
    semgcn_channels=128,
    semgcn_blocks=4,
    semgcn_non_local=True,
    stgcn_channels=128,
    stgcn_frames=5,
    n_source=50_000,
    n_target=50_000,
    n_test=10_000,
)


@dataclass
class ExperimentResult:
    """Scores of every (lifter, variant, seed) run.

    Attributes
    ----------
    runs : list of dict
        One per run: ``lifter``, ``variant``, ``seed``, ``mpjpe``, ``p_mpjpe``
        (mm), ``pck``, ``auc`` (%), ``final_loss``, ``seconds``.
    config : ExperimentConfig
    description : str
        What the data were (printed above the table).
    """

    runs: list = field(default_factory=list)
    config: ExperimentConfig = CPU
    description: str = ""

    def summary(self):
        """Mean and spread over the seeds of each (lifter, variant).

        Returns
        -------
        dict
            ``{(lifter, variant): {metric: (mean, std, n)}}``; std is the
            sample standard deviation (0 for one seed).
        """
        out = {}
        for run in self.runs:
            out.setdefault((run["lifter"], run["variant"]), []).append(run)
        table = {}
        for key, runs in out.items():
            table[key] = {}
            for m in _METRICS:
                values = np.array([r[m] for r in runs], dtype=float)
                std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
                table[key][m] = (float(values.mean()), std, len(values))
        return table

    def improvement(self, lifter, variant, metric="mpjpe"):
        """Per-seed baseline-minus-variant differences of `metric` (array)."""
        base = {r["seed"]: r[metric] for r in self.runs
                if r["lifter"] == lifter and r["variant"] == "none"}  # fmt: skip
        return np.array([base[r["seed"]] - r[metric] for r in self.runs
                         if r["lifter"] == lifter and r["variant"] == variant
                         and r["seed"] in base])  # fmt: skip


def format_table(result):
    """The result in the layout of PoseDA's table.

    Per lifter a baseline row and one row per GPA variant with its difference
    to the baseline.

    Parameters
    ----------
    result : ExperimentResult

    Returns
    -------
    str
        With several seeds each cell is ``mean ± std``; differences are of the
        means (negative MPJPE and P-MPJPE, positive PCK and AUC are better),
        and a last line gives the MPJPE change of each GPA variant seed by
        seed (same weights and batches), mean ± std.
    """
    summary = result.summary()
    seeds = max((v["mpjpe"][2] for v in summary.values()), default=0)
    heads = ("MPJPE (mm)", "P-MPJPE (mm)", "PCK@150 (%)", "AUC (%)")
    lines = []
    if result.description:
        lines.append(result.description)
    if seeds > 1:
        lines.append(f"mean ± std over {seeds} seeds; (difference to the baseline)")
    name_width = 28
    cell = 22 if seeds > 1 else 14
    lines.append(f"{'Method':<{name_width}}" + "".join(f"{h:>{cell}}" for h in heads))
    for lifter in LIFTERS:
        if not any(k[0] == lifter for k in summary):
            continue
        base = summary.get((lifter, "none"))
        for variant, label in VARIANTS.items():
            row = summary.get((lifter, variant))
            if row is None:
                continue
            name = LIFTERS[lifter] if variant == "none" else f"  {label}"
            if variant == "none" and lifter == "videopose3d":
                name += f" ({result.config.receptive_field} fr.)"
            if variant == "none" and lifter == "stgcn":
                name += f" ({result.config.stgcn_frames} fr.)"
            cells = []
            for m in _METRICS:
                mean, std, n = row[m]
                text = f"{mean:.1f}" + (f" ± {std:.1f}" if n > 1 else "")
                if variant != "none" and base is not None:
                    text += f" ({mean - base[m][0]:+.1f})"
                cells.append(f"{text:>{cell}}")
            lines.append(f"{name:<{name_width}}" + "".join(cells))
    if seeds > 1:
        # paired by seed (same weights and batches): the spread of the gain itself
        gains = []
        for lifter in LIFTERS:
            for variant in list(VARIANTS)[1:]:
                gain = result.improvement(lifter, variant)
                if len(gain) > 1:
                    label = f"{LIFTERS[lifter]} {VARIANTS[variant]}"
                    gains.append(
                        f"  {label:<38}{-gain.mean():+.1f} ± {gain.std(ddof=1):.1f}"
                    )
        if gains:
            lines.append("MPJPE change, seed by seed (same weights and batches), mm:")
            lines.extend(gains)
    return "\n".join(lines)


def _torch():
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise ImportError(
            "gpa_arrays.experiments trains PyTorch models: pip install torch "
            "(or pip install 'gpa-arrays[torch]')"
        ) from exc


def synthetic_inputs(config=CPU, *, seed=0):
    """The built-in synthetic inputs of :func:`run_experiment`.

    Studio source clips (Human3.6M-like) and in-the-wild target and test clips
    (MPI-INF-3DHP-like) from :func:`make_clip_domains`, sized by `config`.

    Parameters
    ----------
    config : ExperimentConfig
    seed : int
        Data seed (independent of the training seeds).

    Returns
    -------
    dict
        Keyword arguments of :func:`run_experiment`: ``source_3d``,
        ``source_camera``, ``target_2d``, ``target_camera``, ``test_2d``,
        ``test_3d``.
    """
    d = make_clip_domains(
        config.n_source, config.n_target, config.n_test, frames=config.frames,
        seed=seed,
    )  # fmt: skip
    return {
        "source_3d": d.source_3d,
        "source_camera": d.source_camera,
        "target_2d": d.target_2d,
        "target_camera": d.target_camera,
        "test_2d": d.test_2d,
        "test_3d": d.test_3d,
    }


def _host(x, name, ndims, last):
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a real array, got dtype {a.dtype}")
    if a.ndim not in ndims or a.shape[-1] != last:
        dims = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name}: expected a {dims} array with last axis {last}, "
                         f"got shape {a.shape}")  # fmt: skip
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: expected finite values")
    return a.astype(np.float64)


def _cameras(camera, n, name):
    """(n, C) float64 camera rows from one row or n rows."""
    rows = camera_rows(camera, n, "clip", name=name)
    return rows.astype(np.float64, copy=False)


def _as_clips(a):
    """(N, T, ...) clips from clips or single frames (T = 1)."""
    return a if a.ndim == 4 else a[:, None]


def _centre(a, size):
    """The centre `size` frames of (N, T, ...) clips."""
    start = (a.shape[1] - size) // 2
    return a[:, start : start + size]


def _prepare(source_3d, source_camera, target_2d, target_camera, test_2d, test_3d,
             lifters, config, root, target_root, joints, device,
             skeleton="h36m_17"):  # fmt: skip
    """Validate the arrays and move what training needs to the device."""
    from .. import camera as _camera

    torch = _torch()
    source = _as_clips(_host(source_3d, "source_3d", (3, 4), 3))
    target = _as_clips(_host(target_2d, "target_2d", (3, 4), 2))
    test_in = _as_clips(_host(test_2d, "test_2d", (3, 4), 2))
    test_gt = _as_clips(_host(test_3d, "test_3d", (3, 4), 3))
    if test_in.shape[:3] != test_gt.shape[:3]:
        raise ValueError(
            f"test_3d: expected the clips and joints of test_2d {test_in.shape[:3]}, "
            f"got shape {test_gt.shape}"
        )
    if source.shape[2] != test_in.shape[2]:
        raise ValueError(
            f"test_2d: expected the {source.shape[2]} joints of source_3d, got "
            f"{test_in.shape[2]}"
        )
    n, t, j = source.shape[:3]
    parents = _graph(skeleton, lifters, j)
    s_cam = _cameras(source_camera, n, "source_camera")
    t_cam = _cameras(target_camera, len(target), "target_camera")
    from ._train import window

    windows = {}
    for lifter in lifters:
        size = window(lifter, config)
        if size is None:
            continue
        windows.setdefault(size, []).append(lifter)
        for name, a in (("source_3d", source), ("test_2d", test_in)):
            if a.shape[1] < size:
                raise ValueError(
                    f"{name}: {lifter} needs clips of at least {size} frames "
                    f"({_window_text(lifter, config)}), got {a.shape[1]} frames"
                )
    source_2d = _camera.project(source, s_cam[:, None, :])
    dtype = config.torch_dtype()

    def put(a):
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dtype)

    test_centre = test_in.shape[1] // 2
    data = {
        "root": root,
        "target_root": target_root,
        "joints": joints,
        # SimpleBaseline trains on every frame of the source clips
        "frames_3d": put(source.reshape(n * t, j, 3)),
        "frames_2d": put(source_2d.reshape(n * t, j, 2)),
        # GPA's targets: every frame of the target clips, with its clip's camera
        "target_2d": put(target.reshape(-1, target.shape[2], 2)),
        "target_camera": put(np.repeat(t_cam, target.shape[1], axis=0)),
        # every lifter is scored on the centre frame of each test clip
        "test_frames_2d": put(test_in[:, test_centre]),
        "test_truth": test_gt[:, test_centre],
        "parents": parents,
        # the temporal lifters' windows, by length: centred on the clips' centres
        "windows_3d": {f: put(_centre(source, f)) for f in windows},
        "windows_2d": {f: put(_centre(source_2d, f)) for f in windows},
        "test_windows_2d": {f: put(_centre(test_in, f)) for f in windows},
    }
    return data


def _window_text(lifter, config):
    if lifter == "videopose3d":
        return (f"its receptive field, filter widths "
                f"{tuple(config.filter_widths)}")  # fmt: skip
    return "config.stgcn_frames"


def _graph(skeleton, lifters, n_joints):
    """The parents of `skeleton` for the graph lifters (None without them)."""
    from .. import skeletons

    if not any(lifter in GRAPH_LIFTERS for lifter in lifters):
        return None
    try:
        layout = skeletons.get(skeleton)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    if len(layout) != n_joints:
        raise ValueError(
            f"skeleton: the graph lifters need a layout of the data's {n_joints} "
            f"joints, got {layout.name!r} with {len(layout)}"
        )
    return tuple(layout.parents)


def run_experiment(
    source_3d,
    source_camera,
    target_2d,
    target_camera,
    test_2d,
    test_3d,
    *,
    lifters=tuple(LIFTERS),
    variants=tuple(VARIANTS),
    seeds=(0, 1, 2),
    config=CPU,
    root=0,
    target_root=None,
    joints=None,
    skeleton="h36m_17",
    device="cpu",
    description="",
    progress=None,
):
    """Train each lifter on the source with and without GPA; score on the target.

    Every (lifter, variant, seed) run starts from the same initial weights
    and draws the same batches for a given seed; only the 2D inputs of the
    batches differ: the source 2D (``"none"``) or the 2D of the source poses
    moved by a :class:`gpa_arrays.GPA` object holding the target set, called
    once per training batch on the training device (``"weak"``,
    ``"perspective"``). GPA translates a pose, so the root-relative 3D labels
    are the source's in every variant.

    Parameters
    ----------
    source_3d : (N, J, 3) or (N, T, J, 3) array, metres, camera space
        Labelled source poses, single frames or clips of ``T`` frames (for
        VideoPose3D and ST-GCN, ``T`` at least their window: the receptive
        field, ``config.stgcn_frames``; the centre window is used).
        SimpleBaseline and SemGCN train on every frame.
    source_camera : (4,), (9,), (N, 4) or (N, 9) array, normalised units
        Camera of each source pose or clip; the source 2D inputs are the
        projections through it (:func:`gpa_arrays.camera.project`).
    target_2d : (M, Jt, 2) or (M, T', Jt, 2) array, normalised screen coordinates
        Unlabelled target-domain 2D poses: GPA's targets (every frame).
    target_camera : (4,), (9,), (M, 4) or (M, 9) array
        Camera of each target pose or clip.
    test_2d : (K, J, 2) or (K, T'', J, 2) array, normalised screen coordinates
        Labelled target test inputs in the source's joint layout.
    test_3d : (K, J, 3) or (K, T'', J, 3) array, metres, camera space
        Their ground truth. Every lifter is scored on the centre frame of
        each test clip.
    lifters : sequence of {"semgcn", "simple_baseline", "stgcn", "videopose3d"}
    variants : sequence of {"none", "weak", "perspective"}
    seeds : sequence of int
        Training seeds (weights, batches, dropout and GPA pairing).
    config : ExperimentConfig
        ``CPU`` (default) or ``GPU`` (module constants), or your own.
    root, target_root : int
        Root joint of the source (and test) poses and of the target poses
        (default `root`).
    joints : None or sequence of int
        Joints scored (default all), as in :mod:`gpa_arrays.metrics`.
    skeleton : str or gpa_arrays.skeletons.Skeleton
        The joint layout of the source and test poses, whose parents are the
        graph of SemGCN and ST-GCN (default ``"h36m_17"``; checked only when
        one of them runs).
    device : str or torch.device
        Where training and GPA run (``"cpu"``, ``"cuda"``; GPA on CUDA tensors
        needs the ``cuda`` extra, CuPy).
    description : str
        A line printed above the table.
    progress : callable, optional
        Called with one-line progress messages.

    Returns
    -------
    ExperimentResult

    Raises
    ------
    ValueError
        Bad shapes or values, unknown lifters or variants, clips shorter than
        a temporal lifter's window, a skeleton of another number of joints.
    ImportError
        Without torch.
    """
    torch = _torch()
    lifters = tuple(lifters)
    variants = tuple(variants)
    for name, chosen, known in (("lifters", lifters, LIFTERS),
                                ("variants", variants, VARIANTS)):  # fmt: skip
        bad = [c for c in chosen if c not in known]
        if bad or not chosen:
            raise ValueError(f"{name}: expected a non-empty selection of "
                             f"{sorted(known)}, got {list(chosen)}")  # fmt: skip
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: expected at least one seed")
    if not isinstance(config, ExperimentConfig):
        raise TypeError(
            f"config: expected an ExperimentConfig, got {type(config).__name__}"
        )
    if config.dtype not in ("float32", "float64"):
        raise ValueError(f"config.dtype: expected 'float32' or 'float64', got "
                         f"{config.dtype!r}")  # fmt: skip
    frames = config.stgcn_frames
    if "stgcn" in lifters and (not isinstance(frames, int) or frames < 1
                               or frames % 2 == 0):  # fmt: skip
        raise ValueError(f"config.stgcn_frames: expected an odd positive int (a "
                         f"centre frame), got {frames!r}")  # fmt: skip
    device = torch.device(device)
    target_root = root if target_root is None else target_root
    data = _prepare(
        source_3d, source_camera, target_2d, target_camera, test_2d, test_3d,
        lifters, config, root, target_root, joints, device, skeleton,
    )  # fmt: skip
    from ._train import train_and_score

    result = ExperimentResult(config=config, description=description)
    for seed in seeds:
        for lifter in lifters:
            for variant in variants:
                scores = train_and_score(
                    data, lifter, variant, seed, config, device, progress
                )
                result.runs.append(
                    {"lifter": lifter, "variant": variant, "seed": seed, **scores}
                )
                if progress is not None:
                    progress(
                        f"{LIFTERS[lifter]} {VARIANTS[variant]} seed {seed}: MPJPE "
                        f"{scores['mpjpe']:.1f} mm ({scores['seconds']:.0f} s)"
                    )
    return result


def _with(config, **changes):
    """`config` with some fields changed (None values are ignored)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
