"""`make docs`: the documentation site builds with `mkdocs build --strict` (no warning, no broken
link or anchor, every docstring of the API reference rendered), has every page of its nav, and
no page links or loads anything outside the site (mermaid's bundle included)."""

import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import PROJECT_ROOT

ROOT = PROJECT_ROOT
PAGES = [
    "index.html",
    "guides/model-owner.html",
    "guides/requester.html",
    "guides/node-operator.html",
    "guides/bridger.html",
    "guides/voter.html",
    "architecture.html",
    "contributing.html",
    "benchmark-results.html",
    "reference/python-api.html",
]


def test_docs_site__strict_build__every_page_built(tmp_path):
    mkdocs = Path(sys.executable).parent / "mkdocs"
    assert mkdocs.exists(), f"{mkdocs} is missing: `make setup` installs requirements-docs.txt"
    site = tmp_path / "site"
    process = subprocess.run(
        [str(mkdocs), "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    missing = [page for page in PAGES if not (site / page).is_file()]
    assert not missing, missing
    api = (site / "reference" / "python-api.html").read_text()
    # The reference is generated from the source: the clients' methods are there, not just headings.
    for name in ("ModelMarketplace", "request_inference", "EdgeNode", "IOTAInferenceHandler", "ZKProver"):
        assert name in api, name
    architecture = (site / "architecture.html").read_text()
    assert 'class="mermaid"' in architecture
    # The diagrams' renderer is the site's own copy (so the theme never loads it from a CDN).
    assert '<script src="assets/javascripts/mermaid.min.js"' in architecture
    assert (site / "assets" / "javascripts" / "mermaid.min.js").stat().st_size > 1_000_000
    outside = {
        f"{page.relative_to(site)}: {url}"
        for page in site.rglob("*.html")
        for url in re.findall(r'(?:href|src)="((?:https?:)?//[^"]*)"', page.read_text())
    }
    assert not outside, sorted(outside)
