"""The paper's distribution figure: 2D scale and root position before and after GPA.

:func:`distribution_figure` draws the 3x3 grid of figure S1 of PoseDA (Chai et
al., ICCV 2023): rows 2D box scale, root x, root y; columns source domain,
source after GPA, target domain; each panel a density histogram with a kernel
density line and a legend giving the mean and standard deviation.

matplotlib is an optional dependency (``pip install "gpa-arrays[plot]"``),
imported only when a function of this module runs. The figure is built on
matplotlib's object interface (no pyplot, no global state, no display needed),
so it works the same in scripts, servers and notebooks.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .stats import STATISTICS, PoseStatistics, pose_statistics

__all__ = ["distribution_figure"]

#: Row labels, in the order of :data:`gpa_arrays.stats.STATISTICS`.
ROW_LABELS = ("2D scale", "root x", "root y")
#: Column titles: source, source after GPA, target.
COLUMN_TITLES = ("source", "source after GPA", "target")
#: The paper's axis ranges: scale in [0, 1], root coordinates in [-1, 1].
PAPER_LIMITS = ((0.0, 1.0), (-1.0, 1.0), (-1.0, 1.0))

_COLOR = "#3a9ad9"
_MAX_BINS = 50
_GRID = 512


def _import_matplotlib():
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "gpa_arrays.plot needs matplotlib: pip install 'gpa-arrays[plot]'"
        ) from exc
    return Figure


def _statistics(poses, root, name):
    if isinstance(poses, PoseStatistics):
        return poses
    try:
        return pose_statistics(poses, root=root)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{name}: {exc}") from None


def _limits(samples, default):
    """`default` unless more than 1 % of some sample falls outside it.

    Otherwise the union of the samples' 0.5-99.5 % quantile ranges, padded by
    5 % and rounded outwards to tenths.
    """
    lo, hi = default
    if all(np.mean((s < lo) | (s > hi)) <= 0.01 for s in samples):
        return default
    lo = min(float(np.quantile(s, 0.005)) for s in samples)
    hi = max(float(np.quantile(s, 0.995)) for s in samples)
    pad = 0.05 * max(hi - lo, 1e-12)
    return math.floor((lo - pad) * 10) / 10, math.ceil((hi + pad) * 10) / 10


def _bins(values, limits):
    """Histogram edges over `limits`: Freedman-Diaconis width, at most 50 bins.

    The width is that rule's for the whole sample; the bin count is the number
    of such widths that fit in the panel's range, between 10 and 50.
    """
    q25, q75 = np.quantile(values, [0.25, 0.75])
    width = 2 * (q75 - q25) / len(values) ** (1 / 3)
    span = limits[1] - limits[0]
    count = _MAX_BINS if width <= 0 else int(np.clip(span / width, 10, _MAX_BINS))
    return np.linspace(limits[0], limits[1], count + 1)


def _density(values, limits):
    """Gaussian kernel density of `values` on a grid over `limits`.

    Bandwidth: Silverman's rule of thumb, ``0.9 min(sd, IQR / 1.34) n^(-1/5)``,
    which (unlike Scott's) does not over-smooth multimodal samples. The density
    is binned onto a 512-point grid and convolved with the kernel, an O(n)
    approximation that is exact to the grid's resolution.
    """
    n = len(values)
    q25, q75 = np.quantile(values, [0.25, 0.75])
    spread = min(float(np.std(values)), float(q75 - q25) / 1.34)
    if spread <= 0:
        spread = float(np.std(values)) or 1e-3
    bandwidth = 0.9 * spread * n ** (-1 / 5)
    grid = np.linspace(limits[0], limits[1], _GRID)
    step = grid[1] - grid[0]
    # values outside the panel still contribute their kernel tails inside it
    reach = math.ceil(4 * bandwidth / step)
    edges = np.linspace(
        limits[0] - (reach + 0.5) * step,
        limits[1] + (reach + 0.5) * step,
        _GRID + 2 * reach + 1,
    )
    counts, _ = np.histogram(values, bins=edges)
    offsets = np.arange(-reach, reach + 1) * step
    kernel = np.exp(-0.5 * (offsets / bandwidth) ** 2)
    kernel /= kernel.sum() * step
    smoothed = np.convolve(counts, kernel, mode="valid") / n
    return grid, smoothed


def _fixed(value):
    """Two decimals, with -0.00 written 0.00."""
    return f"{round(value, 2) + 0.0:.2f}"


def _panel(ax, values, limits, color):
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    mean = float(np.mean(values))
    std = float(np.std(values))
    ax.hist(
        values,
        bins=_bins(values, limits),
        density=True,
        color=color,
        alpha=0.45,
        edgecolor="white",
        linewidth=0.4,
    )
    grid, density = _density(values, limits)
    ax.plot(grid, density, color=color, linewidth=1.3)
    ax.set_xlim(*limits)
    ax.set_ylim(0, None)
    ax.set_yticks([])
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    ax.tick_params(axis="x", labelsize=9)
    label = rf"$\mu$={_fixed(mean)}, $\sigma$={_fixed(std)}"
    handle = Patch(facecolor=color, alpha=0.45, edgecolor="none")
    ax.legend([handle], [label], loc="upper right", fontsize=9, framealpha=0.8)


def distribution_figure(
    source_2d,
    aligned_2d,
    target_2d,
    *,
    root=0,
    target_root=None,
    path=None,
    limits=None,
    titles=COLUMN_TITLES,
    row_labels=ROW_LABELS,
    color=_COLOR,
    figsize=(12.0, 10.0),
    dpi=150,
):
    """The 3x3 distribution figure of PoseDA (figure S1).

    Rows: 2D box scale, root x, root y. Columns: source 2D poses, source poses
    after GPA (projected through their paired target cameras), target 2D
    poses. Each panel: a density histogram, a Gaussian kernel density line,
    and a legend with the mean and the (population) standard deviation.

    Parameters
    ----------
    source_2d, aligned_2d : (N, J, 2) float arrays or PoseStatistics
        Source 2D poses before and after GPA, normalised screen coordinates,
        or their :func:`gpa_arrays.stats.pose_statistics`.
    target_2d : (M, Jt, 2) float array or PoseStatistics
        Target-domain 2D poses.
    root : int
        Root joint of the source poses.
    target_root : int, optional
        Root joint of the target poses; default `root`.
    path : str or os.PathLike, optional
        Where to save the figure; the format follows the suffix (``.png``,
        ``.pdf``, ``.svg``, anything matplotlib writes).
    limits : sequence of three (lo, hi) pairs, optional
        x range of each row. Default: the paper's ([0, 1] for the scale,
        [-1, 1] for the roots), widened to the data when more than 1 % of a
        sample falls outside.
    titles : sequence of three str
        Column titles (``None`` for none).
    row_labels : sequence of three str
        Row labels (``None`` for none).
    color : matplotlib colour
        Colour of the histograms and density lines.
    figsize : (float, float)
        Figure size in inches.
    dpi : float
        Resolution of the saved raster image.

    Returns
    -------
    matplotlib.figure.Figure
        Nine axes, row-major.

    Raises
    ------
    ImportError
        Without matplotlib.
    ValueError, TypeError
        For inputs :func:`gpa_arrays.stats.pose_statistics` refuses (the
        message names the argument).

    Examples
    --------
    >>> import numpy as np
    >>> from gpa_arrays import plot
    >>> rng = np.random.default_rng(0)
    >>> poses = [rng.normal(scale=0.2, size=(500, 17, 2)) for _ in range(3)]
    >>> fig = plot.distribution_figure(*poses)
    >>> len(fig.axes)
    9
    """
    figure_class = _import_matplotlib()
    target_root = root if target_root is None else target_root
    columns = (
        _statistics(source_2d, root, "source_2d"),
        _statistics(aligned_2d, root, "aligned_2d"),
        _statistics(target_2d, target_root, "target_2d"),
    )
    if limits is None:
        limits = [
            _limits([getattr(c, name) for c in columns], default)
            for name, default in zip(STATISTICS, PAPER_LIMITS, strict=True)
        ]
    elif len(limits) != 3:
        raise ValueError(f"limits: expected three (lo, hi) pairs, got {limits!r}")

    fig = figure_class(figsize=figsize, dpi=dpi, layout="constrained")
    axes = fig.subplots(3, 3)
    for row, name in enumerate(STATISTICS):
        for col, stats_ in enumerate(columns):
            ax = axes[row, col]
            _panel(ax, np.asarray(getattr(stats_, name)), tuple(limits[row]), color)
            if row == 0 and titles is not None:
                ax.set_title(titles[col], fontsize=11)
            if col == 0 and row_labels is not None:
                ax.set_ylabel(row_labels[row], fontsize=11)
    if path is not None:
        fig.savefig(os.fspath(path), dpi=dpi)
    return fig
