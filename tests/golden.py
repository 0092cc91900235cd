"""Golden results of every computation a run key names (`dfl_lib.runs.versions`): small cases of
every training method, loss, training attack and precision, every poison, every evaluation
attack and check, the poisoned run's measurements and Figure 4's nets, each reduced to a few
numbers. `tests/test_golden.py` recomputes them and fails when a result moves while the versions
of its computations stand still.

    python tests/golden.py --write    # re-record tests/golden/results.json after a version bump

Numbers are compared with a relative tolerance (`TOLERANCE`): the CPU kinds this project runs on
round differently in their last bits (AVX2 vs AVX-512), while a change to what a computation
does moves its numbers by far more.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from conftest import write_synthetic_npz  # noqa: E402

GOLDEN = HERE / "golden" / "results.json"
TOLERANCE = {"rel": 2e-3, "abs": 1e-4}   # fp32 cases
TOLERANCE_BF16 = {"rel": 0.1, "abs": 1e-2}  # bf16 rounds differently with and without native bf16
# counted results may differ by one borderline image across CPU kinds: absolute slack by key
SLACK = (("correct:", 1.0),                      # correct images of 32
         ("accuracy", 5.0), ("rate", 5.0),       # percentages over 24-32 images
         ("acc@", 0.02), ("error@", 0.02))       # fractions over 64-256 images

# name -> config overrides of the smoke profile on the synthetic task (training cases)
TRAIN_CASES = {
    "ce-plain-clean": dict(dfl=False, loss="ce", train_attack="none"),
    "dfl-pcl-pgd": dict(dfl=True, loss="pcl", train_attack="pgd"),
    "dfl-pcl_legacy-fgsm": dict(dfl=True, loss="pcl_legacy", train_attack="fgsm"),
    "center-cw": dict(loss="center", train_attack="cw"),
    "am_softmax-pgd-concat-cosine": dict(loss="am_softmax", train_attack="pgd",
                                         adv_mode="concat", schedule="cosine"),
    "mustafa": dict(method="mustafa", train_attack="pgd", extra_fc=32),
    "dynamic": dict(method="dynamic", train_attack="pgd"),
    "dfl-pcl-pgd-bf16": dict(dfl=True, loss="pcl", train_attack="pgd", precision="bf16"),
}


def _config(npz: Path, **overrides):
    from dfl_lib.experiments.configs import make_config

    # the sizes pinned here, not read from the smoke profile: the smoke study's sizes are
    # chosen for the suite's time, and moving them must not move a golden result
    sizes = {"n_train": 256, "n_val": 64, "monitor_size": 32} | overrides
    return make_config("smoke", dataset="npz", data_path=str(npz), eps=0.1, epochs=1,
                       n_eval=32, **sizes)


def _history_numbers(history: list[dict]) -> dict:
    """The training side of each epoch's record (loss and its terms): the validation monitor
    attacks the model again, and at these sizes its counts turn on last-bit differences
    between CPU kinds (seen: 2 threads instead of 1 moved a monitor accuracy by 0.25)."""
    return {f"{k}@{i}": float(v) for i, h in enumerate(history) for k, v in h.items()
            if k.startswith("train_") and "seconds" not in k and "acc" not in k
            and "error" not in k and isinstance(v, (int, float))}


def _weights(model) -> float:
    return float(sum(p.detach().double().abs().sum() for p in model.parameters()))


def train_case(npz: Path, runs: Path, name: str) -> dict:
    """One training step (one batch of 64, one epoch): its loss terms, computed on the initial
    model, and the weights after the step. More steps let last-bit differences between CPU
    kinds grow (4 steps: up to 0.25% with 2 threads instead of 1)."""
    from dfl_lib.experiments.run import train_run

    cfg = _config(npz, **TRAIN_CASES[name], n_train=64)
    run = train_run(cfg.replace(batch_size=64), runs_root=runs, progress=False)
    return {**_history_numbers(run["history"]), "weights": _weights(run["model"])}


def poison_case(npz: Path, runs: Path, poison: str) -> dict:
    from dfl_lib.experiments.data import load_data

    cfg = _config(npz, poison=poison, poison_fraction=0.1)
    data = load_data(cfg, runs_root=runs)
    return {"x_train": float(data.x_train.double().sum()),
            "y_train": float(data.y_train.double().sum()),
            "n_poisoned": float(len(data.poisoned.indices)),
            "indices": float(sum(int(i) for i in data.poisoned.indices))}


def evaluate_case(npz: Path, runs: Path) -> dict:
    """What the evaluation computes beyond the attacks: the full suite's rows and settings as
    data (a changed budget, row or threat model changes them) and the masking checks' flags on
    the trained smoke run. Correct counts are left out: on 32 images they turn on last-bit
    differences between CPU kinds (the C&W-L2 search's count moved 32 -> 28 with 2 threads)."""
    from dfl_lib.evaluation.suites import attack_suite, threat_model
    from dfl_lib.experiments.run import train_and_evaluate
    from dfl_lib.runs.io import canonical_json

    cfg = _config(npz, **TRAIN_CASES["dfl-pcl-pgd"])
    suite = {name: {k: v for k, v in spec.items() if k != "note"}
             for name, spec in attack_suite(cfg, suite="full").items()}
    text = canonical_json({"suite": suite, "threat": threat_model(cfg).to_dict()})
    out = {"suite": float(int(hashlib.sha256(text.encode()).hexdigest()[:12], 16))}
    metrics = train_and_evaluate(cfg, suite="full", runs_root=runs, progress=False)
    out.update({f"check:{f['check']}": float(bool(f["passed"])) for f in metrics["masking"]})
    out["rows"] = float(len(metrics["table"]))
    return out


def attack_case() -> dict:
    """Every registered attack that needs no live object, ours and the peers' (torchattacks),
    on one fixed random network and batch at small budgets: the mean size of its perturbation
    and the network's mean margin on the attacked images (bit-stable across thread counts)."""
    from dfl_lib.attacks import REGISTRY
    from dfl_lib.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", num_classes=4, in_channels=1, width=4).eval()
    x = torch.rand(8, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    y = torch.arange(8) % 4
    budgets = {"steps": 5, "n_queries": 50}
    out = {}
    for name, entry in sorted(REGISTRY.items()):
        if entry.needs or entry.kind == "none":
            continue
        settings = {k: v for k, v in budgets.items() if k in entry.defaults}
        if entry.norm == "Linf":
            settings["eps"] = 0.1
        elif "eps" in entry.required:  # a bounded L2 attack: eps is its L2 radius
            settings["eps"] = 1.0
        kwargs = entry.settings(settings) if entry.fill_defaults else settings  # as evaluate does
        if entry.takes_classes:
            kwargs["n_classes"] = 4
        x_adv = entry.run(model, x, y, generator=torch.Generator().manual_seed(2), seed=2,
                          **kwargs)
        with torch.no_grad():
            logits = model(x_adv.detach())
        true = logits.gather(1, y[:, None])[:, 0]
        other = logits.scatter(1, y[:, None], -math.inf).amax(1)
        out[f"{name}:delta"] = float((x_adv.detach() - x).abs().mean())
        out[f"{name}:margin"] = float((true - other).mean())
    return out


def poison_metrics_case(npz: Path, runs: Path) -> dict:
    from dfl_lib.experiments.poison_metrics import poison_metrics

    metrics = poison_metrics(_config(npz, poison="badnets", poison_fraction=0.1),
                             runs_root=runs)
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and "seconds" not in k}


def geometry_case() -> dict:
    from dfl_lib.experiments.geometry import train_2d

    x = torch.rand(96, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(96) % 10
    model, criterion = train_2d(loss="pcl", x=x, y=y, epochs=2, batch_size=32, lr=0.05, seed=0)
    return {"weights": _weights(model), "loss": _weights(criterion)}


def cases() -> dict[str, tuple[tuple[str, ...], callable]]:
    """{case name: (the computations it exercises, a function of (npz, runs) -> numbers)}."""
    out = {f"train/{n}": (("train",), lambda npz, runs, n=n: train_case(npz, runs, n))
           for n in TRAIN_CASES}
    from dfl_lib.poisoning import POISONS

    out.update({f"poison/{p}": (("poison", "train"),
                                lambda npz, runs, p=p: poison_case(npz, runs, p))
                for p in POISONS})
    out["evaluate/full-suite"] = (("evaluate", "train"), evaluate_case)
    out["evaluate/attacks"] = (("evaluate",), lambda npz, runs: attack_case())
    out["poison_metrics/badnets"] = (("poison_metrics", "poison", "train"), poison_metrics_case)
    out["geometry/pcl"] = (("geometry",), lambda npz, runs: geometry_case())
    return out


def compute(names=None) -> dict[str, dict]:
    """{case: {"computations": [...], "values": {...}}} for `names` (default: every case),
    computed in a temporary folder on one thread."""
    torch.set_num_threads(1)
    chosen = cases()
    with tempfile.TemporaryDirectory(prefix="dfl-golden-") as work:
        npz = write_synthetic_npz(Path(work) / "quadrants.npz")
        runs = Path(work) / "runs"
        return {name: {"computations": list(chosen[name][0]),
                       "values": chosen[name][1](npz, runs)}
                for name in (names or chosen)}


def record(results: dict) -> dict:
    """What the golden file holds: the versions the results were made at, and the results."""
    from dfl_lib.runs.versions import VERSIONS

    return {"versions": dict(VERSIONS), "cases": results}


def differences(recorded: dict, case: str, now: dict) -> list[str]:
    """Why `now` (a computed case) differs from the recorded file, in words; [] when it agrees.
    A version that moved since recording asks for re-recording; numbers that moved while the
    versions stood still ask for a version bump."""
    from dfl_lib.runs.versions import VERSIONS

    if case not in recorded["cases"]:
        return [f"{case}: no golden recorded (python tests/golden.py --write)"]
    moved = [c for c in now["computations"] if recorded["versions"].get(c) != VERSIONS[c]]
    if moved:
        return [f"{case}: computation {c} is at version {VERSIONS[c]}, the goldens at "
                f"{recorded['versions'].get(c)}: re-record them (python tests/golden.py --write)"
                for c in moved]
    tol = TOLERANCE_BF16 if "bf16" in case else TOLERANCE
    old, new = recorded["cases"][case]["values"], now["values"]
    out = [f"{case}: {k} missing" for k in sorted(set(old) ^ set(new))]
    for k in sorted(set(old) & set(new)):
        slack = max([v for part, v in SLACK if part in k] or [0.0])
        if not math.isclose(old[k], new[k], rel_tol=tol["rel"], abs_tol=max(tol["abs"], slack)):
            out.append(f"{case}: {k} was {old[k]!r}, now {new[k]!r}")
    if out:
        out.append(f"{case}: its result moved while {', '.join(now['computations'])} kept "
                   f"its version: bump it in dfl_lib/runs/versions.py, then re-record")
    return out


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/golden.py --write")
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(record(compute()), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
