"""Training-set poisoning (issue 20): each poison keeps its budget (eps in grey levels after the
uint8 rounding, the exact count a fraction asks for, the trigger's size and place), changes
exactly the samples it records, is reproducible from its seed, leaves its inputs alone, refuses
bad parameters with a one-line UsageError, and does what its paper says on tiny data; BadNets
agrees with ART's PoisoningAttackBackdoor on the same images."""
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TinyCNN, quadrants, train_tiny

from dfl_lib.data.datasets import to_float
from dfl_lib.errors import UsageError
from dfl_lib.poisoning import (POSITIONS, MinMinSchedule, PoisonBudget, PoisonedSet,
                               adversarial_poison, attack_success_rate, availability, backdoor,
                               badnets, clean_label, error_minimising, get_poison, label_flip,
                               stamp_trigger, trigger_mask, triggered_test_set)

pytestmark = pytest.mark.usefixtures("one_thread")

K = 4  # quadrants' classes


@pytest.fixture(scope="module")
def data():
    """240 uint8 images (240, 1, 12, 12), labels 0..3 (60 per class)."""
    x, y = quadrants(240, seed=0)
    return (x * 255).round().to(torch.uint8), y


@pytest.fixture(scope="module")
def reference(data):
    """A clean-trained TinyCNN in eval mode (~98% training accuracy)."""
    x, y = data
    return train_tiny(to_float(x), y, epochs=6)


def _budget(*, eps: float, seed: int, fraction: float = 1.0, target: int = 0,
            patch_size: int = 3, batch_size: int = 256) -> PoisonBudget:
    """A PoisonBudget; the fields a test leaves out: every image (fraction 1), class 0, the
    3-pixel trigger, batches of 256 (the PGD poisons' default before they took a budget)."""
    return PoisonBudget(fraction=fraction, target=target, patch_size=patch_size, eps=eps,
                        batch_size=batch_size, seed=seed)


def _same(a: PoisonedSet, b: PoisonedSet) -> bool:
    return (torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.indices, b.indices)
            and a.params == b.params)


def _untouched_elsewhere(poisoned: PoisonedSet, x, y):
    """Every sample outside poisoned.indices is identical, image and label; indices sorted,
    unique, int64."""
    idx = poisoned.indices
    assert idx.dtype == torch.int64 and torch.equal(idx, idx.unique(sorted=True))
    rest = torch.ones(len(y), dtype=torch.bool)
    rest[idx] = False
    assert torch.equal(poisoned.y[rest], y[rest])
    if poisoned.x is not None:
        assert poisoned.x.dtype == torch.uint8 and poisoned.x.shape == x.shape
        assert torch.equal(poisoned.x[rest], x[rest])
    assert poisoned.y.dtype == torch.int64


def _pixel_change(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a - b| in grey levels, int (same shape)."""
    return (a.int() - b.int()).abs()


def _loss(model, x, y) -> float:
    """The model's mean CE on uint8 images x (N, C, H, W)."""
    with torch.no_grad():
        return float(F.cross_entropy(model(to_float(x)), y))


# --------------------------------------------------------------------------- the trigger

@pytest.mark.parametrize("position", POSITIONS)
def test_trigger_is_a_checkerboard_one_pixel_in_from_its_corner(position):
    x = torch.full((2, 3, 10, 14), 77, dtype=torch.uint8)  # non-square: rows and columns apart
    before = x.clone()
    out = stamp_trigger(x, patch_size=4, position=position, value=200)
    top = 1 if position.startswith("top") else 10 - 1 - 4
    left = 1 if position.endswith("left") else 14 - 1 - 4
    expected = x.clone()
    for i in range(4):
        for j in range(4):
            expected[:, :, top + i, left + j] = 200 if (i + j) % 2 == 0 else 0
    assert torch.equal(out, expected)
    assert torch.equal(x, before) and out.data_ptr() != x.data_ptr()
    mask = trigger_mask((10, 14), patch_size=4, position=position)
    assert int(mask.sum()) == 16 and bool(mask[top, left]) and bool(mask[top + 3, left + 3])


# --------------------------------------------------------------------------- BadNets

def test_badnets_budget_indices_and_labels(data):
    x, y = data
    x0, y0 = x.clone(), y.clone()
    p = badnets(x, y, num_classes=K, fraction=0.1, target=2, seed=0)
    assert torch.equal(x, x0) and torch.equal(y, y0)  # inputs untouched
    assert len(p.indices) == round(0.1 * 240) == 24
    assert p.kind == "badnets" and p.target == 2 and p.params["seed"] == 0
    assert (y[p.indices] != 2).all() and (p.y[p.indices] == 2).all()
    _untouched_elsewhere(p, x, y)
    mask = trigger_mask((12, 12), patch_size=3, position="bottom-right")
    assert torch.equal(p.x[p.indices][:, :, ~mask], x[p.indices][:, :, ~mask])
    assert torch.equal(p.x[p.indices], stamp_trigger(x[p.indices]))


def test_badnets_reproducible_from_its_seed(data):
    x, y = data
    a = badnets(x, y, num_classes=K, fraction=0.2, target=0, seed=5)
    assert _same(a, badnets(x, y, num_classes=K, fraction=0.2, target=0, seed=5))
    b = badnets(x, y, num_classes=K, fraction=0.2, target=0, seed=6)
    assert not torch.equal(a.indices, b.indices)


def test_badnets_counts_at_the_edges(data):
    x, y = data
    assert len(badnets(x, y, num_classes=K, fraction=0.0, target=0, seed=0).indices) == 0
    full = badnets(x, y, num_classes=K, fraction=0.75, target=0, seed=0)  # every other class
    assert torch.equal(full.indices, (y != 0).nonzero().flatten())
    with pytest.raises(UsageError, match="only 180 images are not of target class 0"):
        badnets(x, y, num_classes=K, fraction=0.8, target=0, seed=0)


def test_badnets_agrees_with_art_backdoor(data):
    """ART's PoisoningAttackBackdoor with its add_pattern_bd (distance=2: one pixel in from the
    bottom-right corner) on the images BadNets chose: the same labels, the same lit pixels (ART
    lights 4 cells of the 3x3 checkerboard, ours also its top-left cell and sets the unlit ones
    to 0), and every pixel outside the patch unchanged in both."""
    from art.attacks.poisoning import PoisoningAttackBackdoor
    from art.attacks.poisoning.perturbations import add_pattern_bd

    x, y = data
    x = x.expand(-1, 3, -1, -1).contiguous()  # three channels: ART paints all of them
    p = badnets(x, y, num_classes=K, fraction=0.25, target=1, seed=3)
    chosen = x[p.indices].numpy()  # (M, 3, 12, 12) uint8, ART's channels-first layout

    attack = PoisoningAttackBackdoor(
        lambda b: add_pattern_bd(b, distance=2, pixel_value=255, channels_first=True))
    x_art, y_art = attack.poison(chosen, y=np.full(len(chosen), 1))
    ours = p.x[p.indices].numpy()
    assert x_art.dtype == np.uint8 and np.array_equal(y_art, p.y[p.indices].numpy())

    lit = add_pattern_bd(np.zeros((1, 3, 12, 12), np.uint8), distance=2, pixel_value=255,
                         channels_first=True)[0] == 255  # (3, 12, 12)
    patch = trigger_mask((12, 12)).numpy()[None].repeat(3, 0)
    assert lit.sum() == 4 * 3 and (lit <= patch).all()  # ART's pixels lie in our patch
    assert (ours[:, lit] == 255).all() and (x_art[:, lit] == 255).all()
    assert np.array_equal(ours[:, ~patch], x_art[:, ~patch])
    assert np.array_equal(ours[:, ~patch], chosen[:, ~patch])


@pytest.mark.parametrize("position", POSITIONS)
def test_stamp_trigger_agrees_with_art_given_our_pattern(data, position):
    """ART's backdoor driven by a numpy checkerboard written here (the pattern function
    equivalent to ours) gives exactly our images, at every corner, and labels as given."""
    from art.attacks.poisoning import PoisoningAttackBackdoor

    x, _ = data
    size, h, w = 3, 12, 12
    top = 1 if position.startswith("top") else h - 1 - size
    left = 1 if position.endswith("left") else w - 1 - size
    rows, cols = np.indices((size, size))
    board = np.where((rows + cols) % 2 == 0, 255, 0).astype(np.uint8)

    def pattern(b: np.ndarray) -> np.ndarray:  # (N, C, H, W) uint8
        b = b.copy()
        b[:, :, top:top + size, left:left + size] = board
        return b

    x_art, y_art = PoisoningAttackBackdoor(pattern).poison(x[:20].numpy(), y=np.full(20, 3))
    assert np.array_equal(x_art, stamp_trigger(x[:20], position=position).numpy())
    assert np.array_equal(y_art, np.full(20, 3))


def test_triggered_test_set_and_attack_success_rate(data):
    x, y = data
    x_trig, y_true = triggered_test_set(x, y, target=1)
    assert len(y_true) == 180 and (y_true != 1).all()
    assert torch.equal(x_trig, stamp_trigger(x[y != 1]))
    predictions = torch.where(torch.arange(180) < 45, 1, y_true)
    assert attack_success_rate(predictions, target=1) == pytest.approx(0.25)
    with pytest.raises(UsageError, match="predictions must have shape"):
        attack_success_rate(torch.zeros(0, dtype=torch.long), target=1)


# --------------------------------------------------------------------------- clean-label

def test_clean_label_budget_labels_and_target_class(data, reference):
    x, y = data
    x0, y0 = x.clone(), y.clone()
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    eps = 8 / 255
    p = clean_label(x, y, num_classes=K, model=reference,
                    budget=_budget(fraction=0.5, target=3, eps=eps, seed=0), steps=5)
    assert torch.equal(x, x0) and torch.equal(y, y0)
    assert not reference.training and all(torch.equal(v, state[k])
                                          for k, v in reference.state_dict().items())
    assert len(p.indices) == round(0.5 * 60) == 30 and p.target == 3
    assert (y[p.indices] == 3).all() and torch.equal(p.y, y)  # labels kept, all target-class
    _untouched_elsewhere(p, x, y)
    mask = trigger_mask((12, 12))
    change = _pixel_change(p.x[p.indices], x[p.indices])[:, :, ~mask]
    assert int(change.max()) <= eps * 255 + 0.5  # the budget survives the uint8 rounding
    assert float((change > 0).float().mean()) > 0.5  # ... and so does the perturbation
    assert torch.equal(p.x[p.indices], stamp_trigger(p.x[p.indices]))  # trigger on top
    # PGD made them harder for the reference model than the trigger alone does
    hard = _loss(reference, p.x[p.indices], y[p.indices])
    assert hard > _loss(reference, stamp_trigger(x[p.indices]), y[p.indices]) + 0.03


def test_clean_label_reproducible_and_refuses_a_training_model(data, reference):
    x, y = data
    kw = {"num_classes": K, "model": reference, "steps": 2}
    budget = _budget(fraction=0.3, target=0, eps=4 / 255, seed=1)
    a = clean_label(x, y, budget=budget, **kw)
    assert _same(a, clean_label(x, y, budget=budget, **kw))
    other = dataclasses.replace(budget, seed=2)
    assert not torch.equal(a.indices, clean_label(x, y, budget=other, **kw).indices)
    reference.train()
    try:
        with pytest.raises(UsageError, match="eval mode"):
            clean_label(x, y, budget=budget, **kw)
    finally:
        reference.eval()


# --------------------------------------------------------------------------- availability

def test_adversarial_poison_budget_and_effect(data, reference):
    x, y = data
    x0 = x.clone()
    eps = 24 / 255
    p = adversarial_poison(x, y, num_classes=K, model=reference, budget=_budget(eps=eps, seed=0),
                           steps=10)
    assert torch.equal(x, x0) and torch.equal(p.y, y) and not reference.training
    assert torch.equal(p.indices, torch.arange(240)) and p.target is None
    assert int(_pixel_change(p.x, x).max()) <= eps * 255 + 0.5
    with torch.no_grad():
        clean_pred = reference(to_float(x)).argmax(1)
        pred = reference(to_float(p.x)).argmax(1)
    shifted = (y + 1) % K
    assert float((pred == y).float().mean()) < float((clean_pred == y).float().mean()) - 0.1
    assert (float((pred == shifted).float().mean())
            > float((clean_pred == shifted).float().mean()) + 0.05)
    again = adversarial_poison(x, y, num_classes=K, model=reference,
                               budget=_budget(eps=eps, seed=0), steps=10)
    assert _same(p, again)
    other = adversarial_poison(x, y, num_classes=K, model=reference,
                               budget=_budget(eps=eps, seed=1), steps=10)
    assert not torch.equal(p.x, other.x)  # the random start comes from the seed


def test_adversarial_poison_untargeted_raises_the_loss(data, reference):
    x, y = data
    p = adversarial_poison(x[:64], y[:64], num_classes=K, model=reference,
                           budget=_budget(eps=16 / 255, seed=0), steps=5, targeted=False)
    assert int(_pixel_change(p.x, x[:64]).max()) <= 16 + 0.5
    assert _loss(reference, p.x, y[:64]) > _loss(reference, x[:64], y[:64]) + 0.2


def _fresh(seed: int) -> TinyCNN:
    torch.manual_seed(seed)
    return TinyCNN()


def _training_loss(x, y, *, init: int, steps: int = 20) -> float:
    """CE over the whole set of a fresh TinyCNN after `steps` Adam steps on it (batches of 64)."""
    model = _fresh(init)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    gen = torch.Generator().manual_seed(init)
    for _ in range(steps):
        idx = torch.randperm(len(y), generator=gen)[:64]
        loss = F.cross_entropy(model(to_float(x[idx])), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(F.cross_entropy(model.eval()(to_float(x)), y))


def test_error_minimising_noise_is_a_shortcut(data):
    """Unlearnable examples (Huang et al. 2021): fresh networks fit the poisoned set faster
    than the clean one (lower training loss after the same steps from the same weights), and
    faster than the same images with uniform noise of the same budget."""
    x, y = data
    x0 = x.clone()
    eps = 32 / 255
    kw = {"num_classes": K, "budget": _budget(eps=eps, batch_size=64, seed=0),
          "schedule": MinMinSchedule(steps=5, train_steps=5, rounds=6, stop_accuracy=1.0)}
    p = error_minimising(x, y, model=_fresh(1), **kw)
    assert torch.equal(x, x0) and torch.equal(p.y, y) and p.kind == "error_min"
    assert torch.equal(p.indices, torch.arange(240))
    assert int(_pixel_change(p.x, x).max()) <= eps * 255 + 0.5
    assert 1 <= p.params["rounds_used"] <= 6 and 0 <= p.params["final_accuracy"] <= 1
    assert _same(p, error_minimising(x, y, model=_fresh(1), **kw))  # same seed, same weights

    noise = (torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1) * eps
    noisy = (((to_float(x) + noise).clamp(0, 1)) * 255).round().to(torch.uint8)
    clean, poisoned, random = ([_training_loss(images, y, init=i) for i in (2, 3, 4)]
                               for images in (x, p.x, noisy))
    assert all(a < b for a, b in zip(poisoned, clean)), (poisoned, clean)
    assert sum(poisoned) < 0.9 * sum(clean) and sum(poisoned) < 0.9 * sum(random)


def test_min_min_schedule_defaults():
    """The schedule's defaults are those error_minimising's keywords had."""
    assert MinMinSchedule() == MinMinSchedule(steps=10, alpha=None, train_steps=10, rounds=10,
                                              stop_accuracy=0.99, lr=0.1)


def test_error_minimising_trains_the_model_and_leaves_it_in_eval_mode(data):
    x, y = data
    model = _fresh(1)
    before = [p.clone() for p in model.parameters()]
    p = error_minimising(x[:64], y[:64], num_classes=K, model=model,
                         budget=_budget(eps=8 / 255, batch_size=32, seed=0),
                         schedule=MinMinSchedule(steps=1, train_steps=1, rounds=1))
    assert not model.training and p.params["rounds_used"] == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


# --------------------------------------------------------------------------- label flipping

@pytest.mark.parametrize("mode", ["random", "pairwise"])
def test_label_flip_count_classes_and_images(data, mode):
    x, y = data
    x0, y0 = x.clone(), y.clone()
    p = label_flip(y, x, num_classes=K, fraction=0.3, seed=0, mode=mode)
    assert torch.equal(x, x0) and torch.equal(y, y0)
    assert len(p.indices) == 72 and torch.equal(p.x, x) and p.kind == "label_flip"
    _untouched_elsewhere(p, x, y)
    flipped, original = p.y[p.indices], y[p.indices]
    assert (flipped != original).all() and ((flipped >= 0) & (flipped < K)).all()
    if mode == "pairwise":
        assert torch.equal(flipped, (original + 1) % K)
    else:  # uniform over the other classes: every shift 1..K-1 occurs
        assert set(((flipped - original) % K).tolist()) == {1, 2, 3}
    assert _same(p, label_flip(y, x, num_classes=K, fraction=0.3, seed=0, mode=mode))
    assert not torch.equal(p.indices,
                           label_flip(y, x, num_classes=K, fraction=0.3, seed=1,
                                      mode=mode).indices)
    assert label_flip(y, num_classes=K, fraction=0.3, seed=0, mode=mode).x is None


# --------------------------------------------------------------------------- refusals

BAD = [  # (function name, overrides, what the message must name)
    ("badnets", {"fraction": 1.5}, "fraction must lie in"),
    ("badnets", {"fraction": -0.1}, "fraction must lie in"),
    ("badnets", {"target": 4}, "target class 4 is not a class"),
    ("badnets", {"target": -1}, "target class -1 is not a class"),
    ("badnets", {"patch_size": 12}, "patch_size 12 is too large for 12x12"),
    ("badnets", {"patch_size": 0}, "patch_size must be >= 1"),
    ("badnets", {"position": "middle"}, "unknown trigger position 'middle'"),
    ("badnets", {"x": "float"}, "must be uint8"),
    ("badnets", {"y": "short"}, "y must have shape"),
    ("badnets", {"y": "out_of_range"}, "labels must lie in"),
    ("clean_label", {"eps": 8.0}, "eps must lie in"),
    ("clean_label", {"eps": -0.1}, "eps must lie in"),
    ("clean_label", {"target": 7}, "target class 7"),
    ("clean_label", {"patch_size": 20}, "too large"),
    ("adversarial_poison", {"eps": 1.5}, "eps must lie in"),
    ("adversarial_poison", {"steps": 0}, "steps must be >= 1"),
    ("error_minimising", {"eps": 2.0}, "eps must lie in"),
    ("error_minimising", {"stop_accuracy": 1.2}, "stop_accuracy must lie in"),
    ("error_minimising", {"rounds": 0}, "rounds must be >= 1"),
    ("error_minimising", {"lr": 0.0}, "lr must be > 0"),
    ("error_minimising", {"batch_size": 0}, "batch_size must be >= 1"),
    ("label_flip", {"fraction": 2.0}, "fraction must lie in"),
    ("label_flip", {"mode": "swap"}, "unknown label-flip mode 'swap'"),
    ("label_flip", {"num_classes": 1}, "num_classes must be >= 2"),
]


# the functions that take parameter objects: a loose keyword of the table goes to its field
GROUPED = ("clean_label", "adversarial_poison", "error_minimising")
BUDGET_FIELDS = {f.name for f in dataclasses.fields(PoisonBudget)}
SCHEDULE_FIELDS = {f.name for f in dataclasses.fields(MinMinSchedule)}


def _grouped(kwargs: dict, *, schedule: bool) -> dict:
    """kwargs with PoisonBudget's fields gathered into `budget` (the rest as `_budget` fills
    them) and, with `schedule`, MinMinSchedule's into `schedule`."""
    out = {k: v for k, v in kwargs.items() if k not in BUDGET_FIELDS}
    out["budget"] = _budget(**{k: v for k, v in kwargs.items() if k in BUDGET_FIELDS})
    if schedule:
        out = {k: v for k, v in out.items() if k not in SCHEDULE_FIELDS}
        out["schedule"] = MinMinSchedule(**{k: v for k, v in kwargs.items()
                                            if k in SCHEDULE_FIELDS})
    return out


@pytest.mark.parametrize("name, overrides, message", BAD,
                         ids=[f"{b[0]}-{next(iter(b[1]))}-{next(iter(b[1].values()))}"
                              for b in BAD])
def test_bad_parameters_are_refused_in_one_line(data, reference, name, overrides, message):
    x, y = data
    x, y = x[:40], y[:40]
    images = {"float": to_float(x)}
    labels = {"short": y[:-1], "out_of_range": y + 4}
    overrides = dict(overrides)
    if overrides.get("x") in images:
        overrides["x"] = images[overrides["x"]]
    if overrides.get("y") in labels:
        overrides["y"] = labels[overrides["y"]]
    base = {"x": x, "y": y, "num_classes": K, "seed": 0}
    calls = {
        "badnets": (badnets, {"fraction": 0.1, "target": 0}),
        "clean_label": (clean_label, {"model": reference, "fraction": 0.1, "target": 0,
                                      "eps": 0.03}),
        "adversarial_poison": (adversarial_poison, {"model": reference, "eps": 0.03}),
        "error_minimising": (error_minimising, {"model": _fresh(0), "eps": 0.03}),
        "label_flip": (label_flip, {"fraction": 0.1}),
    }
    fn, kwargs = calls[name]
    kwargs = {**base, **kwargs, **overrides}
    if name in GROUPED:
        kwargs = _grouped(kwargs, schedule=name == "error_minimising")
    x0, y0 = x.clone(), y.clone()
    with pytest.raises(UsageError, match=message) as info:
        fn(**kwargs)
    assert "\n" not in str(info.value)
    assert torch.equal(x, x0) and torch.equal(y, y0)


def test_refusals_come_before_any_work(data):
    """A bad eps is refused before the min-min network takes a single step."""
    x, y = data
    model = _fresh(0)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(UsageError, match="eps must lie in"):
        error_minimising(x, y, num_classes=K, model=model, budget=_budget(eps=8, seed=0))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert model.training  # not switched either


@pytest.mark.parametrize("fn", [adversarial_poison, clean_label, error_minimising])
def test_a_budget_must_be_a_poison_budget(data, reference, fn):
    """A dict of budget fields is refused in one line, before any work."""
    x, y = data
    with pytest.raises(UsageError, match="budget must be a PoisonBudget, got dict"):
        fn(x, y, num_classes=K, model=reference, budget={"eps": 0.03, "seed": 0})


def test_a_schedule_must_be_a_min_min_schedule(data):
    x, y = data
    with pytest.raises(UsageError, match="schedule must be a MinMinSchedule, got dict"):
        error_minimising(x, y, num_classes=K, model=_fresh(0), budget=_budget(eps=0.03, seed=0),
                         schedule={"rounds": 3})


# --------------------------------------------------------------------------- the registry

@pytest.mark.parametrize("poison, module, function, batch_size", [
    ("adversarial", availability, "adversarial_poison", 256),
    ("clean_label", backdoor, "clean_label", 256),
    ("error_min", availability, "error_minimising", 48),
])
def test_registered_poisons_pass_the_budget_on(data, monkeypatch, poison, module, function,
                                               batch_size):
    """The registry hands the run's PoisonBudget to the crafting function whole; the PGD
    poisons at their batch of 256 whatever the run's (as they always crafted), error_min at
    the run's, with its registered min-min schedule."""
    x, y = data
    seen = {}
    monkeypatch.setattr(module, function, lambda x, y, **kw: seen.update(kw))
    budget = _budget(fraction=0.2, target=1, eps=8 / 255, batch_size=48, seed=5)
    get_poison(poison).craft(x, y, num_classes=K, budget=budget, model=None)
    assert seen["budget"] == dataclasses.replace(budget, batch_size=batch_size)
    if poison == "error_min":
        steps = availability.MIN_MIN_STEPS
        assert seen["schedule"] == MinMinSchedule(steps=steps, alpha=budget.eps / steps)
