"""The paper's 3x3 distribution figure."""

import re

import numpy as np
import pytest

from gpa_arrays import stats

pytest.importorskip("matplotlib")

from gpa_arrays import plot


@pytest.fixture(scope="module")
def poses():
    rng = np.random.default_rng(3)
    source = rng.normal(scale=0.1, size=(4000, 17, 2))
    aligned = rng.normal(0.1, 0.15, size=(4000, 17, 2))
    target = rng.normal(-0.1, 0.12, size=(3000, 17, 2))
    return source, aligned, target


def legend_numbers(ax):
    (text,) = ax.get_legend().get_texts()
    match = re.fullmatch(
        r"\$\\mu\$=(-?\d+\.\d\d), \$\\sigma\$=(\d+\.\d\d)", text.get_text()
    )
    assert match, text.get_text()
    return float(match[1]), float(match[2])


def test_layout_and_legends_match_the_statistics(poses):
    fig = plot.distribution_figure(*poses)
    axes = fig.axes
    assert len(axes) == 9
    columns = [stats.pose_statistics(p) for p in poses]
    for row, name in enumerate(("scale", "root_x", "root_y")):
        for col in range(3):
            ax = axes[3 * row + col]
            values = getattr(columns[col], name)
            mean, std = legend_numbers(ax)
            assert mean == pytest.approx(values.mean(), abs=0.005 + 1e-9)
            assert std == pytest.approx(values.std(), abs=0.005 + 1e-9)
            # a density histogram (bars) and one density line per panel
            assert len(ax.patches) >= 10
            (line,) = ax.get_lines()
            x, y = line.get_data()
            area = np.sum(y[:-1] * np.diff(x))
            inside = np.mean((values >= x[0]) & (values <= x[-1]))
            assert area == pytest.approx(inside, abs=0.03)
            assert ax.get_yticks().size == 0
    # the paper's axis ranges
    assert axes[0].get_xlim() == (0.0, 1.0)
    assert axes[3].get_xlim() == (-1.0, 1.0)
    assert axes[8].get_xlim() == (-1.0, 1.0)
    assert [axes[i].get_title() for i in range(3)] == [
        "source",
        "source after GPA",
        "target",
    ]
    assert [axes[i].get_ylabel() for i in (0, 3, 6)] == ["2D scale", "root x", "root y"]


def test_png_written_with_the_requested_size(poses, tmp_path):
    import matplotlib.image

    path = tmp_path / "figure.png"
    plot.distribution_figure(*poses, path=path, figsize=(6, 5), dpi=50)
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (250, 300)
    # not blank: the histograms colour a good share of the pixels
    assert (image[..., :3].std(axis=-1) > 0.05).mean() > 0.05


def test_pdf_and_svg(poses, tmp_path):
    plot.distribution_figure(*poses, path=tmp_path / "f.pdf")
    assert (tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-"
    plot.distribution_figure(*poses, path=str(tmp_path / "f.svg"))
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()[:500]


def test_accepts_precomputed_statistics_and_roots(poses):
    source, aligned, target = poses
    fig_a = plot.distribution_figure(
        stats.pose_statistics(source), aligned, target, root=3, target_root=5
    )
    # root 3 for the aligned column, 5 for the target column
    assert legend_numbers(fig_a.axes[4])[0] == pytest.approx(
        aligned[:, 3, 0].mean(), abs=0.005
    )
    assert legend_numbers(fig_a.axes[5])[0] == pytest.approx(
        target[:, 5, 0].mean(), abs=0.005
    )


def test_limits_widen_for_data_outside_the_paper_ranges(poses):
    source, aligned, target = poses
    far = target + np.array([1.5, 0.0])
    fig = plot.distribution_figure(source, aligned, far)
    lo, hi = fig.axes[3].get_xlim()
    everything = np.concatenate([source[:, 0, 0], aligned[:, 0, 0], far[:, 0, 0]])
    assert lo <= np.quantile(everything, 0.005) and hi >= np.quantile(
        far[:, 0, 0], 0.995
    )
    assert hi - lo < 2.5
    assert fig.axes[6].get_xlim() == (-1.0, 1.0)
    fig = plot.distribution_figure(
        source, aligned, target, limits=[(0, 2), (-2, 2), (-3, 3)], titles=None
    )
    assert fig.axes[0].get_xlim() == (0.0, 2.0)
    assert fig.axes[8].get_xlim() == (-3.0, 3.0)
    assert fig.axes[0].get_title() == ""


def test_errors_name_the_argument(poses):
    source, aligned, target = poses
    bad = target.copy()
    bad[4, 2, 0] = np.nan
    with pytest.raises(ValueError, match="target_2d: poses: 1 of 3000 pose has"):
        plot.distribution_figure(source, aligned, bad)
    with pytest.raises(ValueError, match=r"aligned_2d: poses: expected shape"):
        plot.distribution_figure(source, aligned[..., 0], target)
    with pytest.raises(ValueError, match="limits: expected three"):
        plot.distribution_figure(source, aligned, target, limits=[(0, 1)])


def test_negative_zero_is_written_as_zero():
    values = np.array([-0.001, 0.0005, -0.0004])
    assert plot._fixed(values.mean()) == "0.00"
    assert plot._fixed(-0.126) == "-0.13"
