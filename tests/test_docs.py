"""The examples in the README and in the docstrings of the public modules run."""

import doctest
import pathlib
import re

import numpy as np
import pytest

from gpa_arrays import camera, metrics, skeletons

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def readme_block(heading):
    text = README.read_text()
    section = text.split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_pixels_to_metrics():
    namespace = {}
    exec(
        compile(readme_block("## From pixels to metrics"), "README.md", "exec"),
        namespace,
    )
    scores = namespace["scores"]
    # noise of 30 mm per coordinate on both the joint and the root: the mean
    # distance is 30 * sqrt(2) * sqrt(8 / pi) = 68 mm on 16 of 17 joints
    assert 58 < scores["MPJPE"] < 69
    assert scores["P-MPJPE"] < scores["MPJPE"]
    assert 95 < scores["PCK"] <= 100
    assert 50 < scores["AUC"] < 80
    assert namespace["inputs_px"].shape == (512, 17, 2)
    np.testing.assert_allclose(
        camera.normalize_screen(namespace["inputs_px"], 2048, 2048),
        namespace["inputs_2d"],
        atol=1e-12,
    )


@pytest.mark.parametrize("module", [camera, metrics, skeletons])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_submodules_are_lazy_and_light():
    import subprocess
    import sys

    code = (
        "import sys, gpa_arrays\n"
        "assert 'gpa_arrays.metrics' not in sys.modules\n"
        "from gpa_arrays import camera, metrics, skeletons\n"
        "gpa_arrays.project\n"
        "heavy = [m for m in ('numba', 'torch', 'cupy', 'scipy', 'matplotlib')"
        " if m in sys.modules]\n"
        "print(heavy, sorted(set(dir(gpa_arrays)) & {'camera', 'metrics', 'project'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] ['camera', 'metrics', 'project']"
    import gpa_arrays

    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        gpa_arrays.nope  # noqa: B018


def test_readme_quickstart_and_clips():
    import gpa_arrays

    namespace = {}
    for heading in ("## Quickstart", "## Clips for temporal models"):
        exec(compile(readme_block(heading), "README.md", "exec"), namespace)
    clips, moved = namespace["clips"], namespace["moved"]
    assert moved.shape == clips.shape == (1000, 27, 17, 3)
    assert namespace["moved_2d"].shape == (1000, 27, 17, 2)
    per_pose = gpa_arrays.gpa(
        clips[:, 13], namespace["target"], namespace["camera"], seed=0,
        depth="perspective",
    )  # fmt: skip
    np.testing.assert_array_equal(moved[:, 13], per_pose)
