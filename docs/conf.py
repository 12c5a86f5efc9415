"""Sphinx configuration of flatnn's documentation (MyST markdown pages, numpydoc docstrings)."""

from __future__ import annotations

import os
import sys
from importlib import metadata

# The checkout's flatnn, installed or not (``sphinx-build docs ...`` from the repository root).
sys.path.insert(0, os.path.abspath(".."))

project = "flatnn"
author = "The flatnn authors"
copyright = "2026, The flatnn authors"
try:
    release = metadata.version("flatnn")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    release = "0+unknown"
version = release

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# MyST: $...$ maths, ::: fences and heading anchors for links such as page.md#section.
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# autosummary writes one page per public module from its __all__ (never a private name).
autosummary_generate = True
autosummary_ignore_module_all = False
autosummary_imported_members = False
autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    # scikit-learn's metadata-routing setters, added to every estimator class by scikit-learn.
    "exclude-members": "set_fit_request,set_partial_fit_request,set_score_request,"
    "set_predict_request,set_predict_proba_request",
}
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
add_module_names = False

# numpydoc: the class pages list their methods through autodoc, not a second table.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# A face (flatnn.optimizers) and its layer module (flatnn.training.rules) document the same
# objects under two names, so a short cross-reference can find two targets; either is right.
suppress_warnings = ["ref.python"]

# No intersphinx: the build machines have no internet, and -W turns a failed fetch into an error.

html_theme = "pydata_sphinx_theme"
html_title = f"flatnn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
