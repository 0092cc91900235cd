"""The benchmark's three sections, each a list of rows:
{"section", "case", "ours_ips", "ours_peak_mb", "reference", "reference_ips",
 "reference_peak_mb", "ratio" (ours / reference), "note", ...}.

Models are the quick profile's (width 16): the robust one is the quick study's MNIST ResNet-18
with PGD-10 training, seed 0 (runs/quick; trained first where missing, about 7 min here).
"""
from __future__ import annotations

import dataclasses

import torch

from dfl_lib.attacks import LogitsOnly, cw, fgsm, pgd
from dfl_lib.evaluation.robust import eval_subset, robust_accuracy
from dfl_lib.training.loop import Adversary, EpochSetup, train_epoch
from dfl_lib.defences import training_attack
from dfl_lib.study.plan import cell_config
from dfl_lib.study.records import load_run
from dfl_lib.experiments.data import load_data
from dfl_lib.training.trainer import build_components, build_optimizer
from plain_loop import plain_adversarial_epoch, plain_loader
from timing import alternate

ATTACK_BATCH = 128
TRAIN_BATCHES = 2          # batches of the quick profile's size (128) per timed epoch
EVAL_ROWS = {              # section 3: name -> robust_accuracy settings besides eps
    "AutoAttack (standard, quick budgets)": {"attack": "autoattack"},
    "  APGD-CE": {"attack": "apgd_ce"},
    "  APGD-T": {"attack": "apgd_t"},
    "  FAB-T": {"attack": "fab"},
    "  Square": {"attack": "square"},
    "PGD-50 x3 restarts": {"attack": "pgd", "steps": 50, "restarts": 3},
    "CW-inf (PGD-50)": {"attack": "cw_pgd", "steps": 50},
}


def _formats(cfg) -> tuple[torch.memory_format, torch.memory_format]:
    """(the engine's memory format for this config, the other one)."""
    cl, cont = torch.channels_last, torch.contiguous_format
    return (cl, cont) if cfg.channels_last else (cont, cl)


def robust_model(*, device, runs_dir, data_dir):
    """(model in eval mode on `device`, its data, its config): quick MNIST ResNet-18, PGD-10."""
    cfg = cell_config("quick", dataset="mnist", row="resnet", setting="adversarial training",
                      device=str(device))
    run = load_run(cfg, runs_root=runs_dir, data_root=data_dir)
    return run["model"].eval().to(device), run["data"], cfg


def _row(section, case, ours, ref=None, *, n, reference="", note="", **extra) -> dict:
    row = {"section": section, "case": case, "ours_ips": n / ours["median_s"],
           "ours_seconds": ours["seconds"], "ours_peak_mb": ours["peak_mb"],
           "reference": reference, "note": note, **extra}
    if ref is not None:
        row.update(reference_ips=n / ref["median_s"], reference_seconds=ref["seconds"],
                   reference_peak_mb=ref["peak_mb"], ratio=ref["median_s"] / ours["median_s"])
    return row


def attack_cases(*, device, repeats, runs_dir, data_dir, **_) -> list[dict]:
    """Our fgsm, pgd (10 steps) and cw vs torchattacks' on one model object and one batch."""
    import torchattacks

    model, data, cfg = robust_model(device=device, runs_dir=runs_dir, data_dir=data_dir)
    model.to(memory_format=_formats(cfg)[0])
    x, y = eval_subset(data, n=ATTACK_BATCH, seed=1)
    x, y = x.to(device), y.to(device)
    eps, steps = cfg.eps, cfg.attack_steps
    alpha = 2.5 * eps / steps
    wrapped = LogitsOnly(model)
    gen = torch.Generator().manual_seed(0)
    cases = {
        "FGSM": (lambda: fgsm(model, x, y, eps=eps),
                 torchattacks.FGSM(wrapped, eps=eps), ""),
        "PGD-10 (last iterate, as training uses it)": (
            lambda: pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, generator=gen,
                        keep_best=False),
            torchattacks.PGD(wrapped, eps=eps, alpha=alpha, steps=steps, random_start=True), ""),
        "PGD-10 (per-example best, as evaluation uses it)": (
            lambda: pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, generator=gen),
            torchattacks.PGD(wrapped, eps=eps, alpha=alpha, steps=steps, random_start=True),
            "ours also tracks each example's best iterate (torchattacks returns the last)"),
        "C&W-L2 (c 0.1, 100 Adam steps, no early abort)": (
            lambda: cw(model, x, y, c=0.1, steps=100, lr=0.01, abort_early=False),
            torchattacks.CW(wrapped, c=0.1, kappa=0, steps=100, lr=0.01), ""),
    }
    rows = []
    for case, (ours, theirs, note) in cases.items():
        t = alternate({"ours": ours, "torchattacks": lambda a=theirs: a(x, y)},
                      repeats=repeats, device=device)
        rows.append(_row("attacks", case, t["ours"], t["torchattacks"], n=len(y),
                         reference="torchattacks 3.3.0, same model, batch and threads",
                         note=note))
    return rows


def training_cases(*, device, repeats, data_dir, **_) -> list[dict]:
    """Our train_epoch (the loop `train` runs each epoch), fp32 and bf16 autocast, vs the
    textbook loop, PGD-10 adversarial training; the three alternate."""
    rows = []
    for arch in ("resnet18", "resnet50"):
        cfg = dataclasses.replace(
            cell_config("quick", dataset="mnist", row="dfl_pcl", setting="adversarial training",
                        device=str(device)), model=arch)
        data = load_data(cfg, root=data_dir)
        n = TRAIN_BATCHES * cfg.batch_size
        x, y = data.x_train[:n], data.y_train[:n]
        fmt = _formats(cfg)[0]
        contenders = {f"ours ({p})": _our_epoch(cfg, data, x, y, fmt=fmt, device=device,
                                                precision=p) for p in ("fp32", "bf16")}
        contenders["plain"] = _plain_epoch(cfg, data, x, y)
        t = alternate(contenders, repeats=repeats, device=device)
        layout = "channels-last" if fmt == torch.channels_last else "contiguous"
        for name in ("ours (fp32)", "ours (bf16)"):
            rows.append(_row("train", f"PGD-10 AT, {arch} + DFL + PCL, {name}", t[name],
                             t["plain"], n=n,
                             reference="textbook loop (plain_loop.py): DataLoader, contiguous",
                             note=f"ours: train_epoch in {layout} memory, batch {cfg.batch_size}"))
    return rows


def _our_epoch(cfg, data, x, y, *, fmt, device, precision, compile_model=False):
    model, loss = build_components(cfg, data)
    model.to(memory_format=fmt)
    if compile_model:  # inductor, default mode: the model's forward (and backward) compiled
        model = torch.compile(model)
    opt = build_optimizer(cfg, model, loss)
    gen = torch.Generator().manual_seed(0)
    attack = training_attack(cfg, epoch=cfg.epochs - 1, generator=gen)
    dtype = torch.bfloat16 if precision == "bf16" else None
    setup = EpochSetup(optimizer=opt, batch_size=cfg.batch_size, generator=gen,
                       augment=cfg.augment, memory_format=fmt, device=device, autocast_dtype=dtype)
    adversary = Adversary(attack=attack, fraction=cfg.adv_fraction) if attack else None
    return lambda: train_epoch(model, loss, x, y, setup=setup, adversary=adversary)


def _plain_epoch(cfg, data, x, y):
    model, loss = build_components(cfg, data)  # the same initial weights (seeded)
    opt = torch.optim.SGD(list(model.parameters()) + list(loss.parameters()), lr=cfg.lr,
                          momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    loader = plain_loader(x, y, batch_size=cfg.batch_size, seed=0)
    gen = torch.Generator().manual_seed(0)
    return lambda: plain_adversarial_epoch(model, loss, loader, opt, eps=cfg.eps,
                                           alpha=2.5 * cfg.eps / cfg.attack_steps,
                                           steps=cfg.attack_steps,
                                           adv_fraction=cfg.adv_fraction, generator=gen)


def eval_cases(*, device, repeats, n_eval, runs_dir, data_dir, **_) -> list[dict]:
    """Each strong attack on the robust model, in the engine's memory format vs the other one
    (one timed call each for the torchattacks rows: minutes per call), with the per-example
    results of the two compared."""
    model, data, cfg = robust_model(device=device, runs_dir=runs_dir, data_dir=data_dir)
    x, y = eval_subset(data, n=n_eval, seed=cfg.seed)
    x, y = x.to(device), y.to(device)
    ours_fmt, other_fmt = _formats(cfg)
    name = {torch.channels_last: "channels-last", torch.contiguous_format: "contiguous"}
    rows = []
    for case, spec in EVAL_ROWS.items():
        spec = dict(spec)
        attack = spec.pop("attack")
        settings = {"aa_steps": cfg.aa_steps, "aa_queries": cfg.aa_queries}
        if attack in ("autoattack", "apgd_ce", "apgd_t", "fab"):
            spec["steps"] = cfg.aa_steps
        if attack in ("autoattack", "square"):
            spec["n_queries"] = cfg.aa_queries

        def run(fmt, attack=attack, spec=spec):
            model.to(memory_format=fmt)
            return robust_accuracy(model, x, y, attack=attack, eps=cfg.eps,
                                   batch_size=cfg.eval_batch_size, seed=cfg.seed, **spec)

        peer = attack in ("autoattack", "apgd_ce", "apgd_t", "fab", "square")
        t = alternate({"ours": lambda: run(ours_fmt), "other": lambda: run(other_fmt)},
                      repeats=1 if peer else repeats, warmup=0 if peer else 1, device=device,
                      memory=not peer)  # a peer attack's extra call would cost minutes
        a, b = t["ours"]["result"], t["other"]["result"]
        rows.append(_row("eval", case, t["ours"], t["other"], n=len(y),
                         reference=f"the same in {name[other_fmt]} memory",
                         note=(f"{name[ours_fmt]}; accuracy {a['accuracy']:.3f} vs "
                               f"{b['accuracy']:.3f}, per-example results agree on "
                               f"{int((a['correct'] == b['correct']).sum())}/{len(y)}"),
                         accuracy=a["accuracy"], settings=settings))
    model.to(memory_format=ours_fmt)
    return rows


def estimate_cases(**_) -> list[dict]:
    """On paper, from the FLOP count: one paper-profile epoch (ResNet-50 + DFL + PCL, PGD-10
    adversarial training, CIFAR-10, 50,000 images) on one H100, at its full dense bf16 peak and
    at the 25% the study's estimates assume; nothing is timed."""
    from dfl_lib.experiments.configs import make_config
    from dfl_lib.study.estimate import H100_BF16_PEAK, RATES, train_flops

    cfg = make_config("paper", dataset="cifar10", model="resnet50", dfl=True, loss="pcl",
                      train_attack="pgd", epochs=1)
    flops = train_flops(cfg, n_train=50_000)
    return [{"section": "estimate", "case": "paper epoch: R50+DFL+PCL, PGD-10 AT, CIFAR-10 50k",
             "flops": flops, "h100_seconds_at_peak": flops / H100_BF16_PEAK,
             "h100_seconds_at_assumed_rate": flops / RATES["cuda"],
             "assumed_fraction_of_peak": RATES["cuda"] / H100_BF16_PEAK,
             "ours_ips": 50_000 / (flops / RATES["cuda"]), "ours_peak_mb": None,
             "note": (f"{flops / 1e15:.1f} PFLOP per epoch: {flops / H100_BF16_PEAK:.0f} s at "
                      f"100% of an H100's dense bf16 peak, {flops / RATES['cuda']:.0f} s at "
                      f"{RATES['cuda'] / H100_BF16_PEAK:.0%} (img/s column: at that rate)")}]
