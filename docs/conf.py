"""Sphinx configuration for the oms docs (built with warnings as errors in CI)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from oms._version import __version__

project = "oms"
author = "the oms developers"
copyright = "2026, the oms developers"
release = __version__
version = __version__

extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
exclude_patterns = ["_build"]
# furo: maintained, responsive, and code blocks scroll instead of being clipped at 1,280 px.
html_theme = "furo"
html_title = f"oms {__version__}"
nitpicky = False
