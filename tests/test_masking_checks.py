"""Tests of dfl_lib.evaluation.checks: the checks pass an ordinary trained model and flag deliberately
masked ones (an input quantised by round(4x)/4, whose gradient is exactly zero; a saturated
softmax output; a randomised output), reuse `evaluate`'s masks, and respect their tolerance.

The models are a tiny CNN trained for about a second on a synthetic 4-class task (a jittered
bright square in one of four quadrants of a noisy 12x12 image).
"""
import json
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import dfl_lib.evaluation.checks as masking
from conftest import quadrants, train_tiny
from dfl_lib.evaluation.robust import evaluate
from dfl_lib.evaluation.checks import CHECKS, CheckBudget, Tolerance, failed_checks, masking_checks
from dfl_lib.evaluation.threat import ThreatModel

EPS = 0.1
# cheaper than the defaults, still enough for these models
THREAT = ThreatModel("Linf", EPS)
FAST = dict(strong_steps=20, strong_restarts=2, square_queries=200)


class Quantised(nn.Module):
    """round(k x) / k in front of the model: same predictions, gradient exactly zero."""

    def __init__(self, model, k=4):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x):
        return self.model(torch.round(x * self.k) / self.k)


class Saturated(nn.Module):
    """Probabilities of 1e4-scaled logits: one-hot outputs whose softmax Jacobian is zero."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return torch.softmax(self.model(x) * 1e4, dim=1)


class Noisy(nn.Module):
    """Random logits noise even in eval mode: a randomised defence."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        return out + 0.1 * torch.randn_like(out)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def task():
    x_train, y_train = quadrants(1024, seed=1)
    x, y = quadrants(96, seed=2)
    model = train_tiny(x_train, y_train)
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.9, "the tiny model did not learn"
    return SimpleNamespace(model=model, x=x, y=y)


def test_ordinary_model_raises_no_flag(task):
    checks = masking_checks(task.model, task.x, task.y, threat=THREAT, budget=CheckBudget(**FAST))
    assert [c["check"] for c in checks] == list(CHECKS)
    assert failed_checks(checks) == [], [c["detail"] for c in checks if not c["passed"]]
    json.dumps(checks)  # plain values, ready for a results file
    sweep = checks[CHECKS.index("eps_sweep")]["values"]
    assert sweep["eps"][-1] == 1.0 and sweep["accuracy"][-1] == 0.0


def test_quantised_input_is_flagged(task):
    masked = Quantised(task.model).eval()
    failed = failed_checks(masking_checks(masked, task.x, task.y, threat=THREAT, budget=CheckBudget(**FAST)))
    # zero gradients; PGD cannot reach examples even at eps = 1; Square finds what PGD missed
    assert {"zero_grad", "eps_sweep", "black_box"} <= set(failed)
    assert "logits" not in failed and "deterministic" not in failed


def test_saturated_softmax_is_flagged(task):
    masked = Saturated(task.model).eval()
    failed = failed_checks(masking_checks(masked, task.x, task.y, threat=THREAT, budget=CheckBudget(**FAST)))
    assert {"logits", "zero_grad"} <= set(failed)


def test_randomised_output_is_flagged(task):
    noisy = Noisy(task.model).eval()
    checks = masking_checks(noisy, task.x[:32], task.y[:32], threat=THREAT,
                            budget=CheckBudget(sweep=(1.0,), strong_steps=2, strong_restarts=1,
                                               square_queries=10))
    assert "deterministic" in failed_checks(checks)


def test_reuses_the_masks_of_evaluate(task, monkeypatch):
    table = evaluate(task.model, task.x, task.y, attacks={
        "fgsm": {"eps": EPS}, "pgd": {"eps": EPS},
        "pgd-20x2": {"attack": "pgd", "eps": EPS, "steps": 20, "restarts": 2},
        "cw_pgd": {"eps": EPS, "kappa": 50.0},
        "square": {"eps": EPS, "n_queries": 200}})
    calls = []
    real = masking.robust_accuracy
    monkeypatch.setattr(masking, "robust_accuracy",
                        lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    checks = masking_checks(task.model, task.x, task.y, threat=THREAT, results=table,
                            budget=CheckBudget(sweep=(EPS, 1.0)))
    # only the eps = 1 point of the sweep is new; everything at EPS came from the table
    assert [kw["eps"] for kw in calls] == [1.0]
    by_name = {c["check"]: c for c in checks}
    assert "pgd-20x2 (reused)" in by_name["more_steps"]["detail"]
    assert "cw_pgd" in by_name["black_box"]["values"]["white_box"]  # extra white-box rows join
    with pytest.raises(ValueError, match="shape"):
        masking_checks(task.model, task.x, task.y, threat=THREAT,
                       results={"fgsm": table.masks["pgd"][:5]})


def test_comparisons_flag_only_beyond_the_tolerance(task):
    n = len(task.y)
    assert Tolerance().allowed(n) == 3 and Tolerance().allowed(1000) == 20
    robust = torch.ones(n, dtype=torch.bool)

    def fooled(*idx):
        m = robust.clone()
        m[list(idx)] = False
        return m

    def run(**roles):
        masks = {"fgsm": robust, "pgd": robust, "pgd_strong": robust, "square": robust} | roles
        checks = masking_checks(task.model, task.x, task.y, threat=THREAT, results=masks,
                                budget=CheckBudget(sweep=(1.0,)))
        return set(failed_checks(checks))

    # FGSM fools 3 examples PGD misses: within the tolerance; 4: flagged
    assert "iterative" not in run(fgsm=fooled(0, 1, 2))
    assert "iterative" in run(fgsm=fooled(0, 1, 2, 3))
    # PGD-10 fools examples the stronger PGD misses
    assert "more_steps" in run(pgd=fooled(*range(10)), fgsm=fooled(*range(10)))
    # Square fools 5 examples every white-box attack missed
    assert "black_box" in run(square=fooled(*range(5)))
    assert "black_box" not in run(square=fooled(*range(5)), pgd=fooled(*range(5)),
                                  pgd_strong=fooled(*range(5)), fgsm=fooled(*range(5)))
