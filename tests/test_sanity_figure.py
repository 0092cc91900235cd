"""Sanity curves and the masking checks' numbers (issue 39, item 4), drawn from the committed
record's headline metrics of the quick study (no attack runs): every headline cell gets a line
that starts at its clean accuracy and ends at eps 1 where the masking check measured it, the
attack-strength panel names the attacks weaker to stronger, and every check is listed with the
numbers behind its flag."""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from dfl_lib.errors import UsageError  # noqa: E402
from dfl_lib.figures.sanity import masking_numbers, sanity_curves  # noqa: E402

RECORD = Path(__file__).resolve().parents[1] / "reports" / "quick" / "record" / "runs"


def _cells():
    cells = {}
    for path in sorted(RECORD.glob("*-pgd-s0-*/metrics-headline.json")):
        metrics = json.loads(path.read_text())
        row = "dfl_pcl" if "-dfl-pcl-" in path.parent.name else "resnet"
        cells[("mnist", row, "adversarial training")] = {"headline": metrics, "per_seed": []}
    return cells


def test_the_curves_start_clean_and_reach_eps_one():
    cells = _cells()
    assert len(cells) == 2
    fig = sanity_curves(cells, title="T")
    a, b, c = fig.axes[:3]
    assert len(a.lines) == 2
    for line, found in zip(a.lines, cells.values()):
        xs, ys = line.get_data()
        clean = next(r for r in found["headline"]["table"] if r["name"] == "clean")
        assert xs[0] == 0.0 and ys[0] == pytest.approx(100 * clean["accuracy"])
        assert xs[-1] == 1.0 and ys[-1] == 0.0  # MNIST models reach 0 at eps 1 (no masking)
    assert [t.get_text() for t in b.get_xticklabels()] == [
        "FGSM", "PGD-10", "PGD-50 x3 restarts", "AutoAttack"]
    assert len(c.patches) == 2 * 3  # white-box, Square, transfer for each cell
    plt.close(fig)


def test_every_check_is_listed_with_its_numbers():
    rows = masking_numbers(_cells())
    assert len(rows) == 2 * 7
    sweep = next(v for k, v in rows.items() if k.endswith("ResNet (CE), adversarial training "
                                                          "(mnist, seed 0) / eps_sweep"))
    assert sweep["passed"] is True and "accuracy [0.9, 0, 0, 0]" in sweep["numbers"]
    assert all("|" not in k for k in rows)  # the keys go into a markdown table


def test_no_headline_evaluation_is_a_usage_error():
    with pytest.raises(UsageError, match="no headline evaluation"):
        sanity_curves({("mnist", "resnet", "no defence"): {"per_seed": []}})
