"""Packaging: the version is written once, and everything that shows it agrees.

The wheel itself (contents, metadata, a clean install) is checked by
``.ci/check_dist.sh``, which builds it; these tests need no build.
"""

import ast
import json
import re
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

import gpa_arrays
from gpa_arrays import cli

ROOT = Path(__file__).resolve().parents[1]

# A PEP 440 public version in canonical form: N(.N)*[{a|b|rc}N][.postN][.devN]
PEP440 = re.compile(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?")

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as the tomli package (mypy and build need it)
    tomllib = pytest.importorskip("tomli")


def test_version_is_a_pep440_version():
    assert PEP440.fullmatch(gpa_arrays.__version__), gpa_arrays.__version__


def test_version_is_a_literal_in_the_package():
    # setuptools reads `attr:` versions statically when the assignment is a
    # literal; anything else makes it import the package at build time, where
    # numpy and numba are not installed.
    tree = ast.parse((ROOT / "gpa_arrays" / "__init__.py").read_text())
    literals = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["__version__"]
        and isinstance(node.value, ast.Constant)
    ]
    assert literals == [gpa_arrays.__version__]


def test_pyproject_takes_the_version_from_the_package():
    with open(ROOT / "pyproject.toml", "rb") as f:
        config = tomllib.load(f)
    assert "version" not in config["project"], "a second copy of the version"
    assert "version" in config["project"]["dynamic"]
    dynamic = config["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "gpa_arrays.__version__"}


def test_cli_version_and_info_show_the_package_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"gpa-arrays {gpa_arrays.__version__}\n"
    assert cli.main(["info"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"gpa-arrays {gpa_arrays.__version__}"


def test_installed_metadata_matches_when_installed_from_this_tree():
    # An editable install of this checkout (CI's) must carry this version; a
    # stale one (the version changed since `pip install -e .`) fails here.
    try:
        dist = metadata.distribution("gpa-arrays")
    except metadata.PackageNotFoundError:
        pytest.skip("gpa-arrays is not installed (source tree on the path)")
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    url = urlparse(direct.get("url", ""))
    if url.scheme != "file" or Path(unquote(url.path)).resolve() != ROOT:
        pytest.skip("the installed gpa-arrays is not this checkout")
    assert dist.version == gpa_arrays.__version__
