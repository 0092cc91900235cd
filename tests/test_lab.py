"""JupyterLab as the user opens it (`make lab`): the widgets extension is enabled with no set-up
step, a kernel started the way JupyterLab starts one imports dfl_lib, and, end to end in the
system's Chromium, the explore notebook runs at the smoke profile and both epsilon sliders
redraw their output. Skipped, with the reason, where no Chromium is installed (.ci/run installs
Debian's). `make lab-screenshots` runs the browser test with DFL_LAB_SCREENSHOTS=reports/lab."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from lab_server import JUPYTER, LabServer

pytestmark = pytest.mark.study  # the inner loop leaves it out: pytest -m "not study"

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "06-explore.ipynb"
CHROMIUM = os.environ.get("DFL_CHROMIUM") or shutil.which("chromium") or \
    shutil.which("chromium-browser")
KERNEL_THREADS = 1  # the kernel's torch threads; the test process and Chromium share the rest
SLIDER_VALUES = {"examples": (0.0, 0.3), "regions": (0.0, 0.2)}  # explorer -> two epsilons
# `make lab-screenshots` shows the quick study's own runs (trained first where missing); the test
# suite runs the smoke profile, whose runs the notebook trains in seconds
PROFILE = os.environ.get("DFL_LAB_PROFILE", "smoke")
RUNS_DIR = os.environ.get("DFL_LAB_RUNS_DIR", "")


def test_widgets_labextension_is_enabled():
    out = subprocess.run([str(JUPYTER), "labextension", "list"], capture_output=True, text=True,
                         timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)  # drop colour codes
    lines = [ln for ln in text.splitlines() if "@jupyter-widgets/jupyterlab-manager" in ln]
    assert lines, f"ipywidgets' JupyterLab extension is not installed:\n{text}"
    assert "enabled" in lines[0] and "OK" in lines[0], lines[0]


def test_kernel_as_jupyterlab_starts_it_imports_dfl_lib():
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        seen = []
        reply = kc.execute_interactive(
            "import dfl_lib, sys; print(sys.executable, dfl_lib.__file__)", timeout=60,
            output_hook=lambda msg: seen.append(msg["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply["content"]
        executable, module = "".join(seen).split()
        assert Path(executable).resolve() == Path(sys.executable).resolve()
        assert Path(module).resolve().parent == ROOT / "dfl_lib"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def write_parameterised(folder: Path, *, data_root: Path, work: Path) -> Path:
    """The explore notebook with PROFILE's parameters injected (papermill's way: a cell after the
    `parameters` cell), runs and outputs under `work`."""
    nb = parameterize_notebook(load_notebook_node(str(NOTEBOOK)), {
        "PROFILE": PROFILE, "DATA_DIR": str(data_root), "RUNS_DIR": RUNS_DIR or str(work / "runs"),
        "OUT_DIR": str(work / "out"), "INTERACTIVE": True,
        "WEIGHTS": ""})  # the profile's run (a reader opening it gets the committed weights)
    folder.mkdir(parents=True)
    path = folder / NOTEBOOK.name
    nbformat.write(nb, path)
    return path


def cell_errors(path: Path) -> list[str]:
    """'<ename>: <evalue>' of every error output in the saved notebook."""
    nb = nbformat.read(path, as_version=4)
    return [f"{o.ename}: {o.evalue}" for c in nb.cells if c.cell_type == "code"
            for o in c.outputs if o.output_type == "error"]


@pytest.mark.browser
def test_explore_notebook_runs_and_sliders_redraw_in_chromium(tmp_path, real_data_root):
    if not CHROMIUM:
        pytest.skip("no Chromium found (chromium on PATH or $DFL_CHROMIUM); on Debian: "
                    "apt-get install chromium, as .ci/run does")
    from playwright.sync_api import sync_playwright

    from lab_browser import move_slider, open_lab_page, run_all_cells, save_notebook

    path = write_parameterised(tmp_path / "notebooks", data_root=real_data_root, work=tmp_path)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    states, errors = {}, []
    with LabServer(root_dir=path.parent, state_dir=tmp_path / "lab",
                   threads=KERNEL_THREADS) as lab, sync_playwright() as pw:
        page = open_lab_page(pw, url=lab.url(f"lab/tree/{path.name}"), chromium=CHROMIUM)
        try:
            prompts = run_all_cells(page, timeout_s=600 if PROFILE == "smoke" else 3600)
            page.screenshot(path=str(shots / "lab-after-run-all.png"))
            save_notebook(page)
            errors = cell_errors(path)
            kernels = lab.kernel_pids()
            assert kernels, "no kernel process found for the notebook"
            environ = Path(f"/proc/{kernels[0]}/environ").read_bytes().split(b"\0")
            assert f"OMP_NUM_THREADS={KERNEL_THREADS}".encode() in environ
            if not errors:
                for i, (stem, values) in enumerate(SLIDER_VALUES.items()):
                    states[stem] = move_slider(page, widget=i, values=values, shots=shots,
                                               stem=stem)
        finally:
            page.context.browser.close()
    assert lab.proc.returncode is not None and not lab.kernel_pids(), "processes left behind"

    if any("dfl_lib" in e for e in errors):
        pytest.fail(f"the kernel cannot import dfl_lib: {errors}")
    assert not errors, f"cells raised in JupyterLab: {errors}"
    assert all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), f"cells not run: {prompts}"
    for stem, (first, second) in states.items():
        assert first["figure_sha"] != second["figure_sha"], f"{stem}: figure did not change"
        assert first["text"] != second["text"], f"{stem}: prediction text did not change"
        assert first["readout"] != second["readout"]
    assert set(states) == set(SLIDER_VALUES)

    wanted = os.environ.get("DFL_LAB_SCREENSHOTS")
    if wanted:  # make lab-screenshots: keep them for reports/
        from lab_report import write_screenshot_report

        write_screenshot_report(Path(wanted), shots=shots, states=states, chromium=CHROMIUM,
                                profile=PROFILE)
