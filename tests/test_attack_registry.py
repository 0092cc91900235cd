"""The attack registry: every entry runs on its own through the evaluation (the AutoAttack
components each alone too), describes its norm, kind and defaults, and callers read roles from
it instead of recognising names."""
from types import SimpleNamespace

import pytest
import torch

from conftest import quadrants, train_tiny
from dfl_lib.attacks import KINDS, REGISTRY
from dfl_lib.evaluation.checks import BLACK_BOX_ROLES, WHITE_BOX_KINDS, _on_ce
from dfl_lib.evaluation.robust import robust_accuracy
from dfl_lib.losses import PolarisedContrastiveLoss

pytestmark = pytest.mark.usefixtures("one_thread")
EPS = 0.1
# small budgets: every entry must run, not be strong here
EPS_L2 = 1.0  # the L2 radius of the bounded L2 attacks
BUDGETS = {"apgd_ce": {"steps": 3}, "apgd_t": {"steps": 3}, "fab": {"steps": 3},
           "apgd_ce_l2": {"steps": 3}, "apgd_t_l2": {"steps": 3},
           "square": {"n_queries": 20}, "autoattack": {"steps": 3, "n_queries": 20},
           "cw": {"steps": 5}, "bim": {"steps": 3}, "mim": {"steps": 3}, "pgd": {"steps": 3},
           "pgd_adaptive": {"steps": 3}, "cw_pgd": {"steps": 3},
           "transfer": {"steps": 3}}


@pytest.fixture(scope="module")
def task():
    x_train, y_train = quadrants(512, seed=1)
    x, y = quadrants(24, seed=2)
    model = train_tiny(x_train, y_train, seed=0)
    surrogate = train_tiny(x_train, y_train, seed=1)
    with torch.no_grad():
        _, feats = model(x_train, return_features=True)
    centroids = torch.stack([feats["penultimate"][y_train == k].mean(0) for k in range(4)])
    loss = PolarisedContrastiveLoss(4, centroids.shape[1])  # the defence's loss, fitted centroids
    with torch.no_grad():
        loss.centroids.copy_(centroids)
    return SimpleNamespace(model=model, surrogate=surrogate, loss=loss, x=x, y=y)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_entry_runs_alone_and_records_its_defaults(task, name):
    entry = REGISTRY[name]
    assert entry.kind in KINDS and entry.norm in (None, "Linf", "L2") and entry.summary
    kwargs = dict(BUDGETS.get(name, {}))
    if entry.norm == "Linf":
        kwargs["eps"] = EPS
    elif "eps" in entry.required:  # a bounded L2 attack
        kwargs["eps"] = EPS_L2
    live = {"defence_loss": task.loss, "surrogate": task.surrogate}
    kwargs.update({need: live[need] for need in entry.needs})
    row = robust_accuracy(task.model, task.x, task.y, attack=name, **kwargs)
    clean = robust_accuracy(task.model, task.x, task.y, attack="clean")
    assert row["n"] == len(task.y) and row["accuracy"] <= clean["accuracy"]
    assert row["norm"] == entry.norm
    if entry.norm == "Linf":
        assert row["max_linf"] <= EPS + 1e-6
    elif "eps" in entry.required:  # the L2 threat model at its radius, never beyond it
        assert row["max_l2"] <= EPS_L2 + 1e-4
        assert row["threat_model"] == {"norm": "L2", "eps": EPS_L2}
    # the recorded settings hold every default (overridden where the caller said so)
    assert set(entry.defaults) <= set(row["settings"])
    for key, value in BUDGETS.get(name, {}).items():
        assert row["settings"][key] == value


def test_peer_attacks_are_the_torchattacks_ones_with_autoattacks_budgets():
    peers = {n for n, e in REGISTRY.items() if e.takes_classes}
    assert peers == {"apgd_ce", "apgd_t", "fab", "square", "autoattack", "apgd_ce_l2",
                     "apgd_t_l2"}
    assert {n for n in peers if REGISTRY[n].norm == "L2"} == {"apgd_ce_l2", "apgd_t_l2"}
    assert all(REGISTRY[n].required == ("eps",) for n in peers)
    assert REGISTRY["apgd_t"].defaults["steps"] == 100
    assert REGISTRY["square"].defaults["n_queries"] == 5000
    assert REGISTRY["square"].kind == "score-based" and REGISTRY["transfer"].kind == "transfer"


def test_roles_come_from_the_registry_not_from_names():
    white = {n for n, e in REGISTRY.items() if e.kind in WHITE_BOX_KINDS}
    assert "square" not in white and "transfer" not in white
    assert {"pgd", "apgd_t", "fab", "pgd_adaptive", "cw_pgd"} <= white
    assert {REGISTRY[n].kind for n in ("square", "transfer")} == set(BLACK_BOX_ROLES)
    assert _on_ce(REGISTRY["pgd"], {"loss_fn": "ce_loss"})
    assert not _on_ce(REGISTRY["pgd"], {"loss_fn": "cw_margin"})  # a caller's own objective
    assert not _on_ce(REGISTRY["pgd_adaptive"], {"loss_fn": "ce_loss"})
    assert not _on_ce(REGISTRY["cw_pgd"], {"loss_fn": "ce_loss"})


def test_registering_a_name_twice_or_an_unknown_kind_is_an_error():
    from dfl_lib.attacks import AttackSpec, register, register_runner

    with pytest.raises(ValueError, match="registered twice"):
        register("pgd", norm="Linf", kind="white-box", summary="x")(lambda: None)
    with pytest.raises(ValueError, match="unknown kind"):
        register_runner(AttackSpec(name="new", norm="Linf", kind="grey-box", summary="x"))
    with pytest.raises(ValueError, match="unknown norm"):
        register("new", norm="L1", kind="white-box", summary="x")


def test_live_objects_reach_only_the_rows_that_need_them_and_suites_stay_data(task):
    import copy

    from dfl_lib.evaluation.robust import evaluate

    attacks = {"pgd": {"eps": EPS, "steps": 2}, "pgd_adaptive": {"eps": EPS, "steps": 2},
               "transfer": {"eps": EPS, "steps": 2}}
    before = copy.deepcopy(attacks)
    table = evaluate(task.model, task.x, task.y, attacks=attacks,
                     live={"defence_loss": task.loss, "surrogate": task.surrogate})
    assert attacks == before  # nothing written into the suite
    rows = {r["name"]: r for r in table}
    assert rows["pgd_adaptive"]["settings"]["defence_loss"].startswith("PolarisedContrastive")
    assert rows["pgd_adaptive"]["settings"]["loss_fn"] == "adaptive_objective"
    assert rows["transfer"]["settings"]["surrogate"].startswith("TinyCNN")
    assert "surrogate" not in rows["pgd"]["settings"]
    assert "defence_loss" not in rows["pgd"]["settings"]


def test_suites_are_tables_of_registered_attacks_over_config_fields():
    from dfl_lib.config import RunConfig
    from dfl_lib.experiments.configs import make_config
    from dfl_lib.evaluation.suites import PAPER_COLUMNS, ROWS, SUITES, attack_suite, threat_model
    from dfl_lib.evaluation.threat import ThreatModel

    fields = set(RunConfig().to_dict()) | {"strong_steps"}
    for key, (name, attack, template, *_) in ROWS.items():
        assert attack in REGISTRY, key
        assert all(v in fields for v in template.values() if isinstance(v, str)), key
    assert set(SUITES["paper"]) <= set(SUITES["full"]) and set(PAPER_COLUMNS.values()) <= \
        set(SUITES["paper"])
    cfg = make_config("quick", dataset="mnist")
    full = attack_suite(cfg, suite="full")
    # the budget is the suite's threat model, set once, never copied into a row
    assert full["PGD-50 x3 restarts"] == {"attack": "pgd", "steps": 50, "restarts": 3}
    assert threat_model(cfg) == ThreatModel("Linf", 0.3)
    assert not any("eps" in spec for spec in full.values())
    assert "adaptive PGD-50 (PCL)" in full
    assert "adaptive PGD-50 (PCL)" not in attack_suite(cfg.replace(loss="ce"), suite="full")
    with pytest.raises(ValueError, match="unknown suite 'strong'"):
        attack_suite(cfg, suite="strong")


def test_evaluation_computes_no_weight_gradients_and_restores_requires_grad(task):
    # torchattacks' FAB calls .backward(): with the parameters left requiring gradients it
    # would fill (and accumulate) every weight's .grad at each step
    model = task.model
    model.zero_grad(set_to_none=True)
    before = [p.requires_grad for p in model.parameters()]
    out = robust_accuracy(model, task.x, task.y, attack="fab", eps=EPS, **BUDGETS["fab"])
    assert 0.0 <= out["accuracy"] <= 1.0
    assert all(p.grad is None for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()] == before


@pytest.mark.parametrize("eps", [0.05, 0.15, 0.3])
def test_the_adaptive_attack_is_never_weaker_than_pgd_with_its_settings(task, eps):
    """Warm-started from PGD on cross-entropy (same settings and seed), the adaptive attack
    breaks every example PGD breaks (issue 19: the first version, the PCL objective alone from
    a random start, was weaker than PGD-10 on every PCL model of the quick study)."""
    pgd_row = robust_accuracy(task.model, task.x, task.y, attack="pgd", eps=eps, steps=5,
                              seed=3)
    adaptive = robust_accuracy(task.model, task.x, task.y, attack="pgd_adaptive", eps=eps,
                               steps=5, seed=3, defence_loss=task.loss)
    assert not (adaptive["correct"] & ~pgd_row["correct"]).any()
    assert adaptive["settings"]["warm_start"] is True
    cold = robust_accuracy(task.model, task.x, task.y, attack="pgd_adaptive", eps=eps, steps=5,
                           seed=3, defence_loss=task.loss, warm_start=False)
    assert adaptive["accuracy"] <= cold["accuracy"]
