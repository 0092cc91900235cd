"""Check that two versions of the library give the same results: train and evaluate three small
runs (DFL + PCL with PGD training, Mustafa et al. adversarial, Dynamic) on a synthetic task and
write their histories (times left out), per-row correct counts and the sha256 of every
per-example mask file as JSON; compare the files.

    git worktree add /tmp/base <commit>
    PYTHONPATH=/tmp/base  python studies/same_results.py /tmp/before.json /tmp/work-a
    PYTHONPATH=.          python studies/same_results.py /tmp/after.json  /tmp/work-b
    cmp /tmp/before.json /tmp/after.json && echo identical
"""
import hashlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import write_synthetic_npz  # noqa: E402
from dfl_lib.experiments.configs import make_config  # noqa: E402
from dfl_lib.experiments.run import train_and_evaluate  # noqa: E402

RUNS = {"pcl-pgd": dict(dfl=True, loss="pcl", train_attack="pgd"),
        "mustafa-adv": dict(method="mustafa", train_attack="pgd", extra_fc=32),
        "dynamic": dict(method="dynamic", train_attack="pgd")}


def main(out_file: str, work: str) -> None:
    torch.set_num_threads(1)
    work_dir = Path(work)
    work_dir.mkdir(parents=True, exist_ok=True)
    npz = write_synthetic_npz(work_dir / "quadrants.npz")
    out = {}
    for label, overrides in RUNS.items():
        cfg = make_config("smoke", dataset="npz", data_path=str(npz), eps=0.1, n_eval=32,
                          epochs=3, **overrides)
        metrics = train_and_evaluate(cfg, suite="paper", runs_root=work_dir / "runs", progress=False)
        history = json.loads((Path(metrics["path"]).parent / "history.json").read_text())
        out[label] = {"history": [{k: v for k, v in h.items() if "seconds" not in k}
                                  for h in history],
                      "table": [(r["name"], r["n_correct"]) for r in metrics["table"]],
                      "masks": _mask_digests(Path(metrics["path"]).parent / "masks-paper")}
    Path(out_file).write_text(json.dumps(out, indent=1, sort_keys=True))


def _mask_digests(folder: Path) -> dict[str, str]:
    """{mask file: sha256 of its bytes}: the per-example results, byte for byte."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.npy"))}


if __name__ == "__main__":
    main(*sys.argv[1:3])
