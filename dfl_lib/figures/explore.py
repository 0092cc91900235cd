"""The epsilon explorer: plain drawing functions of (eps, attack), and one wrapper that makes them
live widgets in JupyterLab or, under papermill, static figures for a few fixed epsilons.

    draw = adversarial_drawer(model, x, y, class_names=None)   # draw(eps, attack) -> (fig, text)
    explorer(draw, eps_max=0.3, attacks=("pgd", "fgsm"), interactive=True)   # a widget
    explorer(draw, eps_values=(0, 0.1, 0.3), attacks=("pgd",), interactive=False)  # figures

The model is never switched between train and eval mode here: every entry point refuses a model
with any submodule in train mode (`validation.require_eval`), so exploring leaves its weights,
BatchNorm buffers and modes as they were. In the live explorer every widget callback reports its
own failure inside the explorer (the Output widget and the status label), because JupyterLab
sends an exception raised in an observe/on_click callback to a log console nobody reads.
"""
from __future__ import annotations

import base64
import functools
import io
import traceback
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import torch

from ..attacks import run_attack
from ..errors import UsageError
from ..validation import check_known, check_nonnegative, require_eval

__all__ = ["EXPLORER_ATTACKS", "attack_batch", "plot_adversarial_examples", "adversarial_drawer",
           "explorer"]

# attacks the explorer offers: name -> the settings it takes besides eps
EXPLORER_ATTACKS = {"fgsm": {}, "pgd": {"steps": 10}, "cw_pgd": {"steps": 10}}


def attack_batch(model, x: torch.Tensor, y: torch.Tensor, *, attack: str, eps: float,
                 seed: int = 0) -> dict:
    """x (N, C, H, W) in [0, 1] attacked at eps: {"x", "x_adv", "pred", "confidence"} with the
    model's prediction and softmax confidence (N,) on the attacked images (eps 0: clean).
    Refuses a model with any submodule in train mode (its forward would rewrite BatchNorm's
    running buffers), also at eps 0 where no attack runs to check it."""
    require_eval(model, what="exploring")
    check_known(attack, EXPLORER_ATTACKS, kind="explorer attack")
    check_nonnegative(eps, name="eps")
    if eps == 0:
        x_adv = x.clone()
    else:
        kw = dict(EXPLORER_ATTACKS[attack])
        if attack != "fgsm":
            kw["generator"] = torch.Generator(device=x.device).manual_seed(seed)
        x_adv = run_attack(attack, model, x, y, eps=eps, **kw)
    with torch.no_grad():
        prob = torch.softmax(model(x_adv), dim=1)  # (N, K)
    confidence, pred = prob.max(dim=1)
    return {"x": x, "x_adv": x_adv, "y": y, "pred": pred, "confidence": confidence}


def plot_adversarial_examples(batch: dict, *, eps: float, attack: str, class_names=None,
                              label: str = ""):
    """Three rows over the batch: clean images, the perturbation (white = 0, blue to red = -eps
    to +eps, with its colour scale), attacked images titled with prediction and confidence (red
    when wrong). label: the network shown (model, training, seed), put in the title."""
    x, x_adv = batch["x"].cpu(), batch["x_adv"].cpu()
    n = len(x)
    names = class_names or [str(k) for k in range(int(batch["pred"].max()) + 10)]
    fig, axes = plt.subplots(3, n, figsize=(1.45 * n, 4.9), squeeze=False)
    scale = max(eps, 1e-8)
    for i in range(n):
        img = x[i].permute(1, 2, 0).squeeze(-1).numpy()          # (H, W) or (H, W, 3)
        adv = x_adv[i].permute(1, 2, 0).squeeze(-1).numpy()
        delta = ((x_adv[i] - x[i]).mean(0) / scale).numpy()      # (H, W) in [-1, 1]
        axes[0][i].imshow(img, cmap="gray", vmin=0, vmax=1)
        axes[0][i].set_title(f"true {names[int(batch['y'][i])]}", fontsize=8)
        shown = axes[1][i].imshow(delta * scale, cmap="seismic", vmin=-scale, vmax=scale)
        axes[2][i].imshow(adv, cmap="gray", vmin=0, vmax=1)
        wrong = int(batch["pred"][i]) != int(batch["y"][i])
        axes[2][i].set_title(f"{names[int(batch['pred'][i])]} "
                             f"({100 * float(batch['confidence'][i]):.0f}%)", fontsize=8,
                             color="red" if wrong else "black")
        for row in axes:
            row[i].set_xticks([])
            row[i].set_yticks([])
    axes[0][0].set_ylabel("clean", fontsize=9)
    axes[1][0].set_ylabel("perturbation\n(±eps)", fontsize=9)
    axes[2][0].set_ylabel("attacked:\npred (conf.)", fontsize=9)
    acc = float((batch["pred"].cpu() == batch["y"].cpu()).float().mean()) * 100
    fig.suptitle((f"{label}\n" if label else "") + f"{attack} at eps = {eps:.3f} (pixel "
                 f"units): {acc:.0f}% of these {n} test images still correct", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    if n:  # the perturbation row's scale, in pixel units, right of that row, in its own axes
        box = axes[1][n - 1].get_position()
        cax = fig.add_axes((0.915, box.y0, 0.012, box.height))
        fig.colorbar(shown, cax=cax, label="perturbation\n(pixel units)")
        cax.tick_params(labelsize=7)
    return fig


def adversarial_drawer(model, x: torch.Tensor, y: torch.Tensor, *, class_names=None,
                       seed: int = 0, label: str = "") -> Callable[[float, str], tuple]:
    """draw(eps, attack) -> (figure, one-line text of predictions) over the batch x, y; label
    names the network in every figure's title (e.g. "ResNet-18 + DFL + PCL, PGD training,
    seed 0").

    A model with any submodule in train mode is refused here, when the drawer is built, rather
    than at the first slider move; `draw.model` lets `explorer` check it again when it is built.
    """
    require_eval(model, what="exploring")

    def draw(eps: float, attack: str):
        batch = attack_batch(model, x, y, attack=attack, eps=eps, seed=seed)
        fig = plot_adversarial_examples(batch, eps=eps, attack=attack, class_names=class_names,
                                        label=label)
        text = (f"eps {eps:.3f}, {attack}: predictions "
                f"{' '.join(str(int(p)) for p in batch['pred'])}, confidence "
                f"{' '.join(f'{100 * float(c):.0f}%' for c in batch['confidence'])}")
        return fig, text
    draw.model = model
    draw.attacks = tuple(EXPLORER_ATTACKS)  # what it can run: `explorer` offers no other
    return draw


def explorer(draw: Callable[[float, str], tuple], *, attacks: Sequence[str],
             interactive: bool, eps_max: float = 0.3, eps_step: float = 0.01,
             eps_values: Sequence[float] = (0.0, 0.1, 0.2, 0.3), show=None):
    """Live: an epsilon slider and an attack selector redrawing `draw` (JupyterLab; returns
    the widget box). Static (papermill): `draw` for each of eps_values with the first attack,
    shown with `show(fig, text)`; returns the figures.

    The live box names its parts: `.epsilon` (slider), `.attack` (selector), `.status` (label:
    "ok", or "failed: <type>: <message>"), `.text` (the draw's line of text), `.output` (the
    Output widget: the figure, or the traceback of a failed callback). A failing callback leaves
    the explorer working: the next good value redraws and the status says "ok" again.

    A `draw` made by `adversarial_drawer` carries its model; one with a submodule switched to
    train mode since is refused here with UsageError (never switched back to eval). Attack
    names the draw cannot run (`draw.attacks`, where it says) and an empty `attacks` are refused
    here, when the explorer is built, not when one is chosen.
    """
    model = getattr(draw, "model", None)
    if model is not None:
        require_eval(model, what="exploring")
    if isinstance(attacks, str) or not len(attacks):
        raise UsageError(f"attacks must be a non-empty sequence of attack names, got "
                         f"{attacks!r}")
    known = getattr(draw, "attacks", None)  # a draw of one's own may not say
    for name in attacks if known is not None else ():
        check_known(name, known, kind="explorer attack (this drawer's)")
    if not interactive:
        return _static_figures(draw, attack=attacks[0], eps_values=eps_values, show=show)
    return _live_explorer(draw, attacks=attacks, eps_max=eps_max, eps_step=eps_step,
                          eps_start=eps_values[1] if len(eps_values) > 1 else 0.0)


def _static_figures(draw, *, attack: str, eps_values: Sequence[float], show) -> list:
    """draw at each of eps_values, each figure shown once with show(fig, text) and closed.
    Errors propagate: under papermill a failed draw must fail the notebook run."""
    figures = []
    for eps in eps_values:
        fig, text = _draw_or_close(draw, float(eps), attack)
        if show is not None:
            show(fig, text)
        plt.close(fig)  # shown once: the inline backend would draw open figures again
        figures.append(fig)
    return figures


def _live_explorer(draw, *, attacks: Sequence[str], eps_max: float, eps_step: float,
                   eps_start: float):
    """The widget box of `explorer`; every callback is wired through `_shows_errors`."""
    import ipywidgets as widgets

    slider = widgets.FloatSlider(value=eps_start, min=0.0, max=eps_max, step=eps_step,
                                 description="epsilon", readout_format=".2f",
                                 continuous_update=False)
    choice = widgets.Dropdown(options=list(attacks), value=attacks[0], description="attack")
    status = widgets.Label()
    text = widgets.Label()
    out = widgets.Output()

    def redraw(_=None):
        """Draw at the widgets' values; the figure replaces the Output's content."""
        eps, attack = float(slider.value), choice.value
        text.value = ""  # a failure below must not leave the previous epsilon's line standing
        fig, line = _draw_or_close(draw, eps, attack)
        try:
            figure = _figure_output(fig)
        finally:
            plt.close(fig)  # its PNG is in the Output; an open figure would be drawn again
        out.outputs = (figure,)
        text.value = line
        status.value = "ok"

    redraw = _shows_errors(redraw, out=out, status=status)
    slider.observe(redraw, names="value")
    choice.observe(redraw, names="value")
    redraw()  # through the guard too: a failing first draw still gives a usable explorer
    box = widgets.VBox([widgets.HBox([slider, choice, status]), text, out])
    box.epsilon, box.attack, box.status, box.text, box.output = slider, choice, status, text, out
    return box


def _shows_errors(callback: Callable, *, out, status) -> Callable:
    """`callback` (an observe or on_click handler) reporting its own failure in the explorer:
    the traceback replaces the Output's content and the status label says "failed: <type>:
    <first line of the message>". Nothing is re-raised: ipywidgets would send it to JupyterLab's
    log console, where nobody sees it, while the old figure and an "ok" stayed on screen."""
    @functools.wraps(callback)
    def guarded(*args):
        try:
            callback(*args)
        except Exception as exc:  # noqa: BLE001 -- shown to the user below, not swallowed
            out.outputs = (_error_output(exc),)
            status.value = f"failed: {_one_line(exc)}"
    return guarded


def _draw_or_close(draw, eps: float, attack: str) -> tuple:
    """draw(eps, attack); if it raises, the figures it had opened are closed first (pyplot would
    keep them, and the inline backend would show the half-drawn figure under a later cell)."""
    before = set(plt.get_fignums())
    try:
        return draw(eps, attack)
    except Exception:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
        raise


def _figure_output(fig) -> dict:
    """`fig` as a notebook display_data output (PNG, cropped as the inline backend does). Set as
    the Output's `outputs` rather than displayed inside `with out:`, so it replaces the old
    content in one step whether or not a kernel is capturing (tests drive it without one)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                     "text/plain": repr(fig)}}


def _error_output(exc: BaseException) -> dict:
    """The traceback of `exc` as a notebook stderr stream output (what a failing cell shows)."""
    return {"output_type": "stream", "name": "stderr",
            "text": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def _one_line(exc: BaseException) -> str:
    """"<type>: <first line of the message>", or the type alone when the message is empty."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
