"""Command line over the run configuration.

    python -m dfl_lib train    --profile quick --set dataset=mnist --set train_attack=pgd
    python -m dfl_lib evaluate --profile quick --set dataset=mnist --set train_attack=pgd
    python -m dfl_lib demo     --profile quick
    python -m dfl_lib study    --profile quick    # the notebook study -> reports/quick/
    python -m dfl_lib verify   --report reports/quick   # its numbers re-derived from its record
    python -m dfl_lib report                      # reports/README.md, every part's verdicts
    python -m dfl_lib site --out site             # the reports as a static site: site/index.html
    python -m dfl_lib data     --download         # MNIST, Fashion-MNIST, CIFAR-10 into ./data

`train` trains (or reuses, or resumes) the run the config describes; `evaluate` loads that run
(training it first if needed) and writes `metrics.json` with provenance into its folder.
"""
from __future__ import annotations

import argparse

from .config import RunConfig, field_type
from .experiments.configs import make_config
from .profiles import PROFILES
from .errors import UsageError

__all__ = ["parse_overrides", "build_parser"]


def parse_overrides(pairs: list[str]) -> dict:
    """["epochs=3", "dfl=false", "pcl_margin=none"] -> {"epochs": 3, "dfl": False,
    "pcl_margin": None}, typed by the config's fields ("none" only where a field allows None)."""
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise UsageError(f"override {pair!r} must look like key=value")
        want, optional = field_type(key)
        if optional and text.lower() == "none":
            out[key] = None
        elif want is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise UsageError(f"config key {key!r} takes true or false, got {text!r}")
            out[key] = text.lower() in ("true", "1")
        else:
            try:
                out[key] = want(text)
            except ValueError:
                kind = {int: "an integer", float: "a number"}.get(want, f"a {want.__name__}")
                raise UsageError(f"config key {key!r} takes {kind}, got {text!r}") from None
    return out


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)  # options every command takes
    common.add_argument("--debug", action="store_true", help="show the traceback of an error "
                        "(a user's mistake is otherwise answered in one line)")
    parser = argparse.ArgumentParser(prog="python -m dfl_lib")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kw)

    for name, text in (("train", "train (or reuse, or resume) the run a config describes"),
                       ("evaluate", "evaluate a run with the paper's and strong attacks")):
        p = command(name, help=text)
        p.add_argument("--profile", default="quick", choices=sorted(PROFILES))
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field (repeatable), e.g. --set dataset=mnist")
        p.add_argument("--data-dir", default=None, help="data root (default: $DFL_DATA_DIR, ./data)")
        p.add_argument("--runs-dir", default=None, help="runs root (default: $DFL_RUNS_DIR, ./runs)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        if name == "evaluate":
            p.add_argument("--suite", default="full", choices=["paper", "full"],
                           help="paper: FGSM, PGD-10, C&W as the paper; full: plus strong attacks "
                                "and AutoAttack")
    study = command("study", help="the notebook study: train and evaluate the plan, then "
                           "run every notebook with papermill into reports/<profile>/")
    study.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    study.add_argument("--data-dir", default=None, help="data root (default: $DFL_DATA_DIR, ./data)")
    study.add_argument("--runs-dir", default=None, help="runs root (default: runs/<profile>)")
    study.add_argument("--out-dir", default=None, help="reports folder (default: "
                       "reports/<profile>)")
    study.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    study.add_argument("--plan-only", action="store_true", help="print the plan and stop")
    study.add_argument("--skip-plan", action="store_true", help="run the notebooks only (they "
                       "train whatever the plan has not)")
    study.add_argument("--index-only", action="store_true", help="rewrite reports/<profile>/"
                       "README.md from the notebooks' metrics and recorded times")
    study.add_argument("--notebooks", default="", help="comma-separated subset, e.g. 01-depth")
    study.add_argument("--quiet", action="store_true", help="no progress bars")
    study.add_argument("--workers", type=int, default=None, help="plan items run side by side "
                       "in this many processes (default: chosen from the machine's cores and "
                       "memory; 1 on a GPU)")
    study.add_argument("--threads", type=int, default=None, help="torch threads per worker "
                       "(default: the cores split between the workers)")
    study.add_argument("--cluster", default=None, metavar="ADDRESS", help="run the plan's items "
                       "on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://host:8786; "
                       "needs pip install distributed and a --runs-dir every worker sees); the "
                       "notebooks then run here")
    study.add_argument("--allow-dirty", action="store_true", help="run with uncommitted changes "
                       "to code, notebooks or configuration (reports then name a commit that did "
                       "not make them)")
    data = command("data", help="what the data root holds of the study's datasets; "
                        "--download fetches MNIST, Fashion-MNIST and CIFAR-10 with torchvision")
    data.add_argument("--data-dir", default=None, help="data root (default: $DFL_DATA_DIR, "
                      "./data)")
    data.add_argument("--download", action="store_true", help="fetch each missing dataset "
                      "torchvision can fetch into the data root first")
    verify = command("verify", help="re-derive a report's tables, verdicts and checks from "
                            "its committed record (reports/<profile>/record/) and compare")
    verify.add_argument("--report", action="append", default=[], metavar="FOLDER",
                        help="a report folder (repeatable; default: every reports/*/ with a "
                             "record)")
    report = command("report", help="write the study report, reports/README.md: every "
                            "claim's verdict gathered from the parts under reports/")
    report.add_argument("--reports-dir", default=None, metavar="FOLDER",
                        help="the reports folder (default: the project's reports/)")
    site = command("site", help="build the study's static site (the study report, every "
                        "part's page and executed notebook as HTML) from reports/")
    site.add_argument("--out", default="site", metavar="FOLDER",
                      help="where to build it (replaced; default: site/)")
    site.add_argument("--reports-dir", default=None, metavar="FOLDER",
                      help="the reports folder (default: the project's reports/)")
    demo = command("demo", help="MNIST: an undefended ResNet-18 and DFL + PCL with PGD "
                          "training, under the paper's and strong attacks")
    demo.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    demo.add_argument("--data-dir", default=None, help="data root (default: $DFL_DATA_DIR, ./data)")
    demo.add_argument("--runs-dir", default=None, help="runs root (default: $DFL_RUNS_DIR, ./runs)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def config_from_args(args) -> RunConfig:
    return make_config(args.profile, **parse_overrides(args.overrides))
