"""Sphinx configuration of the bayesmix documentation.

The notebooks live in ``../notebooks`` (stored without outputs, run by ``make test``).
At build start they are copied into ``docs/notebooks/`` (git-ignored) so that
myst-nb can render them; myst-nb executes them during the build.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx

import bayesmix

DOCS = Path(__file__).resolve().parent
NOTEBOOKS_SRC = DOCS.parent / "notebooks"
NOTEBOOKS_DST = DOCS / "notebooks"

project = "bayesmix"
author = "the bayesmix developers"
copyright = "the bayesmix developers"
release = bayesmix.__version__
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]

# MyST: $...$ and $$...$$ maths, amsmath environments, ::: fences.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# myst-nb: run every notebook at build time ("force": the rendered outputs always come
# from the current code); a failing cell fails the build.
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# autodoc / napoleon: numpydoc docstrings; class docstrings list the attributes.
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "description"
autosummary_generate = False
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = True

html_theme = "pydata_sphinx_theme"
html_title = f"bayesmix {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []


def copy_notebooks(app: Sphinx) -> None:
    """Mirror ``../notebooks/*.ipynb`` into ``docs/notebooks/``, touching only changed files."""
    NOTEBOOKS_DST.mkdir(exist_ok=True)
    wanted = {p.name: p for p in NOTEBOOKS_SRC.glob("*.ipynb")}
    for stale in NOTEBOOKS_DST.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, src in wanted.items():
        dst = NOTEBOOKS_DST / name
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)


def setup(app: Sphinx) -> dict[str, bool]:
    """Copy the notebooks before Sphinx looks for source files."""
    app.connect("builder-inited", copy_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
