"""reports/lab/: the browser test's screenshots and a README saying what each shows, for a reader
who wants to see the widgets without running JupyterLab (`make lab-screenshots`)."""
from __future__ import annotations

import datetime
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

TITLES = {"examples": "Adversarial examples (MNIST, DFL + PCL with PGD training, seed 0)",
          "regions": "2-D decision regions under PGD, CE vs PCL (notebook 2's nets)"}
PROFILES = {"smoke": "the **smoke** profile (tiny models trained in seconds: the pictures show "
                     "the widgets, not the study's results)",
            "quick": "the **quick** profile, on the quick study's own runs (`runs/quick`, the "
                     "models behind `reports/quick/`)"}


def _chromium_version(chromium: str | None) -> str:
    if not chromium:
        return "unknown"
    out = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=60)
    return out.stdout.strip() or "unknown"


def explored_run(profile: str) -> str:
    """The run folder name of the explore notebook's default cell (MNIST, DFL + PCL, PGD
    training, seed 0) at `profile`: the key a reader matches against reports/<profile>/."""
    from dfl_lib.runs.folder import run_name
    from dfl_lib.study.plan import cell_config

    return run_name(cell_config(profile, dataset="mnist", row="dfl_pcl",
                                setting="adversarial training"))


def write_screenshot_report(out: Path, *, shots: Path, states: dict,
                            chromium: str | None = None, profile: str = "smoke") -> Path:
    """Copy every PNG of `shots` into `out` and write `out`/README.md; returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    for png in sorted(shots.glob("*.png")):
        shutil.copy2(png, out / png.name)
    lines = ["# JupyterLab screenshots: the explore notebook's epsilon widgets", "",
             "Made by `make lab-screenshots` (the browser test, `tests/test_lab.py`): JupyterLab "
             "started from this project's environment, `notebooks/06-explore.ipynb` opened in "
             f"headless Chromium, Run > Run All Cells at {PROFILES.get(profile, profile)}, then "
             "each epsilon slider set to two values by typing into its readout.", "",
             f"- date: {datetime.date.today().isoformat()}; JupyterLab "
             f"{version('jupyterlab')}, ipywidgets {version('ipywidgets')}, "
             f"{_chromium_version(chromium)}",
             "- `lab-after-run-all.png`: the notebook after running all cells",
             f"- run explored: `{explored_run(profile)}` (the same run as "
             f"`reports/{profile}/06-explore/metrics.json`'s \"run\" when the study made both)",
             ""]
    for stem, states in states.items():
        lines += [f"## {TITLES.get(stem, stem)}", "",
                  "| epsilon | screenshot | text line the widget printed "
                  "| figure (sha256, bytes) |",
                  "|---|---|---|---|"]
        for s in states:
            lines.append(f"| {s['value']:.2f} | [{s['screenshot']}]({s['screenshot']}) | "
                         f"`{s['text']}` | {s['figure_sha']}, {s['figure_bytes']} |")
        lines += ["", *[f"![{stem} at eps {s['value']:.2f}]({s['screenshot']})" for s in states],
                  ""]
    path = out / "README.md"
    path.write_text("\n".join(lines))
    return path
