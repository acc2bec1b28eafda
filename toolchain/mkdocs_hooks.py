"""mkdocs hook of the documentation site (mkdocs.yml): the site serves mermaid's browser bundle
itself (fetched by ``make setup`` into node_modules/.mermaid), so that Material for MkDocs finds
``mermaid`` already defined and never loads it from a CDN when a page with a diagram is viewed."""

from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

MERMAID_BUNDLE = "assets/javascripts/mermaid.min.js"  # as mkdocs.yml's extra_javascript names it


def on_files(files, config):
    bundle_dir = Path(config.config_file_path).parent / "node_modules" / ".mermaid"
    if not (bundle_dir / "mermaid.min.js").is_file():
        raise PluginError(f"mermaid's bundle is not in {bundle_dir}: run `make setup`")
    files.append(File("mermaid.min.js", str(bundle_dir), config.site_dir, config.use_directory_urls,
                      dest_uri=MERMAID_BUNDLE))
    return files
