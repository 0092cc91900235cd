"""Figure 4's experiment at a profile's size: the four 2-D-feature networks (CE, centre loss,
additive margin, PCL) trained once per profile and cached in the runs folder, and the panels the
figures and the epsilon explorer draw.

    nets = geometry_nets("quick", runs_root="runs/quick")          # {"ce": (model, loss), ...}
    panels = feature_panels(nets, x, y)                             # for plot_feature_panels
    panels = attack_panels(nets, x, y, eps=0.1)                     # for plot_regions_under_attack
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..data.datasets import load_dataset, to_float
from ..evaluation.robust import eval_subset
from ..figures.geometry import plot_regions_under_attack
from ..profiles import get_profile
from ..runs import io as runio
from ..runs.versions import computation_version
from .geometry import (_build, attacked_features, class_centroids, decision_regions,
                       feature_extent, features_2d, separation_ratio, share_in_true_region,
                       train_2d)

__all__ = ["GEOMETRY_PANELS", "geometry_nets", "geometry_test_set",
           "feature_panels", "attack_panels", "regions_drawer"]

# Figure 4's panels in the paper's order: (a) CE, (b) centre loss, (c) additive margin, (d) PCL
GEOMETRY_PANELS = {"ce": "CE", "center": "centre loss", "am_softmax": "additive margin",
                   "pcl": "PCL"}
def _sizes(profile: str) -> tuple[int, int, float, int]:
    """Training images, epochs, lr, test images of Figure 4's nets (`Profile.geometry`)."""
    return get_profile(profile).geometry


def geometry_test_set(profile: str, *, data_root=None, seed: int = 0):
    """(x float (N, 1, 28, 28) in [0, 1], y (N,)): the profile's MNIST test images."""
    data = load_dataset("mnist", root=data_root, n_train=_sizes(profile)[0], seed=seed)
    return eval_subset(data, n=_sizes(profile)[3], seed=seed)


def geometry_nets(profile: str, *, runs_root=None, data_root=None, seed: int = 0,
                  losses=tuple(GEOMETRY_PANELS)) -> dict:
    """{loss: (Net2D in eval mode, loss module)}, trained once and cached under
    <runs_root>/geometry/ by a key over profile sizes, seed and the geometry code."""
    n_train, epochs, lr, _ = _sizes(profile)
    folder = Path(runs_root or runio.default_runs_root()) / "geometry"
    data = None
    out = {}
    for loss in losses:
        spec = {"loss": loss, "n_train": n_train, "epochs": epochs, "lr": lr, "seed": seed,
                "code": computation_version("geometry")}
        path = folder / f"{loss}-s{seed}-{runio.short_hash(spec)}.pt"
        if path.exists():
            model, criterion = _build(loss, seed=seed, loss_kwargs=None)
            state = runio.load_checkpoint(path)
            model.load_state_dict(state["model"])
            criterion.load_state_dict(state["loss"])
            out[loss] = (model.eval(), criterion)
            continue
        if data is None:
            data = load_dataset("mnist", root=data_root, n_train=n_train, seed=seed)
        model, criterion = train_2d(loss=loss, x=to_float(data.x_train), y=data.y_train,
                                    epochs=epochs, lr=lr, seed=seed)
        folder.mkdir(parents=True, exist_ok=True)
        runio.save_checkpoint(path, state={"model": model.state_dict(),
                                           "loss": criterion.state_dict()})
        out[loss] = (model, criterion)
    return out


def feature_panels(nets: dict, x: torch.Tensor, y: torch.Tensor, *,
                   resolution: int = 300) -> dict:
    """{panel label: {features, y, regions, centroids, ratio, accuracy}} for Figure 4."""
    panels = {}
    for loss, (model, _) in nets.items():
        f = features_2d(model, x)  # (N, 2)
        regions = decision_regions(model, extent=feature_extent(f), resolution=resolution)
        panels[GEOMETRY_PANELS.get(loss, loss)] = {
            "features": f, "y": y, "regions": regions, "centroids": class_centroids(f, y),
            "ratio": separation_ratio(f, y), "accuracy": 100 * share_in_true_region(model, f, y)}
    return panels


def attack_panels(nets: dict, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                  steps: int = 10, resolution: int = 200) -> dict:
    """Feature panels plus "attacked": the features of PGD-perturbed x at `eps`, "steps": the
    PGD steps, and the share of points still in their class's region ("kept", in [0, 1])."""
    panels = {}
    for loss, (model, _) in nets.items():
        f = features_2d(model, x)
        f_adv = attacked_features(model, x, y, eps=eps, steps=steps)
        regions = decision_regions(model, extent=feature_extent(f, f_adv),
                                   resolution=resolution)
        panels[GEOMETRY_PANELS.get(loss, loss)] = {
            "features": f, "y": y, "regions": regions, "centroids": class_centroids(f, y),
            "ratio": separation_ratio(f, y), "attacked": f_adv, "steps": steps,
            "kept": share_in_true_region(model, f_adv, y)}
    return panels


def regions_drawer(nets: dict, x: torch.Tensor, y: torch.Tensor, *, dataset: str, seed: int,
                   steps: int = 10):
    """draw(eps, attack) -> (figure, text) for the explorer: the 2-D decision regions of `nets`
    side by side with the test points moved by PGD at eps (the attack name is shown; the 2-D
    nets are always attacked with PGD). `dataset` and `seed` (the nets' training seed, as given
    to `geometry_nets`) are named in each figure's title."""

    def draw(eps: float, attack: str = "pgd"):
        panels = attack_panels(nets, x, y, eps=eps, steps=steps)
        fig = plot_regions_under_attack(panels, eps=eps, dataset=dataset, seed=seed)
        text = f"eps {eps:.3f}: " + ", ".join(f"{k} keeps {100 * p['kept']:.0f}%"
                                              for k, p in panels.items())
        return fig, text
    return draw
