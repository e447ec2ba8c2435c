"""Sphinx configuration: notebooks/ is the site's source (`make docs`, `make run`).

The site renders the notebooks as they were executed and committed (or as `make run`
just executed them): nothing is executed here, so a page shows exactly what was validated.
Nothing is loaded from the internet: no CDN scripts, fonts or MathJax.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "FastAPI × OpenAI: the async runbook"

extensions = ["myst_nb", "runbook_site"]
root_doc = "index"
exclude_patterns = ["_build", "_ext", "ci_parameters.yml", "**.ipynb_checkpoints", ".DS_Store"]

# Render the stored outputs; never execute at build time.
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # no require.js / widget scripts from a CDN
nb_merge_streams = True  # one block per cell for consecutive prints

# No remote MathJax: the notebooks have no math. A page that gains some would reference this
# non-local script, which support.devtools.sitecheck reports, instead of loading MathJax from a CDN.
mathjax_path = "about:blank"
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
# Whole code lines in a 1280-pixel window (_ext/static/runbook.css): the page's table of
# contents goes under the site navigation on the left, and the right column is left out.
html_static_path = ["_ext/static"]
html_css_files = ["runbook.css"]
html_sidebars = {"**": ["navbar-logo.html", "search-button-field.html", "sbt-sidebar-nav.html", "page-toc.html"]}
html_title = "FastAPI × OpenAI: the async runbook"
html_theme_options = {
    "use_download_button": True,  # the .ipynb, from this site
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_content_items": [],
    "secondary_sidebar_items": [],
}
html_context = {"default_mode": "auto"}  # unset, the theme logs a console error on first visit
html_favicon = "_ext/favicon.svg"  # copied into _static; without one, browsers log a 404 for /favicon.ico
html_copy_source = True
html_show_sourcelink = False
html_last_updated_fmt = None
html_show_copyright = False
