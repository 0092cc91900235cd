"""What every study notebook does around its science: set up (threads, output folder, figure
style), load the plan's runs, save figures as PNG and PDF, and write one metrics.json with
provenance. Notebooks hold only parameters and calls; this holds the bookkeeping.

    nb = Notebook("01-depth", profile=PROFILE, out_dir=OUT_DIR, runs_dir=RUNS_DIR,
                  data_dir=DATA_DIR, device=DEVICE)
    nb.save_figure(fig, "figure1-losses")       # -> OUT_DIR/01-depth/figure1-losses.{png,pdf}
    nb.write_metrics({"verdicts": [...], ...})  # -> OUT_DIR/01-depth/metrics.json
"""
from __future__ import annotations

import time
from pathlib import Path

from ..data.datasets import DATASETS
from ..device import resolve_device, set_threads
from ..experiments.configs import make_config, profile_deviations
from ..profiles import get_profile
from ..runs import io as runio
from .kernel import require_project_interpreter
from .plan import datasets, plan_deviations, study_plan, table_backbone

__all__ = ["Notebook", "CIFAR_NOTE", "set_threads"]

CIFAR_NOTE = ("CIFAR-10 here is a JPEG-decoded copy of the original test and training images "
              "(the `cifar10_jpeg` dataset), not the original PNG/pickle batches: its numbers "
              "are not directly comparable with published CIFAR-10 numbers.")


def _in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (papermill's or JupyterLab's), not a script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


class Notebook:
    """One notebook's context: its name, profile, folders and wall clock."""

    def __init__(self, name: str, *, profile: str, out_dir: str, runs_dir: str,
                 data_dir: str = "", device: str = "auto"):
        import matplotlib.pyplot as plt

        require_project_interpreter()  # a study kernel on another interpreter stops here
        self.name, self.profile, self.device = name, profile, device
        self.out = Path(out_dir) / name
        self.out.mkdir(parents=True, exist_ok=True)
        self.runs_dir = str(Path(runs_dir).resolve())
        self.data_dir = str(Path(data_dir).resolve()) if data_dir else None
        self.threads = set_threads()
        self.start = time.perf_counter()
        self.figures: list[str] = []
        plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 130, "axes.titlesize": 10,
                             "axes.labelsize": 9, "legend.fontsize": 8})

    @property
    def run_kwargs(self) -> dict:
        """Keyword arguments every plan/comparison loader takes."""
        return {"runs_root": self.runs_dir, "data_root": self.data_dir, "device": self.device}

    @property
    def datasets(self) -> tuple[str, ...]:
        """The datasets whose table cells the profile's plan makes."""
        return datasets(self.profile)

    @property
    def backbone(self) -> str:
        """The model standing for the paper's ResNet-50 in the tables, as a label."""
        width = make_config(self.profile, dataset="mnist").width
        return f"{table_backbone(self.profile)} (width {width})"

    @property
    def monitor_size(self) -> int:
        """Images of the per-epoch PGD-10 monitor at this profile."""
        return make_config(self.profile, dataset="mnist").monitor_size

    def save_figure(self, fig, stem: str) -> str:
        """fig -> <out>/<stem>.png and the profile's other formats (`Profile.figure_formats`:
        .pdf beside it, except at smoke); returns the PNG's path. In a kernel, the PNG just
        written is shown in the notebook and the figure closed: the reader sees the file
        itself, and the inline backend does not draw every figure a second time at the end
        of its cell (about half a second per figure)."""
        for ext in get_profile(self.profile).figure_formats:
            fig.savefig(self.out / f"{stem}.{ext}", bbox_inches="tight")
        self.figures.append(f"{stem}.png")
        png = self.out / f"{stem}.png"
        if _in_kernel():
            import matplotlib.pyplot as plt
            from IPython.display import Image, display

            display(Image(filename=str(png)))
            plt.close(fig)
        return str(png)

    def class_counts(self) -> dict[str, int | None]:
        """{dataset: its number of classes} for the datasets of this notebook's plan runs (None
        where the count is read from the files); recorded in every metrics file."""
        names = {item.cfg.dataset for item in study_plan(self.profile, device=self.device)
                 if self.name in item.notebooks}
        return {name: DATASETS[name].num_classes for name in sorted(names)}

    def write_metrics(self, payload: dict) -> Path:
        """metrics.json: the payload plus profile, deviations, figures and provenance."""
        body = {"notebook": self.name, "profile": self.profile, "n_classes": self.class_counts(),
                "deviations": list(profile_deviations(self.profile))
                + list(plan_deviations(self.profile)), "figures": self.figures,
                **payload,
                "provenance": runio.provenance(config={"profile": self.profile}, seed=0,
                                               device=str(resolve_device(self.device)),
                                               wall_seconds=time.perf_counter() - self.start)}
        return runio.write_json(self.out / "metrics.json", body)
