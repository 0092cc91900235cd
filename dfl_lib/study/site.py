"""The study as a static site: the study report and every part's page as HTML, every executed
notebook rendered by nbconvert (its figures inline), the other files copied beside them. Open
index.html in the output folder in a browser; no server or network is needed.

    python -m dfl_lib site --out site     # (make site) from the project's reports/

Markdown is rendered with nbconvert's own markdown filter (mistune, tables included); a link to
X.md becomes X.html (a README.md becomes its folder's index.html), a link to N.ipynb becomes
N.html, a link to a folder its index.html. tests/test_site.py opens the built site
in Chromium: every page loads, every figure decodes, every link resolves.
"""
from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from ..errors import UsageError

__all__ = ["build_site", "page_name"]

_LINK = re.compile(r'(href|src)="([^"#?]+)([#?][^"]*)?"')
_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1b1b1b; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; vertical-align: top; }
img { max-width: 100%; }
code { background: #f3f3f3; padding: 0 0.2rem; }
nav { font-size: 0.9rem; margin-bottom: 1rem; }
"""


def page_name(path: str) -> str:
    """The site's name for a repository file name: README.md -> index.html, X.md -> X.html,
    N.ipynb -> N.html; anything else unchanged."""
    if path.endswith("README.md"):
        return path[: -len("README.md")] + "index.html"
    if path.endswith(".md"):
        return path[:-3] + ".html"
    if path.endswith(".ipynb"):
        return path[:-6] + ".html"
    return path


def _relink(text: str, *, source_dir: Path) -> str:
    """Rewrite the local links of one rendered page (see `page_name`); a folder link goes to
    the folder's index.html where the folder has a README.md."""

    def swap(match: re.Match) -> str:
        attr, target, tail = match.group(1), match.group(2), match.group(3) or ""
        if re.match(r"^[a-z]+:", target) or target.startswith("/"):
            return match.group(0)  # a URL, data: URI or absolute path: left as it is
        if target.endswith("/") and (source_dir / target / "README.md").exists():
            target += "index.html"
        return f'{attr}="{page_name(target)}{tail}"'

    return _LINK.sub(swap, text)


def _page(title: str, body: str, *, home: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{_STYLE}</style></head><body><nav><a href='{home}'>the study "
            f"report</a></nav>{body}</body></html>")


def build_site(reports_root, out) -> Path:
    """Build the site of `reports_root` (the study report at its top) into `out` (replaced);
    returns `out/index.html`. Raises UsageError when `reports_root` has no README.md."""
    root, out = Path(reports_root), Path(out)
    if not (root / "README.md").exists():
        raise UsageError(f"{root} has no README.md (the study report): write it with "
                         "`python -m dfl_lib report`")
    if out.exists():
        shutil.rmtree(out)
    exporter = HTMLExporter(template_name="lab")
    for source in sorted(root.rglob("*")):
        if not source.is_file():
            continue
        rel = source.relative_to(root)
        target = out / page_name(str(rel))
        target.parent.mkdir(parents=True, exist_ok=True)
        home = "../" * (len(rel.parts) - 1) + "index.html"
        if source.suffix == ".md":
            body = markdown2html_mistune(source.read_text())
            body = _relink(body, source_dir=source.parent)
            title = source.read_text().split("\n", 1)[0].lstrip("# ") or str(rel)
            target.write_text(_page(title, body, home=home))
        elif source.suffix == ".ipynb":
            notebook = nbformat.read(source, as_version=4)
            body, _ = exporter.from_notebook_node(notebook)
            target.write_text(_relink(body, source_dir=source.parent))
        else:
            shutil.copy2(source, target)
    return out / "index.html"
