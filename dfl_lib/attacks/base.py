"""What every attack shares: logits, objectives, the L-inf step and projection, the iterate
loop with per-example best tracking, input checks, and `frozen` (how an evaluation holds a model).

Every attack takes a model in eval mode, images x (N, C, H, W) in [0, 1] and labels y (N,), and
returns detached adversarial images of the same shape in [0, 1]. Gradients are taken with respect
to the input only (torch.autograd.grad), so the model's parameters, buffers, `.grad` fields and
train/eval mode are left exactly as they were. eps is in pixel units: the paper's CIFAR-10 "0.03"
is ~8/255, its MNIST budget 0.3.

The L-inf attacks share one step (`_linf_step`) and one projection (`project_linf`): FGSM is BIM
with one step of size eps, MIM is BIM with momentum, PGD is BIM with a random start and restarts.
Their objective is a `loss_fn(model, x_adv, y) -> (N,)` per-example loss to MAXIMISE, so adaptive
objectives (a defence's own, the C&W margin) plug into the same code.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from ..validation import check_images, check_labels, check_nonnegative, require_eval

__all__ = ["LossFn", "logits_of", "LogitsOnly", "project_linf", "ce_loss", "margin_loss",
           "cw_margin", "frozen", "logit_margin", "check_attack_inputs", "random_start_linf",
           "iterate_linf", "attack_runner"]

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


def logit_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
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
        return logit_margin(logits_of(model, x), y).clamp(max=kappa)

    loss.__name__ = "cw_margin" if kappa == 0 else f"cw_margin[kappa={kappa:g}]"
    return loss


cw_margin: LossFn = margin_loss(0.0)  # the C&W margin at kappa = 0, ready to pass as loss_fn


# --------------------------------------------------------------------------- shared machinery

def project_linf(x_adv: torch.Tensor, x: torch.Tensor, *, eps: float) -> torch.Tensor:
    """Clamp x_adv into the L-inf ball of radius eps around x, then into [0, 1] (same order as
    torchattacks: delta = clamp(x_adv - x, -eps, eps); clamp(x + delta, 0, 1))."""
    return torch.clamp(x + torch.clamp(x_adv - x, -eps, eps), 0.0, 1.0)


def check_attack_inputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, **budgets) -> None:
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


def random_start_linf(x: torch.Tensor, *, eps: float, generator: torch.Generator | None):
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


def iterate_linf(model, x, y, *, eps, alpha, steps, loss_fn, start, decay=None, best=None,
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


@torch.no_grad()
def _outcome(model, x_adv, y, loss_fn) -> tuple[torch.Tensor, torch.Tensor]:
    """(misclassified (N,) bool, the attack's own loss (N,)) at x_adv."""
    return logits_of(model, x_adv).argmax(1) != y, loss_fn(model, x_adv, y)


# --------------------------------------------------------------------------- holding a model

@contextmanager
def frozen(model: nn.Module):
    """Require eval mode in every submodule (`validation.require_eval`); restore every
    submodule's mode afterwards (torchattacks calls .eval()) and leave the global RNG as it was
    (torchattacks' APGD/FAB/Square reseed it).

    The parameters stop requiring gradients meanwhile (restored after): attacks need input
    gradients only, and torchattacks' FAB calls .backward(), which would otherwise compute and
    accumulate every weight's gradient at each of its steps (FAB-T 1.28x faster on a quick
    ResNet-18, identical per-example results: benchmarks/README.md)."""
    require_eval(model, what="evaluating")
    modes = [(m, m.training) for m in model.modules()]
    needs_grad = [(p, p.requires_grad) for p in model.parameters()]
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    try:
        for p, _ in needs_grad:
            p.requires_grad_(False)
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        for m, mode in modes:
            m.train(mode)
        for p, flag in needs_grad:
            p.requires_grad_(flag)


# --------------------------------------------------------------------------- running an attack

def attack_runner(fn: Callable) -> Callable:
    """The runner the evaluation calls for one of our attack functions fn(model, x, y, *,
    <settings>) -> x_adv: run(model, x, y, *, generator, seed, **settings) passes the settings
    on as they are (eps, the threat model's budget, among them) and the evaluation's seeded
    generator where fn takes one. Raises UsageError, in one line, for a setting fn does not
    have or a required one missing (no eps: neither the setting nor a threat model given)."""
    params = inspect.signature(fn).parameters
    # the settings without a default (eps), read once here, not at every batch
    required = [p for p, v in params.items() if v.kind == v.KEYWORD_ONLY
                and v.default is v.empty and p != "generator"]

    def run(model, x, y, *, generator, seed, **kw):
        unknown = sorted(set(kw) - set(params))
        if unknown:  # a user's typo, answered in one line rather than a TypeError inside
            known = [p for p, v in params.items() if v.kind == v.KEYWORD_ONLY and p != "generator"]
            raise UsageError(f"attack {fn.__name__!r} has no setting {unknown[0]!r}; its settings: "
                             f"{', '.join(known)}")
        missing = [p for p in required if p not in kw]
        if missing:
            raise UsageError(f"attack {fn.__name__!r} needs {missing[0]}= (eps: its L-inf "
                             f"budget in pixel units, or evaluate(..., threat=ThreatModel))"
                             if missing[0] == "eps" else
                             f"attack {fn.__name__!r} needs {missing[0]}=")
        if "generator" in params:
            kw.setdefault("generator", generator)
        return fn(model, x, y, **kw)
    return run
