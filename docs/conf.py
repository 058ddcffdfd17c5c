"""Sphinx configuration for the gpa_arrays documentation.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
The build needs no network: intersphinx reads the small inventories in
``docs/_inventories`` (see the script there).
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import gpa_arrays

project = "gpa_arrays"
author = "gpa_arrays developers"
copyright = "2026, gpa_arrays developers"
release = gpa_arrays.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_inventories", "**/.ipynb_checkpoints"]
templates_path = ["_templates"]

nitpicky = True
# Shape and unit descriptions in numpydoc "type" fields are prose, not references.
numpydoc_xref_param_type = False
numpydoc_show_class_members = False
autosummary_generate = True
autodoc_typehints = "none"

_inv = os.path.join(os.path.dirname(__file__), "_inventories")
intersphinx_mapping = {
    name: (url, os.path.join(_inv, f"{name}.inv"))
    for name, url in {
        "numpy": "https://numpy.org/doc/stable/",
        "cupy": "https://docs.cupy.dev/en/stable/",
        "torch": "https://docs.pytorch.org/docs/stable/",
        "numba": "https://numba.readthedocs.io/en/stable/",
        "dask": "https://docs.dask.org/en/stable/",
        "python": "https://docs.python.org/3/",
    }.items()
}

html_theme = "pydata_sphinx_theme"
html_title = "gpa_arrays"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}

# `torch` is None where torch is not installed: pages with torch examples skip
# them with ``:skipif: torch is None``.
doctest_global_setup = """
import numpy as np
import gpa_arrays
try:
    import torch
except ImportError:
    torch = None
"""
