"""Drive the explore notebook in JupyterLab with a real Chromium (Playwright, the system browser):
run all cells from the Run menu, move each epsilon slider to two values by typing into its
readout as a user would, record what the widgets show, take screenshots, save the notebook.

    with sync_playwright() as p:
        page = open_lab_page(p, url=lab.url("lab/tree/06-explore.ipynb"), chromium=path)
        run_all_cells(page)
        seen = move_slider(page, widget=0, values=(0.0, 0.3), shots=tmp, stem="examples")
"""
from __future__ import annotations

import base64
import hashlib
import re
import time
from pathlib import Path

# flags of Debian's Chromium in a container with no network: no sandbox (root), no GPU, and no
# background connections (each refused one slows start-up)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}
SLIDERS = ".jp-CodeCell:has(.widget-hslider)"  # code cells whose output holds an epsilon slider


def open_lab_page(playwright, *, url: str, chromium: str, timeout_s: float = 90.0):
    """A new page of a headless Chromium at `url`, once the notebook panel and its kernel are up."""
    browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(timeout_s * 1000)
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-CodeCell")
    wait_kernel_idle(page, timeout_s=timeout_s)
    return page


def kernel_status(page) -> str:
    """The status bar's kernel text, e.g. 'Python 3 (ipykernel) | Idle'."""
    return " ".join(page.locator(".jp-StatusBar-TextItem").all_inner_texts())


def wait_kernel_idle(page, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while "Idle" not in kernel_status(page):
        if time.monotonic() > deadline:
            raise TimeoutError(f"kernel not idle after {timeout_s:.0f} s: {kernel_status(page)!r}")
        time.sleep(0.5)


def run_all_cells(page, *, timeout_s: float = 600.0) -> list[str]:
    """Run > Run All Cells from the menu bar; wait until every code cell has an execution count
    or one cell raised (the run stops there). Returns the cells' prompts, e.g. ['[1]:', ...]."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    deadline = time.monotonic() + timeout_s
    time.sleep(1.0)
    while True:
        # text contents, not inner texts: JupyterLab 4 skips rendering cells scrolled out of
        # view (content-visibility), and a skipped cell's inner text reads '' though it ran
        prompts = [p.strip() for p in
                   page.locator(".jp-CodeCell .jp-InputArea-prompt").all_text_contents()]
        running = any(p == "[*]:" for p in prompts)
        if not running and "Idle" in kernel_status(page):
            return prompts
        if time.monotonic() > deadline:
            raise TimeoutError(f"cells still running after {timeout_s:.0f} s: {prompts}")
        time.sleep(1.0)


def widget_state(cell) -> dict:
    """What one explorer shows: slider readout, the text line of predictions, and a digest of
    the figure the Output widget displays (its PNG bytes)."""
    images = cell.locator(".widget-output img")  # the Output widget's figure
    src = images.first.get_attribute("src") if images.count() else ""
    png = base64.b64decode(src.split(",", 1)[1]) if src.startswith("data:image/png") else b""
    return {"readout": cell.locator(".widget-readout").first.inner_text().strip(),
            "text": cell.locator(".widget-label", has_text=re.compile(r"^eps ")).first
            .inner_text().strip(),
            "figure_sha": hashlib.sha256(png).hexdigest()[:16] if png else "",
            "figure_bytes": len(png)}


def set_slider(page, cell, value: float, *, timeout_s: float = 60.0,
               settle_s: float = 15.0) -> dict:
    """Type `value` into the slider's readout and press Enter, as a user would; wait until the
    kernel has redrawn (the text line names the new epsilon) and is idle again, and until the
    browser shows a figure other than the one before, or `settle_s` more seconds have passed
    (the text label can reach the page before the Output widget's new image does, on a busy
    machine: the caller's assertions then judge what the page finally shows)."""
    before = widget_state(cell)["figure_sha"]
    readout = cell.locator(".widget-readout").first
    readout.scroll_into_view_if_needed()
    readout.click()
    readout.fill(f"{value:.2f}")
    readout.press("Enter")
    want = f"eps {value:.3f}"
    deadline = time.monotonic() + timeout_s
    settled = None  # when the text and the kernel first said the redraw was done
    while True:
        state = widget_state(cell)
        if state["text"].startswith(want) and state["figure_bytes"] and \
                "Idle" in kernel_status(page):
            settled = settled or time.monotonic()
            if state["figure_sha"] != before or time.monotonic() - settled > settle_s:
                return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"the widget did not redraw for eps {value}: it shows {state}")
        time.sleep(0.5)


def move_slider(page, *, widget: int, values: tuple[float, float], shots: Path,
                stem: str) -> list[dict]:
    """The `widget`-th explorer moved to each of `values`; a screenshot of its output
    (slider, text, figure) at each, as <shots>/<stem>-eps<value>.png. One state per value."""
    cell = page.locator(SLIDERS).nth(widget)
    states = []
    for value in values:
        state = set_slider(page, cell, value)
        out = cell.locator(".jp-Cell-outputWrapper")
        out.scroll_into_view_if_needed()
        path = Path(shots) / f"{stem}-eps{value:.2f}.png"
        out.screenshot(path=str(path))
        states.append({**state, "value": value, "screenshot": path.name})
    return states


def save_notebook(page) -> None:
    """File > Save Notebook; waits for the dirty marker on the tab to clear."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^File$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Save Notebook$")).click()
    page.wait_for_selector(".lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)")
