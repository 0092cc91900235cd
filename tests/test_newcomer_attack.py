"""A newcomer adds an attack (issue 18): one new file registering it, and the normal evaluation
runs it, records its settings, puts it in the worst case of its threat model and asks the
registry what it is. No other file is touched."""
import importlib
import sys
import textwrap

import torch
from conftest import quadrants, train_tiny

from dfl_lib.attacks import REGISTRY
from dfl_lib.evaluation.robust import evaluate

TOY = '''
"""A toy attack: the sign of uniform noise times eps (a weak, gradient-free L-inf attack)."""
import torch

from dfl_lib.attacks import register


@register("toy_noise", norm="Linf", kind="score-based", objective=None,
          summary="random signs of size eps", cost=lambda s: 0.0)
def toy_noise(model, x, y, *, eps, generator=None):
    noise = torch.rand(x.shape, generator=generator) * 2 - 1
    return (x + eps * noise.sign()).clamp(0, 1)
'''


def test_a_toy_attack_in_a_new_file_runs_through_the_normal_evaluation(tmp_path, one_thread):
    (tmp_path / "my_toy_attack.py").write_text(textwrap.dedent(TOY))
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.import_module("my_toy_attack")
        entry = REGISTRY["toy_noise"]
        assert entry.kind == "score-based" and entry.defaults == {}
        x_train, y_train = quadrants(256, seed=1)
        x, y = quadrants(16, seed=2)
        model = train_tiny(x_train, y_train, seed=0)
        table = evaluate(model, x, y, attacks={"clean": {}, "toy": {"attack": "toy_noise",
                                                                    "eps": 0.1},
                                               "pgd": {"eps": 0.1, "steps": 2}})
        rows = {r["name"]: r for r in table}
        assert rows["toy"]["threat_model"] == {"norm": "Linf", "eps": 0.1}
        assert rows["toy"]["max_linf"] <= 0.1 + 1e-6 and rows["toy"]["settings"]["eps"] == 0.1
        worst = rows["worst case (Linf, eps 0.1)"]
        assert worst["settings"]["of"] == ["toy", "pgd"]
        both = table.masks["toy"] & table.masks["pgd"]
        assert torch.equal(table.masks["worst case (Linf, eps 0.1)"], both)
    finally:
        REGISTRY.pop("toy_noise", None)
        sys.modules.pop("my_toy_attack", None)
        sys.path.remove(str(tmp_path))
