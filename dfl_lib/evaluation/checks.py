"""Gradient-masking checks, run beside every robustness number and reported as flags.

A defence that only hides its gradients (shattered, vanishing or saturated gradients) looks
robust to gradient attacks and is not (Athalye et al. 2018; Carlini et al. 2019, "On evaluating
adversarial robustness"; AutoAttack's flags). Mustafa et al.'s Prototype Conformity Loss (a
different loss from the paper's Polarised Contrastive Loss) fell from 32% reported to 0.3% under
AutoAttack. The checks, each {"check", "passed", "detail", "values"}:

1. logits       outputs are logits, not probabilities (rows in [0, 1] summing to 1);
2. deterministic two eval-mode forward passes agree and leave the buffers unchanged;
3. zero_grad    the CE loss has non-zero input gradients, at x and at a random point of the ball;
4. eps_sweep    PGD accuracy falls to ~0 as eps grows to 1 (at eps = 1 any image can be turned
                into any other, so a model that keeps accuracy there is hiding its gradient),
                and an example fooled at a small eps stays fooled at a larger one;
5. iterative    PGD fools (almost) every example FGSM fools;
6. more_steps   PGD with more steps and restarts fools (almost) every example PGD-10 fools;
7. black_box    Square (and a transfer attack, when given) fool (almost) no example that the
                white-box attacks (FGSM, PGD-10, strong PGD, and any white-box rows of
                `results` at this eps) all missed.

Tolerance. Attacks with random starts and random search are stochastic: for an example near the
decision boundary a weaker attack may win by luck. Comparisons are per example (which examples
the stronger attack misses that the weaker one fools, not just two accuracies), and a check flags
only if the count exceeds max(tol.examples, tol.share * n) -- 3 examples or 2% by default. On an
ordinary small CNN trained on MNIST (500 test images, eps 0.1 and 0.2) the counts were 0-2;
masked models exceed it many times over: with an input quantised by round(4x)/4, or a softmax
of 1e4-scaled logits, every gradient is exactly zero, ~40% of examples survive PGD at eps = 1,
and Square (300 queries) fools 16-423 of 500 examples that every white-box attack missed.
The same bound caps the share of examples with an all-zero gradient and the accuracy left at the
largest eps of the sweep.

Over-confident models. With logit margins of tens (long training, no weight decay) the softmax
saturates and CE-based PGD stalls; Square then beats it on a few percent of examples and check 7
flags. The flag is real -- the CE-PGD number overstates robustness -- and clears when a
margin-loss attack that fools those examples (cw_pgd, APGD-T, AutoAttack's components) is in the
`results` table: check 7 compares against every white-box attack run at this eps.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import REGISTRY, logits_of
from ..errors import UsageError
from ..validation import check_images, check_labels, check_nonnegative, require_eval
from .robust import robust_accuracy
from .threat import ThreatModel

__all__ = ["Tolerance", "CheckBudget", "masking_checks", "failed_checks", "CHECKS"]

# kinds of attack whose rows in an EvalTable join the white-box side of check 7, and the role
# each black-box kind plays in it
WHITE_BOX_KINDS = ("white-box", "adaptive")
BLACK_BOX_ROLES = {"score-based": "square", "transfer": "transfer"}
CHECKS = ("logits", "deterministic", "zero_grad", "eps_sweep", "iterative", "more_steps",
          "black_box")


@dataclass(frozen=True)
class Tolerance:
    """How many examples a comparison may go the "wrong" way before it flags:
    max(examples, share * n). Also bounds the all-zero-gradient share and the accuracy left at
    the largest eps; `zero_pixels` bounds the share of exactly-zero gradient entries (ReLU
    networks legitimately have some: dead units over MNIST's blank background)."""

    examples: int = 3
    share: float = 0.02
    zero_pixels: float = 0.9

    def allowed(self, n: int) -> float:
        return max(self.examples, self.share * n)


@dataclass(frozen=True)
class CheckBudget:
    """The attacks the checks run where `results` gives no mask: PGD-`pgd_steps`; the "more
    steps" PGD of check 6 (`strong_steps` x `strong_restarts`); Square with `square_queries`
    (check 7); the eps values of check 4's sweep (`sweep`; None: eps, 2 eps, 4 eps, 0.5, 1,
    those <= 1); and how many examples a comparison may differ by (`tolerance`)."""
    pgd_steps: int = 10
    strong_steps: int = 50
    strong_restarts: int = 3
    square_queries: int = 1000
    sweep: tuple[float, ...] | None = None
    tolerance: Tolerance = Tolerance()


def masking_checks(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, threat: ThreatModel,
                   results=None, surrogate: nn.Module | None = None,
                   budget: CheckBudget = CheckBudget(), batch_size: int = 250,
                   seed: int = 0) -> list[dict]:
    """Run the seven checks on (x, y) (float [0, 1], labels) in the L-inf `threat` model (the
    suite's, `suites.threat_model`: its eps is every attack's budget here); model in eval mode.

    results: masks to reuse instead of re-running attacks, either the `EvalTable` returned by
    `evaluate` (rows are matched by attack and threat model: "fgsm" without random start, the
    cheapest and the most expensive CE "pgd" rows, "square", "transfer") or a dict {role: bool
    mask (n,)} with roles "fgsm", "pgd", "pgd_strong", "square", "transfer", all at this eps.
    Missing ones are run, as `budget` (`CheckBudget`) says.
    surrogate: an independently trained model for the transfer part of check 7 (optional).
    UsageError for a threat model other than L-inf.
    """
    if threat.norm != "Linf":
        raise UsageError(f"the masking checks are for the L-inf threat model, got {threat}")
    eps, tolerance, sweep = threat.eps, budget.tolerance, budget.sweep
    pgd_steps, strong_steps = budget.pgd_steps, budget.strong_steps
    strong_restarts, square_queries = budget.strong_restarts, budget.square_queries
    require_eval(model, what="the masking checks")
    check_images(x, name="x")
    check_labels(y, n=x.shape[0], name="y")
    check_nonnegative(eps, name="eps")
    y = y.to(x.device).long()
    n, allowed = len(y), tolerance.allowed(len(y))
    # role -> bool mask (n,), True = survived; labels name the attack behind each mask
    masks, labels, extra_white = _reusable(results, eps=eps, n=n)

    def run(role: str, label: str, **kw) -> None:
        if role not in masks:
            masks[role] = robust_accuracy(model, x, y, batch_size=batch_size, seed=seed,
                                          eps=eps, **kw)["correct"]
            labels[role] = label

    run("pgd", f"pgd-{pgd_steps}", attack="pgd", steps=pgd_steps)
    run("fgsm", "fgsm", attack="fgsm")
    run("pgd_strong", f"pgd-{strong_steps}x{strong_restarts}", attack="pgd",
        steps=strong_steps, restarts=strong_restarts)
    run("square", f"square-{square_queries}", attack="square", n_queries=square_queries)
    if surrogate is not None:
        run("transfer", f"transfer-pgd-{pgd_steps}", attack="transfer", surrogate=surrogate,
            steps=pgd_steps)

    out = [_check_logits(model, x), _check_deterministic(model, x),
           _check_zero_grad(model, x, y, eps=eps, seed=seed, tol=tolerance)]
    if sweep is None:
        sweep = (eps, 2 * eps, 4 * eps, 0.5, 1.0)
    sweep = sorted({float(e) for e in sweep if 0 < e <= 1} | {1.0})
    sweep_masks = [masks["pgd"] if _same(e, eps) else
                   robust_accuracy(model, x, y, attack="pgd", eps=e, steps=pgd_steps,
                                   batch_size=batch_size, seed=seed)["correct"] for e in sweep]
    out.append(_check_sweep(sweep, sweep_masks, allowed=allowed, steps=pgd_steps))
    out.append(_dominates("iterative", strong=masks["pgd"], weak=masks["fgsm"], allowed=allowed,
                          what=f"{labels['pgd']} vs {labels['fgsm']} at eps {eps:g}"))
    out.append(_dominates("more_steps", strong=masks["pgd_strong"], weak=masks["pgd"],
                          allowed=allowed,
                          what=f"{labels['pgd_strong']} vs {labels['pgd']} at eps {eps:g}"))
    white = {labels[r]: masks[r] for r in ("fgsm", "pgd", "pgd_strong")} | extra_white
    black = {labels[r]: masks[r] for r in ("square", "transfer") if r in masks}
    out.append(_check_black_box(white, black, allowed=allowed, eps=eps))
    return out


def failed_checks(checks: list[dict]) -> list[str]:
    """Names of the checks that raised a flag."""
    return [c["check"] for c in checks if not c["passed"]]


# --------------------------------------------------------------------------- reuse

def _reusable(results, *, eps: float, n: int) -> tuple[dict, dict, dict]:
    """Masks (bool (n,), CPU) in `results` at the L-inf threat model of radius eps: ({role:
    mask}, {role: label}, {row name: mask} of the other white-box rows). Rows are chosen by
    their threat model and by what the registry says of their attack, never by name."""
    found, white = {}, {}
    if results is None:
        return found, {}, white
    if hasattr(results, "masks"):  # an EvalTable: pick rows by threat model and registry entry
        threat, iterative, names = ThreatModel("Linf", eps), [], {}
        for row in results:
            entry, s, name = REGISTRY.get(row["attack"]), row.get("settings", {}), row["name"]
            if entry is None or ThreatModel.of(row) != threat:  # worst-case rows: not attacks
                continue
            if entry.kind in BLACK_BOX_ROLES:
                role = BLACK_BOX_ROLES[entry.kind]
                found[role], names[role] = results.masks[name], name
            elif _on_ce(entry, s) and entry.cost(s, 1.0) == 1:  # single-step
                if s.get("random_start"):  # FGSM-RS is not the single-step reference
                    white[name] = results.masks[name]
                else:
                    found["fgsm"], names["fgsm"] = results.masks[name], name
            elif _on_ce(entry, s):
                iterative.append((entry.cost(s, 1.0), name))
            elif entry.kind in WHITE_BOX_KINDS:
                white[name] = results.masks[name]
        if iterative:
            iterative.sort()
            names["pgd"] = iterative[0][1]
            if iterative[-1][0] > iterative[0][0]:
                names["pgd_strong"] = iterative[-1][1]
            for _, name in iterative[1:-1]:
                white[name] = results.masks[name]
            for role in ("pgd", "pgd_strong"):
                if role in names:
                    found[role] = results.masks[names[role]]
        labels = {role: f"{name} (reused)" for role, name in names.items()}
    else:
        unknown = set(results) - {"fgsm", "pgd", "pgd_strong", "square", "transfer"}
        if unknown:
            raise UsageError(f"unknown roles {sorted(unknown)} in results; known: fgsm, pgd, "
                             "pgd_strong, square, transfer")
        found = dict(results)
        labels = {role: f"{role} (reused)" for role in found}
    return _as_masks(found, n), labels, _as_masks(white, n)


def _on_ce(entry, settings: dict) -> bool:
    """A white-box attack on cross-entropy as registered: its objective is "ce" and the loss it
    recorded is its own default, not one a caller passed."""
    default = entry.defaults.get("loss_fn")
    return (entry.kind == "white-box" and entry.objective == "ce"
            and settings.get("loss_fn") == getattr(default, "__name__", default))


def _as_masks(masks: dict, n: int) -> dict[str, torch.Tensor]:
    out = {}
    for key, m in masks.items():
        m = torch.as_tensor(m).bool().cpu()
        if m.shape != (n,):
            raise UsageError(f"results[{key!r}] has shape {tuple(m.shape)}, expected ({n},)")
        out[key] = m
    return out


def _same(a, b) -> bool:
    return isinstance(a, (int, float)) and abs(a - b) <= 1e-9 * max(1.0, abs(b))


def _result(check: str, passed: bool, detail: str, **values) -> dict:
    return {"check": check, "passed": bool(passed), "detail": detail, "values": values}


# --------------------------------------------------------------------------- the checks

@torch.no_grad()
def _check_logits(model, x) -> dict:
    out = logits_of(model, x[:256])  # (B, K)
    lo, hi = float(out.min()), float(out.max())
    sums = out.sum(1)
    probs = lo >= 0.0 and hi <= 1.0 and bool(torch.allclose(sums, torch.ones_like(sums),
                                                            atol=1e-3))
    detail = ("outputs look like probabilities (all in [0, 1], rows sum to 1): attacks need "
              "logits, softmax outputs saturate and hide the gradient" if probs else
              "outputs are not probabilities")
    return _result("logits", not probs, detail, min=lo, max=hi,
                   mean_row_sum=float(sums.mean()))


@torch.no_grad()
def _check_deterministic(model, x) -> dict:
    before = [b.detach().clone() for b in model.buffers()]
    a, b = logits_of(model, x[:256]), logits_of(model, x[:256])
    diff = float((a - b).abs().max()) if a.numel() else 0.0
    same = bool(torch.allclose(a, b, rtol=1e-5, atol=1e-6)) and bool(
        torch.equal(a.argmax(1), b.argmax(1)))
    buffers_changed = any(not torch.equal(u, v) for u, v in zip(before, model.buffers()))
    passed = same and not buffers_changed
    detail = ("two eval-mode passes agree" if same else
              "two eval-mode passes differ: a randomised defence needs EOT attacks")
    if buffers_changed:
        detail += "; a forward pass changed the model's buffers (train-mode BatchNorm?)"
    return _result("deterministic", passed, detail, max_abs_diff=diff,
                   buffers_changed=buffers_changed)


def _check_zero_grad(model, x, y, *, eps, seed, tol: Tolerance) -> dict:
    gen = torch.Generator().manual_seed(seed)
    noise = (torch.rand(x.shape, generator=gen, dtype=x.dtype) * 2 - 1).to(x.device)
    values, flagged = {}, []
    for where, point in (("clean", x), ("random", (x + eps * noise).clamp(0, 1))):
        zero_examples, zero_entries = 0, 0
        for idx in torch.arange(len(y)).split(256):
            xb = point[idx].detach().requires_grad_(True)
            with torch.enable_grad():
                loss = F.cross_entropy(logits_of(model, xb), y[idx], reduction="sum")
                (g,) = torch.autograd.grad(loss, xb)
            zero = (g == 0).flatten(1)  # (B, C*H*W)
            zero_examples += int(zero.all(1).sum())
            zero_entries += int(zero.sum())
        share_px = zero_entries / x.numel()
        values[where] = {"all_zero_examples": zero_examples, "zero_entry_share": share_px}
        if zero_examples > tol.allowed(len(y)):
            flagged.append(f"{zero_examples}/{len(y)} examples have an all-zero gradient "
                           f"({where})")
        if share_px > tol.zero_pixels:
            flagged.append(f"{share_px:.0%} of gradient entries are exactly 0 ({where})")
    detail = "; ".join(flagged) if flagged else "input gradients of the CE loss are non-zero"
    return _result("zero_grad", not flagged, detail, **values)


def _check_sweep(sweep, masks, *, allowed, steps) -> dict:
    n = len(masks[0])
    acc = [float(m.float().mean()) for m in masks]
    left = int(masks[-1].sum())  # still robust at the largest eps
    # fooled at a smaller eps but robust at the next larger one
    reversals = [int((~small & large).sum()) for small, large in zip(masks, masks[1:])]
    problems = []
    if left > allowed:
        problems.append(f"{left}/{n} examples still robust at eps {sweep[-1]:g} (allowed "
                        f"{allowed:g}): the attack is not reaching them")
    if reversals and max(reversals) > allowed:
        problems.append(f"up to {max(reversals)} examples fooled at a smaller eps survive a "
                        "larger one")
    detail = "; ".join(problems) if problems else (
        f"PGD-{steps} accuracy falls from {acc[0]:.1%} to {acc[-1]:.1%} at eps {sweep[-1]:g}")
    return _result("eps_sweep", not problems, detail, eps=list(sweep), accuracy=acc,
                   robust_at_max=left, reversals=reversals, allowed=allowed)


def _dominates(check, *, strong, weak, allowed, what) -> dict:
    """Flag if the stronger attack misses more than `allowed` examples the weaker one fools."""
    missed = int((~weak & strong).sum())
    acc_s, acc_w = float(strong.float().mean()), float(weak.float().mean())
    passed = missed <= allowed
    detail = (f"{what}: the stronger attack misses {missed} examples the weaker one fools "
              f"(allowed {allowed:g}); accuracy {acc_s:.1%} vs {acc_w:.1%}")
    return _result(check, passed, detail, missed=missed, allowed=allowed,
                   accuracy_strong=acc_s, accuracy_weak=acc_w)


def _check_black_box(white: dict, black: dict, *, allowed, eps) -> dict:
    """Flag if a black-box attack fools more than `allowed` examples that every white-box one
    (the masks in `white`) missed."""
    survived = torch.stack(list(white.values())).all(0)  # (n,) robust to every white-box attack
    values, problems = {"white_box": list(white), "allowed": allowed,
                        "accuracy_white_box": float(survived.float().mean())}, []
    for name, m in black.items():
        beaten = int((~m & survived).sum())  # fooled by the black-box attack, by no white-box
        values[name] = {"accuracy": float(m.float().mean()), "beats_white_box_on": beaten}
        if beaten > allowed:
            problems.append(f"{name} fools {beaten} examples every white-box attack missed")
    if problems:
        detail = ("; ".join(problems) + f" (allowed {allowed:g}; white-box: "
                  f"{', '.join(white)}): the gradient attacks are failing -- masked gradients, "
                  "or a saturated CE loss if a margin-loss attack (cw_pgd, APGD-T) closes the gap")
    else:
        detail = (f"{', '.join(black)} fool nothing that every white-box attack "
                  f"({', '.join(white)}) missed, beyond the tolerance (eps {eps:g})")
    return _result("black_box", not problems, detail, **values)
