"""The study's static site (issue 38, item 4), built from the committed reports by the code
`make site` runs and opened in Chromium as a reader would: starting at its index, every page
reachable by links opens, every figure on it decodes, every local link resolves to a file of
the site. Requests leaving the machine are refused, so the site is checked as it works offline.
Skipped, with the reason, where no Chromium is installed (.ci/run installs Debian's)."""
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from dfl_lib.errors import UsageError
from dfl_lib.study.site import build_site, page_name

pytestmark = pytest.mark.study  # the inner loop leaves it out: pytest -m "not study"

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("DFL_CHROMIUM") or shutil.which("chromium") or \
    shutil.which("chromium-browser")


def test_page_names_follow_the_repository_files():
    assert page_name("quick/README.md") == "quick/index.html"
    assert page_name("README.md") == "index.html"
    assert page_name("quick/03-robustness-tables.ipynb") == "quick/03-robustness-tables.html"
    assert page_name("fidelity-pcl-depth/table.md") == "fidelity-pcl-depth/table.html"
    assert page_name("quick/03-robustness-tables/tables.png") == "quick/03-robustness-tables/tables.png"


def test_a_reports_folder_without_its_study_report_is_refused(tmp_path):
    with pytest.raises(UsageError, match="no README.md"):
        build_site(tmp_path, tmp_path / "site")


@pytest.mark.browser
def test_every_page_opens_every_figure_loads_every_link_resolves(tmp_path):
    if not CHROMIUM:
        pytest.skip("no Chromium found (chromium on PATH or $DFL_CHROMIUM); on Debian: "
                    "apt-get install chromium, as .ci/run does")
    from playwright.sync_api import sync_playwright

    index = build_site(ROOT / "reports", tmp_path / "site")
    site = index.parent
    notebooks = {page_name(str(p.relative_to(ROOT / "reports")))
                 for p in (ROOT / "reports").rglob("*.ipynb")}
    seen, queue, broken, blank = set(), ["index.html"], [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.route("http*://**", lambda route: route.abort())  # offline, as a reader may be
        while queue:
            rel = queue.pop()
            if rel in seen:
                continue
            seen.add(rel)
            page.goto((site / rel).as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.getAttribute('src') || '', e.naturalWidth])")
            blank += [f"{rel}: {src[:60]}" for src, width in images if width == 0]
            links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            for href in links:
                url = urlparse(href)
                if url.scheme != "file":
                    continue  # a URL outside the site (the paper, a package's page)
                path = Path(unquote(url.path))
                if not path.exists():
                    broken.append(f"{rel} -> {path.relative_to(site) if site in path.parents else path}")
                elif path.suffix == ".html" and site in path.parents:
                    queue.append(str(path.relative_to(site)))
        browser.close()
    assert not broken, f"links that resolve to nothing: {broken[:20]}"
    assert not blank, f"figures that did not load: {blank[:20]}"
    assert notebooks <= seen, f"notebooks no link reaches: {sorted(notebooks - seen)}"
    parts = {f"{p.parent.name}/index.html" for p in (ROOT / "reports").glob("*/README.md")}
    assert parts <= seen, f"report pages no link reaches: {sorted(parts - seen)}"
