"""Evasion attacks, one function each; images and budgets in [0, 1] pixel units.

Every attack takes a model in eval mode, images x (N, C, H, W) in [0, 1] and labels y (N,), and
returns detached adversarial images of the same shape in [0, 1]. Gradients are taken with respect
to the input only (torch.autograd.grad), so the model's parameters, buffers, `.grad` fields and
train/eval mode are left exactly as they were. eps is in pixel units: the paper's CIFAR-10 "0.03"
is ~8/255, its MNIST budget 0.3.

The L-inf attacks share one step (`_linf_step`) and one projection (`project_linf`): FGSM is BIM
with one step of size eps, MIM is BIM with momentum, PGD is BIM with a random start and restarts.
Their objective is a `loss_fn(model, x_adv, y) -> (N,)` per-example loss to MAXIMISE, so adaptive
objectives (a feature-space loss, the C&W margin) plug into the same code.

    x_adv = pgd(model.eval(), x, y, eps=0.3, steps=10)
    x_adv = run_attack("cw", model, x, y, binary_search_steps=5)
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_images, check_known, check_labels, check_nonnegative, require_eval
from .errors import UsageError

__all__ = ["logits_of", "LogitsOnly", "project_linf", "ce_loss", "margin_loss", "cw_margin",
           "fgsm", "bim", "mim", "pgd", "cw", "cw_pgd", "ATTACKS", "run_attack"]

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- logits and objectives

def logits_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits (N, K) from a model that returns either logits or (logits, features)."""
    out = model(x)
    return out[0] if isinstance(out, tuple) else out


class LogitsOnly(nn.Module):
    """Wraps a model so that it returns logits only (for peer libraries such as torchattacks).

    The wrapper starts in the wrapped model's mode: a fresh nn.Module is in train mode, and
    torchattacks 3.3.0 "restores" a wrapper found in train mode with `.train()` after attacking,
    which would switch the whole wrapped model (BatchNorm included) to train mode.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.training = model.training  # the flag only: .train() would recurse into the model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits_of(self.model, x)


def ce_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy (N,) on the model's logits (the default L-inf objective)."""
    return F.cross_entropy(logits_of(model, x), y, reduction="none")


def _margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max_{j != y} Z_j - Z_y (N,): > 0 exactly where the example is misclassified."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
    return other - true


def margin_loss(kappa: float = 0.0) -> LossFn:
    """The C&W margin loss (Carlini & Wagner 2017) as a loss_fn: min(max_{j!=y} Z_j - Z_y, kappa),
    per example (N,). Above kappa it is flat: an example misclassified with confidence kappa
    stops moving (kappa = 0: as soon as it is misclassified)."""
    check_nonnegative(kappa, name="kappa")

    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _margin(logits_of(model, x), y).clamp(max=kappa)

    loss.__name__ = "cw_margin" if kappa == 0 else f"cw_margin[kappa={kappa:g}]"
    return loss


cw_margin: LossFn = margin_loss(0.0)  # the C&W margin at kappa = 0, ready to pass as loss_fn


# --------------------------------------------------------------------------- shared machinery

def project_linf(x_adv: torch.Tensor, x: torch.Tensor, *, eps: float) -> torch.Tensor:
    """Clamp x_adv into the L-inf ball of radius eps around x, then into [0, 1] (same order as
    torchattacks: delta = clamp(x_adv - x, -eps, eps); clamp(x + delta, 0, 1))."""
    return torch.clamp(x + torch.clamp(x_adv - x, -eps, eps), 0.0, 1.0)


def _check(model: nn.Module, x: torch.Tensor, y: torch.Tensor, **budgets) -> None:
    require_eval(model, what="attacking")
    check_images(x, name="x")
    check_labels(y, n=x.shape[0], name="y")
    for name, value in budgets.items():
        if value is not None:
            check_nonnegative(value, name=name)


def _input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn):
    """(per-example loss (N,), its input gradient (N, C, H, W)); nothing else gets a gradient."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(model, x, y)
        if loss.shape != (x.shape[0],):
            raise UsageError(f"loss_fn must return a per-example loss of shape ({x.shape[0]},), "
                             f"got {tuple(loss.shape)}")
        (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad.detach()


def _linf_step(x_adv, x, grad, *, alpha, eps):
    """The L-inf step: ascend the gradient's sign, project to the eps-ball, clamp to [0, 1]."""
    return project_linf(x_adv + alpha * grad.sign(), x, eps=eps)


def _random_start(x: torch.Tensor, *, eps: float, generator: torch.Generator | None):
    """A uniform point of the eps-ball around x, clamped to [0, 1]; noise drawn on the
    generator's device so a CPU generator gives the same start on every device."""
    device = generator.device if generator is not None else x.device
    noise = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)
    return project_linf(x + eps * (2 * noise - 1), x, eps=eps)


class _Best:
    """The per-example worst case among candidate x_adv (N, C, H, W): a misclassified candidate
    beats a correctly classified one; otherwise the higher attack loss wins."""

    def __init__(self):
        self.x = self.wrong = self.loss = None

    def update(self, x_adv: torch.Tensor, wrong: torch.Tensor, loss: torch.Tensor) -> None:
        if self.x is None:
            self.x, self.wrong, self.loss = x_adv.detach(), wrong, loss
            return
        better = (wrong & ~self.wrong) | ((wrong == self.wrong) & (loss > self.loss))  # (N,)
        self.x = torch.where(better[:, None, None, None], x_adv.detach(), self.x)
        self.wrong = self.wrong | wrong
        self.loss = torch.where(better, loss, self.loss)


@contextmanager
def _logits_seen(model: nn.Module):
    """Records the logits of the model's last forward call (for the loss the attack computes
    anyway), so tracking the best iterate costs no extra forward pass."""
    seen: dict[str, torch.Tensor] = {}

    def hook(module, inputs, output):
        seen["logits"] = (output[0] if isinstance(output, tuple) else output).detach()

    handle = model.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _iterate(model, x, y, *, eps, alpha, steps, loss_fn, start, decay=None, best=None,
             moving=None):
    """`steps` L-inf steps from `start`; with `decay` set, MIM's momentum on the normalised
    gradient. x, start: (N, C, H, W). Returns the detached last iterate, or, given a `_Best`,
    updates it with every iterate (start and last included) and returns its per-example best
    so far; one `_Best` shared by several calls (PGD's restarts) keeps the best of all of them.

    `moving(x_adv, grad) -> bool (N,)`, if given, stops examples one by one: from the second
    step on, an example steps only while it has been moving at every check so far (its check
    uses the gradient at its current point, the one the step then uses). The first step is
    always taken; the loop ends early once no example moves. (Wang et al.'s FOSC stopping.)
    """
    x_adv, momentum = start.detach(), torch.zeros_like(x)
    active = None  # (N,) bool once `moving` has been asked
    for t in range(steps):
        # the logits are recorded only when the best iterate is tracked (evaluation)
        with _logits_seen(model) if best is not None else nullcontext({}) as seen:
            loss, grad = _input_grad(model, x_adv, y, loss_fn)
        if moving is not None and t > 0:
            now = moving(x_adv, grad)
            active = now if active is None else active & now
            if not active.any():
                break
            grad = grad * active.view(-1, 1, 1, 1).to(grad.dtype)  # sign(0) = 0: no step
        if best is not None:
            logits = seen.get("logits")
            if logits is None:  # a loss_fn that never called the model itself
                logits = _outcome_logits(model, x_adv)
            best.update(x_adv, logits.argmax(1) != y, loss)
        if decay is not None:
            # divide by the per-example mean |grad| (Dong et al.'s L1 normalisation) so every
            # example's history weighs the same whatever the scale of its gradient
            grad = grad / grad.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
            momentum = decay * momentum + grad
            grad = momentum
        x_adv = _linf_step(x_adv, x, grad, alpha=alpha, eps=eps)
    if best is None:
        return x_adv.detach()
    best.update(x_adv, *_outcome(model, x_adv, y, loss_fn))
    return best.x


@torch.no_grad()
def _outcome_logits(model, x_adv) -> torch.Tensor:
    return logits_of(model, x_adv)


# --------------------------------------------------------------------------- L-inf attacks

def fgsm(model, x, y, *, eps: float, random_start: bool = False, alpha: float | None = None,
         loss_fn: LossFn = ce_loss, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fast Gradient Sign Method (Goodfellow et al. 2015): x + eps * sign(grad), clamped to [0, 1].

    Exactly `bim(..., steps=1, alpha=eps)`. With random_start (Wong et al. 2020, "fast"
    adversarial training) it starts uniformly in the eps-ball (drawn with `generator`), steps
    alpha (default 1.25 * eps) and projects back to the ball. x (N, C, H, W), y (N,) -> (N, C, H, W).
    """
    _check(model, x, y, eps=eps, alpha=alpha)
    if random_start:
        start = _random_start(x.detach(), eps=eps, generator=generator)
        alpha = 1.25 * eps if alpha is None else alpha
    else:
        start, alpha = x, eps if alpha is None else alpha
    return _iterate(model, x.detach(), y, eps=eps, alpha=alpha, steps=1, loss_fn=loss_fn,
                    start=start)


def bim(model, x, y, *, eps: float, alpha: float | None = None, steps: int = 10,
        loss_fn: LossFn = ce_loss) -> torch.Tensor:
    """Basic Iterative Method (Kurakin et al. 2017): `steps` signed-gradient steps of alpha from
    x itself (no random start), each projected to the eps-ball and [0, 1].

    alpha defaults to eps / steps: the ball's boundary is just reachable, and steps = 1 is FGSM.
    x (N, C, H, W), y (N,) -> (N, C, H, W).
    """
    _check(model, x, y, eps=eps, alpha=alpha, steps=steps)
    alpha = eps / max(steps, 1) if alpha is None else alpha
    return _iterate(model, x.detach(), y, eps=eps, alpha=alpha, steps=steps, loss_fn=loss_fn,
                    start=x)


def mim(model, x, y, *, eps: float, alpha: float | None = None, steps: int = 10,
        decay: float = 1.0, loss_fn: LossFn = ce_loss) -> torch.Tensor:
    """Momentum Iterative Method (Dong et al. 2018): BIM on the accumulated gradient
    g_t = decay * g_{t-1} + grad_t / mean|grad_t| (mean over each example's pixels).

    alpha defaults to eps / steps (as in the paper); decay 1.0 is its mu.
    x (N, C, H, W), y (N,) -> (N, C, H, W).
    """
    _check(model, x, y, eps=eps, alpha=alpha, steps=steps, decay=decay)
    alpha = eps / max(steps, 1) if alpha is None else alpha
    return _iterate(model, x.detach(), y, eps=eps, alpha=alpha, steps=steps, loss_fn=loss_fn,
                    start=x, decay=decay)


def pgd(model, x, y, *, eps: float, alpha: float | None = None, steps: int = 10,
        random_start: bool = True, restarts: int = 1, loss_fn: LossFn = ce_loss,
        generator: torch.Generator | None = None, keep_best: bool = True) -> torch.Tensor:
    """L-inf Projected Gradient Descent (Madry et al. 2018).

    Each step: x + alpha * sign(grad), clamp the perturbation to eps, clamp to [0, 1]; with
    random_start=False, keep_best=False and CE this is torchattacks.PGD(random_start=False).
    alpha defaults to 2.5 * eps / steps (Madry et al.'s ratio). Random starts are uniform in the
    eps-ball, drawn with `generator`. Each example keeps its own worst case over every iterate
    of every restart (keep_best, the evaluation default): a misclassified iterate beats a
    correctly classified one, otherwise the higher loss wins. keep_best=False returns the last
    iterate (of the best restart), as adversarial training uses it.
    x (N, C, H, W), y (N,) -> (N, C, H, W).
    """
    _check(model, x, y, eps=eps, alpha=alpha, steps=steps, restarts=restarts)
    if restarts < 1:
        raise UsageError(f"restarts must be >= 1, got {restarts}")
    alpha = 2.5 * eps / max(steps, 1) if alpha is None else alpha
    x = x.detach()
    best = _Best()  # over every iterate of every restart (keep_best), or their last iterates
    for _ in range(restarts):
        start = _random_start(x, eps=eps, generator=generator) if random_start else x
        x_adv = _iterate(model, x, y, eps=eps, alpha=alpha, steps=steps, loss_fn=loss_fn,
                         start=start, best=best if keep_best else None)
        if restarts == 1 or keep_best:
            continue
        best.update(x_adv, *_outcome(model, x_adv, y, loss_fn))
    return x_adv if restarts == 1 and not keep_best else best.x


@torch.no_grad()
def _outcome(model, x_adv, y, loss_fn) -> tuple[torch.Tensor, torch.Tensor]:
    """(misclassified (N,) bool, the attack's own loss (N,)) at x_adv."""
    return logits_of(model, x_adv).argmax(1) != y, loss_fn(model, x_adv, y)


def cw_pgd(model, x, y, *, eps: float, alpha: float | None = None, steps: int = 10,
           kappa: float = 0.0, random_start: bool = True, restarts: int = 1,
           generator: torch.Generator | None = None, keep_best: bool = True) -> torch.Tensor:
    """L-inf PGD on the C&W margin loss (Madry et al.'s "CW-inf"; Carlini & Wagner 2017):
    `pgd(..., loss_fn=margin_loss(kappa))`, the field's fixed-budget use of the C&W objective.

    kappa caps the margin pursued: at 0 an example stops moving once misclassified. A larger
    kappa (e.g. 50) keeps pushing examples away from the boundary.
    x (N, C, H, W), y (N,) -> (N, C, H, W).
    """
    return pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=random_start,
               restarts=restarts, loss_fn=margin_loss(kappa), generator=generator,
               keep_best=keep_best)


# --------------------------------------------------------------------------- C&W L2

def cw(model, x, y, *, c: float = 0.1, kappa: float = 0.0, steps: int = 100, lr: float = 0.01,
       binary_search_steps: int = 0, c_max: float = 1e4, abort_early: bool = True) -> torch.Tensor:
    """Carlini-Wagner L2 (Carlini & Wagner 2017): minimise over x' = (tanh(w) + 1) / 2

        ||x' - x||_2^2 + c * max(Z_y - max_{j != y} Z_j, -kappa)

    with Adam (`steps` steps of learning rate `lr` on w). Defaults: the paper's c = 0.1 and
    kappa = 0; 100 steps at lr 0.01 (Carlini & Wagner's learning rate).

    C&W-L2 is a MINIMUM-NORM attack: it has no eps, and with a fixed small c it trades success
    for a small perturbation and gives up on examples that need more, so accuracy under C&W at
    fixed c = 0.1 is weak evidence of robustness. `binary_search_steps` > 0 searches c per
    example over that many optimisations: c starts at `c`, is multiplied by 10 until the attack
    succeeds (at most c_max), then bisected between the largest failing and smallest succeeding
    c (0 or 1: a single optimisation at `c`). Success means margin max_{j!=y} Z_j - Z_y > 0
    (>= kappa when kappa > 0). abort_early (Carlini & Wagner's code): an optimisation stops
    when its objective has not fallen by 0.01% over the last steps // 10 steps.

    The tanh box: pixels at exactly 0 or 1 (most of MNIST) start where tanh is flat; Adam's
    normalised steps still move them (~lr per step), which is why the literal paper setting
    (c = 0.1, 10 steps, no search) changes almost nothing, and why the study's C&W-L2 row
    searches c over many steps.

    Returns (N, C, H, W): per example the smallest-L2 successful x' found, or the CLEAN x where
    none was found. Report its L2 norms beside the accuracy.
    """
    _check(model, x, y, c=c, kappa=kappa, steps=steps, lr=lr,
           binary_search_steps=binary_search_steps, c_max=c_max)
    x = x.detach()
    n, dev = x.shape[0], x.device
    c_now = torch.full((n,), float(c), device=dev, dtype=x.dtype)
    lo = torch.zeros(n, device=dev, dtype=x.dtype)  # largest c that failed
    hi = torch.full((n,), float("inf"), device=dev, dtype=x.dtype)  # smallest c that succeeded
    best, best_l2 = x.clone(), torch.full((n,), float("inf"), device=dev, dtype=x.dtype)
    for _ in range(max(binary_search_steps, 1)):
        found, l2, x_adv = _cw_once(model, x, y, c=c_now, kappa=kappa, steps=steps, lr=lr,
                                    abort_early=abort_early)
        improve = found & (l2 < best_l2)
        best = torch.where(improve[:, None, None, None], x_adv, best)
        best_l2 = torch.where(improve, l2, best_l2)
        hi = torch.where(found, torch.minimum(hi, c_now), hi)
        lo = torch.where(found, lo, torch.maximum(lo, c_now))
        c_now = torch.where(torch.isinf(hi), (c_now * 10).clamp(max=c_max), (lo + hi) / 2)
    return best


def _cw_once(model, x, y, *, c, kappa, steps, lr, abort_early=False):
    """One C&W optimisation at per-example constants c (N,): (found (N,), best L2 (N,), best x')."""
    # tanh-space variable: x' = (tanh(w) + 1) / 2 always lies in [0, 1]; atanh needs |.| < 1
    w = torch.atanh((x * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6)).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)  # optimises w only: the model's parameters are untouched
    found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    best_l2 = torch.full((len(x),), float("inf"), device=x.device, dtype=x.dtype)
    best = x.clone()
    check_every, previous = max(steps // 10, 1), float("inf")
    for step in range(steps + 1):  # the last pass only scores the final iterate
        with torch.enable_grad():
            x_adv = (torch.tanh(w) + 1) / 2
            logits = logits_of(model, x_adv)
            l2sq = (x_adv - x).flatten(1).pow(2).sum(1)  # (N,)
            margin = _margin(logits, y)  # (N,) > 0 where misclassified
            objective = (l2sq + c * (-margin).clamp(min=-kappa)).sum()
        with torch.no_grad():
            wrong = margin > 0 if kappa == 0 else margin >= kappa
            l2 = l2sq.sqrt()
            improve = wrong & (l2 < best_l2)
            best = torch.where(improve[:, None, None, None], x_adv, best)
            best_l2 = torch.where(improve, l2, best_l2)
            found |= wrong
        if step == steps:
            break
        if abort_early and step % check_every == 0 and step > 0:
            if float(objective.detach()) > previous * 0.9999:
                break  # no progress: the optimisation has converged or stalled
            previous = float(objective.detach())
        (w.grad,) = torch.autograd.grad(objective, w)
        opt.step()
    return found, best_l2, best.detach()


# --------------------------------------------------------------------------- registry

ATTACKS: dict[str, Callable[..., torch.Tensor]] = {
    "fgsm": fgsm,
    "bim": bim,
    "mim": mim,
    "pgd": pgd,
    "cw": cw,
    "cw_pgd": cw_pgd,
}


def run_attack(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, **kwargs) -> torch.Tensor:
    """ATTACKS[name](model, x, y, **kwargs), with a clear error for an unknown name."""
    check_known(name, ATTACKS, kind="attack")
    return ATTACKS[name](model, x, y, **kwargs)
