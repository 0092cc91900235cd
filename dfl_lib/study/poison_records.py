"""The poisoning study's finished results as records for notebook 07, and its answers: does DFL
and/or PCL mitigate each poisoning compared with the plain ResNet (and with PGD training), with
an interval over seeds and images.

    records = poison_records("quick", runs_root="runs/quick")
    effects = poison_effects(records)     # one dict per (poison, row, setting) against ResNet

A poison crafted against a network (adversarial poisons, error-minimising noise, the clean-label
backdoor) is crafted against the plain ResNet for every row (record "crafted_against": "the
plain ResNet": the poison must transfer to a defended victim) and, where the profile asks,
against each defended victim itself ("the victim": an attacker who knows the defence). Effects
compare a defended row with the plain ResNet poisoned by a poison crafted against itself, in
both cases; their "attacker" says which ("transfer" or "adaptive").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..evaluation.featurespace import penultimate_features, umap_embedding
from ..experiments.data import load_data
from ..experiments.poison_metrics import poison_metrics
from ..paper.comparison import ROW_LABELS
from ..poisoning import get_poison
from ..paper.intervals import effect_interval
from ..paper.regime import untrained_reason
from ..profiles import get_profile
from .plan import POISON_ROWS, poison_config, poison_grid
from .records import load_run

__all__ = ["poison_records", "poison_effects", "poison_statements", "detection_statement",
           "sweep_statement",
           "poisoned_feature_panels", "transfer_records", "TRANSFER", "ADAPTIVE"]

# a backdoor "takes hold" when the plain ResNet, trained on the poisoned set without defence,
# sends at least half the triggered test images to the target; below, there is nothing for a
# defence to mitigate (issue 20: "a poisoning that does not work tests nothing")
TAKES_HOLD = 50.0
SETTING_LABELS = {"none": "no defence", "pgd": "PGD training"}
# the attacker an effect compares: the poison crafted against the plain ResNet, or against the
# defended victim itself
TRANSFER, ADAPTIVE = "transfer", "adaptive"


def _row_of(cfg) -> str:
    return {(False, "ce"): "resnet", (True, "ce"): "dfl", (False, "pcl"): "pcl",
            (True, "pcl"): "dfl_pcl"}[(cfg.dfl, cfg.loss)]


def poison_records(profile: str, *, runs_root=None, data_root=None,
                   device: str = "auto") -> list[dict]:
    """One record per run of the poisoning grid (`plan.poison_grid`): its metrics
    (`poison_metrics`, computed where missing), with poison, row, setting, seed, fraction and
    the folder of its per-example masks."""
    out = []
    for key, cfg in poison_grid(profile, device=device):
        m = poison_metrics(cfg, data_root=data_root, runs_root=runs_root)
        needs = cfg.poison != "none" and get_poison(cfg.poison).needs != "nothing"
        against = ("" if not needs else "the victim" if cfg.poison_surrogate == "victim"
                   or _row_of(cfg) == "resnet" else "the plain ResNet")
        out.append({**m, "key": key, "row": _row_of(cfg), "label": ROW_LABELS[_row_of(cfg)],
                    "setting": SETTING_LABELS[cfg.train_attack], "seed": cfg.seed,
                    "surrogate": cfg.poison_surrogate, "crafted_against": against,
                    "share": get_poison(cfg.poison).share if cfg.poison != "none" else "",
                    "masks": str(Path(m["path"]).parent / "masks-poison")})
    return out


def transfer_records(records: list[dict]) -> list[dict]:
    """The records whose poison was crafted against the plain ResNet or against no network
    (every row's default): what the study's bars, sweeps and detection compare."""
    return [r for r in records if r.get("surrogate", "resnet") == "resnet"]


def _samples(records, *, poison, rows, setting, fraction, mask: str,
             attacker: str = TRANSFER) -> dict:
    """{row: {seed: {mask: per-example array}}}; the defended rows' runs with the poison
    crafted against the plain ResNet (TRANSFER) or against themselves (ADAPTIVE); the plain
    ResNet's are the same runs either way (its poison is crafted against itself)."""
    out: dict = {}
    for r in records:
        surrogate = "victim" if attacker == ADAPTIVE and r["row"] != "resnet" else "resnet"
        if r["poison"] == poison and r["row"] in rows and r["setting"] == setting and \
                abs(r["fraction"] - fraction) < 1e-9 and \
                r.get("surrogate", "resnet") == surrogate:
            path = Path(r["masks"]) / f"{mask}.npy"
            if path.exists():
                out.setdefault(r["row"], {})[r["seed"]] = {mask: np.load(path)}
    return out


def _untrained(records, *, rows, setting) -> str:
    """Why the unpoisoned reference runs of `rows` in `setting` did not train ("" if they did)."""
    clean = {}
    for r in records:
        if r["poison"] == "none" and r["row"] in rows and r["setting"] == setting:
            clean.setdefault(r["row"], []).append(r["clean_accuracy"])
    if not clean:
        return "no unpoisoned reference run"
    return untrained_reason(dataset="mnist", clean={k: float(np.mean(v))
                                                    for k, v in clean.items()})


def _no_hold(records, *, poison: str, fraction: float) -> str:
    """Why the backdoor did not take hold on the plain ResNet without defence ("" if it did):
    its mean attack success rate over seeds is below TAKES_HOLD percent."""
    rates = [r["attack_success_rate"] for r in records
             if r["poison"] == poison and r["row"] == "resnet" and r["setting"] == "no defence"
             and abs(r["fraction"] - fraction) < 1e-9 and "attack_success_rate" in r]
    if not rates or np.mean(rates) >= TAKES_HOLD:
        return ""
    return (f"the backdoor did not take hold: {np.mean(rates):.1f}% success on the plain "
            f"ResNet, below {TAKES_HOLD:g}%")


MIN_EFFECT_SEEDS = 3  # as the paper's claims (`paper.verdicts.claim_verdict`'s min_seeds)


def poison_effects(records: list[dict], *, fraction: float | None = None,
                   n_boot: int = 200) -> list[dict]:
    """For each poison, defence row and setting: the row minus the plain ResNet (points, same
    poison, setting and fraction, seeds in common), with a 95% t interval over seeds holding
    image noise (`paper.intervals.effect_interval`): clean accuracy (higher is better) and, for
    a backdoor, the attack success rate (lower is better). `answer` says it in words:
    "mitigates", "worsens" or "no difference detected" (the interval covers zero), with the
    number of seeds; "not testable here (...)" with fewer than `MIN_EFFECT_SEEDS` seeds in
    common. "attacker": TRANSFER (the defended
    row's poison crafted against the plain ResNet) or, where such runs exist, ADAPTIVE (crafted
    against the defended row itself); the plain ResNet's runs are its baseline in both."""
    if fraction is None:  # the grid's default rate: the one most poisoned runs share
        rates = [round(r["fraction"], 9) for r in records if r["poison"] != "none"]
        fraction = max(set(rates), key=rates.count) if rates else 0.0
    out = []
    poisons = list(dict.fromkeys(r["poison"] for r in records))
    for poison in poisons:
        frac = 0.0 if poison == "none" else fraction
        no_hold = _no_hold(records, poison=poison, fraction=frac)  # "" for a working backdoor
        cells = [(setting, row, measure, better, attacker)
                 for setting in ("no defence", "PGD training")
                 for row in ("dfl", "pcl", "dfl_pcl")
                 for attacker in (TRANSFER, ADAPTIVE)
                 for measure, better in (("clean", +1), ("attack_success", -1))]
        for setting, row, measure, better, attacker in cells:
            if measure == "attack_success" and (
                    poison == "none" or get_poison(poison).kind != "backdoor"):
                continue
            s = _samples(records, poison=poison, rows=(row, "resnet"), setting=setting,
                         fraction=frac, mask=measure, attacker=attacker)
            if set(s) != {row, "resnet"}:
                continue
            seeds = sorted(set(s[row]) & set(s["resnet"]))
            s = {k: {seed: v[seed] for seed in seeds} for k, v in s.items()}
            est, low, high = effect_interval(
                s, effect=lambda acc, r=row, m=measure: acc[r][m] - acc["resnet"][m],
                n_boot=n_boot)
            good = (low > 0) if better > 0 else (high < 0)
            bad = (high < 0) if better > 0 else (low > 0)
            answer = "mitigates" if good else "worsens" if bad else \
                "no difference detected"
            untrained = _untrained(records, rows=(row, "resnet"), setting=setting)
            weak = no_hold if measure == "attack_success" else ""
            if untrained:  # the unpoisoned networks must train for a poison to mean much
                answer = f"not testable here ({untrained})"
            elif weak:
                answer = f"not testable here ({weak})"
            elif len(seeds) < MIN_EFFECT_SEEDS:
                # one seed's interval holds image noise only, while seeds swing a
                # poison's effect by 10-20 points: no effect is stated from it
                answer = (f"not testable here ({len(seeds)} seed"
                          f"{'s' * (len(seeds) != 1)}: an effect needs "
                          f"{MIN_EFFECT_SEEDS})")
            out.append({"poison": poison, "row": row, "setting": setting,
                        "attacker": attacker,
                        "measure": "clean accuracy" if measure == "clean"
                        else "attack success rate",
                        "effect": est, "low": low, "high": high, "seeds": len(seeds),
                        "answer": answer})
    return out


def poisoned_feature_panels(profile: str, *, poison: str = "badnets", runs_root=None,
                            data_root=None, device: str = "auto", n_clean: int = 1000,
                            n_poison: int = 300) -> dict:
    """{row label: {"clean_2d" (N, 2), "clean_y" (N,), "poison_2d" (M, 2), "poison_y" (M,) the
    poisoned samples' original classes, "target", "detection"}} for each defence row trained on
    the `poison`-ed set (clean training, seed 0): penultimate features of n_clean clean and
    n_poison poisoned training samples, UMAP fitted on the clean ones (`umap_embedding`)."""
    import torch



    out = {}
    for row in get_profile(profile).poisoning.get("rows", POISON_ROWS):
        cfg = poison_config(profile, poison=poison, row=row, setting="no defence", device=device)
        run = load_run(cfg, runs_root=runs_root, data_root=data_root)
        data, model = run["data"], run["model"].eval()
        clean_data = load_data(cfg.replace(poison="none"), root=data_root)
        gen = torch.Generator().manual_seed(0)
        poisoned = data.poisoned.indices
        poisoned = poisoned[torch.randperm(len(poisoned), generator=gen)][:n_poison]
        mask = torch.ones(len(data.y_train), dtype=torch.bool)
        mask[data.poisoned.indices] = False
        clean = mask.nonzero().squeeze(1)
        clean = clean[torch.randperm(len(clean), generator=gen)][:n_clean]
        f_clean = penultimate_features(model, data.to_float(data.x_train[clean]))
        f_poison = penultimate_features(model, data.to_float(data.x_train[poisoned]))
        clean_2d, poison_2d = umap_embedding(f_clean, f_poison, seed=0)
        out[ROW_LABELS[row]] = {"clean_2d": clean_2d, "clean_y": data.y_train[clean].numpy(),
                                "poison_2d": poison_2d,
                                "poison_y": clean_data.y_train[poisoned].numpy(),
                                "target": cfg.poison_target, "poison": poison}
    return out


def poison_statements(effects: list[dict], records: list[dict], *, fraction: float) -> list[str]:
    """Plain sentences, per poison: what it does to the plain ResNet (clean accuracy, and the
    attack success rate of a backdoor, clean training, mean over seeds) and, per defence and
    setting, whether it mitigates it compared with the plain ResNet (the row minus the ResNet
    with its 95% interval); then, where the detectors ran, whether the poison is easier or
    harder to detect in each defence's feature space (`detection_statement`)."""
    out = []
    for poison in dict.fromkeys(r["poison"] for r in records):
        if poison == "none":
            continue
        base = [r for r in records if r["poison"] == poison and r["row"] == "resnet"
                and r["setting"] == "no defence" and abs(r["fraction"] - fraction) < 1e-9]
        ref = [r for r in records if r["poison"] == "none" and r["row"] == "resnet"
               and r["setting"] == "no defence"]
        if not base:
            continue
        acc = np.mean([r["clean_accuracy"] for r in base])
        entry = get_poison(poison)
        head = (f"{poison} ({fraction:.0%} {entry.share})" if entry.subset
                else f"{poison} ({entry.share})")
        text = (f"{head}: the plain ResNet keeps {acc:.1f}% clean accuracy"
                + (f" (unpoisoned: {np.mean([r['clean_accuracy'] for r in ref]):.1f}%)"
                   if ref else ""))
        if "attack_success_rate" in base[0]:
            text += (f" and the backdoor succeeds on "
                     f"{np.mean([r['attack_success_rate'] for r in base]):.1f}% of triggered "
                     f"test images")
            if _no_hold(records, poison=poison, fraction=fraction):
                text += (" (it did not take hold at this scale: whether a defence mitigates it "
                         "is not testable here)")
        parts = [f"{ROW_LABELS[e['row']]} ({e['setting']}"
                 f"{', poison crafted against itself' if e.get('attacker') == ADAPTIVE else ''}"
                 f", {e['measure']}): {e['answer']} "
                 f"({e['effect']:+.1f} points [{e['low']:+.1f}, {e['high']:+.1f}], "
                 f"{e['seeds']} seed(s))" for e in effects if e["poison"] == poison]
        out.append(text + ("; against the plain ResNet: " + "; ".join(parts) if parts else "")
                   + ".")
        sweep = sweep_statement(records, poison=poison)
        if sweep:
            out.append(sweep)
        detection = detection_statement(records, poison=poison, fraction=fraction)
        if detection:
            out.append(detection)
    return out


def sweep_statement(records: list[dict], *, poison: str) -> str:
    """One sentence on a backdoor's attack success rate on the plain ResNet (clean training, mean
    over seeds) at each share of the poison rate sweep, and from which share it takes hold
    (`TAKES_HOLD`), or that it took hold at no share tried; "" with fewer than two shares."""
    rates: dict = {}
    for r in records:
        if r["poison"] == poison and r["row"] == "resnet" and r["setting"] == "no defence" \
                and "attack_success_rate" in r:
            rates.setdefault(round(r["fraction"], 9), []).append(r["attack_success_rate"])
    if len(rates) < 2:
        return ""
    share = get_poison(poison).share
    means = {f: float(np.mean(v)) for f, v in sorted(rates.items())}
    points = ", ".join(f"{f:.0%}: {m:.1f}%" for f, m in means.items())
    hold = [f for f, m in means.items() if m >= TAKES_HOLD]
    verdict = (f"it takes hold (at least {TAKES_HOLD:g}% success) from {hold[0]:.0%} {share}"
               if hold else f"it took hold at no share tried (up to {max(means):.0%} {share})")
    return (f"{poison}: the plain ResNet's attack success rate by share poisoned (clean "
            f"training) is {points}: {verdict}.")


def _range(values: list[float]) -> str:
    return (f"{values[0]:.2f}" if len(values) == 1 else
            f"{np.mean(values):.2f} ({min(values):.2f}-{max(values):.2f})")


def detection_statement(records: list[dict], *, poison: str, fraction: float) -> str:
    """One plain sentence on whether the poisoned training samples of `poison` stand out in
    each defence's feature space (clean training): each detector's AUROC per row (mean and
    min-max over seeds), and per defence whether it makes the poison easier or harder to detect
    than in the plain ResNet: the AUROC difference paired by seed with its 95% t interval over
    the seeds (`paper.intervals.effect_interval`, the claims' interval), "easier" / "harder"
    only where the interval excludes zero, else "no clear difference" (a noise test: seeds
    that merely do not overlap are not enough, issue 39); with fewer than `MIN_EFFECT_SEEDS`
    common seeds, "not testable here". "" when no run measured it."""
    found: dict = {}
    for r in transfer_records(records):
        if r["poison"] == poison and r["setting"] == "no defence" and r.get("detection") \
                and abs(r["fraction"] - fraction) < 1e-9:
            for detector, m in r["detection"].items():
                found.setdefault(detector, {}).setdefault(r["row"], {})[r["seed"]] = \
                    float(m["auroc"])
    if not found:
        return ""
    parts = []
    for detector, rows in found.items():
        values = ", ".join(f"{ROW_LABELS[row]} {_range(list(v.values()))}"
                           for row, v in rows.items())
        verdicts = []
        base = rows.get("resnet")
        for row, v in rows.items():
            if row == "resnet" or not base:
                continue
            seeds = sorted(set(v) & set(base))
            if len(seeds) < MIN_EFFECT_SEEDS:  # one seed's AUROC gap is within the seeds' swing
                verdicts.append(f"{ROW_LABELS[row]}: not testable here ({len(seeds)} seed"
                                f"{'s' * (len(seeds) != 1)}: a difference needs "
                                f"{MIN_EFFECT_SEEDS})")
                continue
            samples = {name: {s: {"auroc": auc[s]} for s in seeds}
                       for name, auc in ((row, v), ("resnet", base))}
            est, low, high = effect_interval(
                samples, effect=lambda acc, row=row: acc[row]["auroc"] - acc["resnet"]["auroc"])
            word = ("easier to detect" if low > 0 else "harder to detect" if high < 0
                    else "no clear difference")
            verdicts.append(f"{ROW_LABELS[row]}: {word} (AUROC {est:+.2f}, 95% interval "
                            f"[{low:+.2f}, {high:+.2f}], {len(seeds)} seeds)")
        parts.append(f"{detector} AUROC {values}"
                     + (" (" + "; ".join(verdicts) + ", against the plain ResNet)"
                        if verdicts else ""))
    return (f"{poison}: do the poisoned training samples stand out in feature space "
            f"(clean training; 0.5 = chance, 1 = every poisoned sample ranked first)? "
            + "; ".join(parts) + ".")
