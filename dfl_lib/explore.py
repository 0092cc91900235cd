"""The epsilon explorer: plain drawing functions of (eps, attack), and one wrapper that makes them
live widgets in JupyterLab or, under papermill, static figures for a few fixed epsilons.

    draw = adversarial_drawer(model, x, y, class_names=None)   # draw(eps, attack) -> (fig, text)
    explorer(draw, eps_max=0.3, attacks=("pgd", "fgsm"), interactive=True)   # a widget
    explorer(draw, eps_values=(0, 0.1, 0.3), attacks=("pgd",), interactive=False)  # figures
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import torch

from .attacks import run_attack
from .checks import check_known, check_nonnegative

__all__ = ["EXPLORER_ATTACKS", "attack_batch", "plot_adversarial_examples", "adversarial_drawer",
           "explorer"]

# attacks the explorer offers: name -> the settings it takes besides eps
EXPLORER_ATTACKS = {"fgsm": {}, "pgd": {"steps": 10}, "cw_pgd": {"steps": 10}}


def attack_batch(model, x: torch.Tensor, y: torch.Tensor, *, attack: str, eps: float,
                 seed: int = 0) -> dict:
    """x (N, C, H, W) in [0, 1] attacked at eps: {"x", "x_adv", "pred", "confidence"} with the
    model's prediction and softmax confidence (N,) on the attacked images (eps 0: clean)."""
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


def plot_adversarial_examples(batch: dict, *, eps: float, attack: str, class_names=None):
    """Three rows over the batch: clean images, the perturbation (grey = 0, scaled to +-eps),
    attacked images titled with prediction and confidence (red when wrong)."""
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
        axes[1][i].imshow(delta, cmap="seismic", vmin=-1, vmax=1)
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
    fig.suptitle(f"{attack} at eps = {eps:.3f} (pixel units): {acc:.0f}% of these still "
                 f"correct", fontsize=10)
    fig.tight_layout()
    return fig


def adversarial_drawer(model, x: torch.Tensor, y: torch.Tensor, *, class_names=None,
                       seed: int = 0) -> Callable[[float, str], tuple]:
    """draw(eps, attack) -> (figure, one-line text of predictions) over the batch x, y."""
    def draw(eps: float, attack: str):
        batch = attack_batch(model, x, y, attack=attack, eps=eps, seed=seed)
        fig = plot_adversarial_examples(batch, eps=eps, attack=attack, class_names=class_names)
        text = (f"eps {eps:.3f}, {attack}: predictions "
                f"{' '.join(str(int(p)) for p in batch['pred'])}, confidence "
                f"{' '.join(f'{100 * float(c):.0f}%' for c in batch['confidence'])}")
        return fig, text
    return draw


def explorer(draw: Callable[[float, str], tuple], *, attacks: Sequence[str],
             interactive: bool, eps_max: float = 0.3, eps_step: float = 0.01,
             eps_values: Sequence[float] = (0.0, 0.1, 0.2, 0.3), show=None):
    """Live: an epsilon slider and an attack selector redrawing `draw` (JupyterLab; returns
    the widget box). Static (papermill): `draw` for each of eps_values with the first attack,
    shown with `show(fig, text)`; returns the figures."""
    if not interactive:
        figures = []
        for eps in eps_values:
            fig, text = draw(float(eps), attacks[0])
            if show is not None:
                show(fig, text)
            plt.close(fig)  # shown once: the inline backend would draw open figures again
            figures.append(fig)
        return figures
    import ipywidgets as widgets
    from IPython.display import display

    slider = widgets.FloatSlider(value=eps_values[1] if len(eps_values) > 1 else 0.0, min=0.0,
                                 max=eps_max, step=eps_step, description="epsilon",
                                 readout_format=".2f", continuous_update=False)
    choice = widgets.Dropdown(options=list(attacks), value=attacks[0], description="attack")
    label = widgets.Label()
    out = widgets.Output()

    def redraw(_=None):
        fig, text = draw(float(slider.value), choice.value)
        label.value = text
        with out:
            out.clear_output(wait=True)
            display(fig)
        plt.close(fig)

    slider.observe(redraw, names="value")
    choice.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([slider, choice]), label, out])
