"""Verdicts read the numbers they name: reproduced, within noise and not reproduced each come
out where they should, and the comparison table formats every cell."""
from dfl_lib.figures.tables import comparison_markdown, records_markdown
from dfl_lib.paper.verdicts import (VERDICTS, verdict_depth, verdict_fig6, verdict_table5,
                              verdict_table_margin, verdict_wrn)


def _h(acc, loss=0.5):
    return [{"epoch": 1, "val_acc": acc / 2, "train_loss": loss + 1},
            {"epoch": 2, "val_acc": acc, "train_loss": loss}]


def _depth(plain, dfl, losses=(0.3, 0.4, 0.5)):
    out = {f"resnet{d}": _h(a, l) for d, a, l in zip((18, 34, 50), plain, losses)}
    out.update({f"resnet{d}+dfl": _h(a) for d, a in zip((18, 34, 50), dfl)})
    return out


def test_depth_verdicts_follow_the_numbers():
    paper_like = {v["claim"]: v["verdict"] for v in
                  verdict_depth(_depth((0.9, 0.8, 0.6), (0.7, 0.8, 0.9)), n_val=1000)}
    assert paper_like == {"fig1_deeper_less_convergence": "reproduced",
                          "fig135_deeper_better_with_dfl": "reproduced",
                          "fig3_dfl_resnet50_lower_error": "reproduced",
                          "fig5_resnet50_dfl_gain": "reproduced"}
    flat = {v["claim"]: v["verdict"] for v in
            verdict_depth(_depth((0.80, 0.80, 0.80), (0.80, 0.80, 0.80)), n_val=100)}
    assert set(flat.values()) == {"within noise"}
    reversed_ = {v["claim"]: v["verdict"] for v in
                 verdict_depth(_depth((0.5, 0.7, 0.9), (0.9, 0.7, 0.5)), n_val=1000)}
    assert reversed_["fig1_deeper_less_convergence"] == "not reproduced"
    assert reversed_["fig135_deeper_better_with_dfl"] == "not reproduced"
    assert reversed_["fig5_resnet50_dfl_gain"] == "not reproduced"  # 0.5 with DFL vs 0.9
    assert reversed_["fig3_dfl_resnet50_lower_error"] == "not reproduced"


def _cell(row, setting, column, ours, *, n=500, paper=50.0):
    return {"row": row, "setting": setting, "column": column, "ours": ours, "paper": paper,
            "label": row, "n_eval": n, "std": None, "diff": ours - paper, "seeds": 1,
            "strong": {}, "flags": [], "note": ""}


def _rows(values: dict, setting="adversarial training"):
    return [_cell(row, setting, col, v) for row, per in values.items()
            for col, v in zip(("FGSM", "PGD-10", "C&W"), per)]


def test_table_margin_verdicts():
    rows = _rows({"resnet": (50, 40, 40), "mustafa": (45, 35, 35), "dfl_pcl": (70, 60, 60)})
    big = verdict_table_margin(rows, claim="x", ours="dfl_pcl", setting="adversarial training",
                               claimed=10)
    assert big["verdict"] == "reproduced" and "+20.0" in big["numbers"]
    small = verdict_table_margin(rows, claim="x", ours="dfl_pcl", setting="adversarial training",
                                 claimed=37)
    assert small["verdict"] == "direction only"
    worse = verdict_table_margin(_rows({"resnet": (60, 50, 50), "dfl_pcl": (40, 30, 30)}),
                                 claim="x", ours="dfl_pcl", setting="adversarial training",
                                 claimed=None)
    assert worse["verdict"] == "not reproduced"
    tie = verdict_table_margin(_rows({"resnet": (50, 40, 40), "dfl_pcl": (51, 41, 40.5)}),
                               claim="x", ours="dfl_pcl", setting="adversarial training",
                               claimed=None)
    assert tie["verdict"] == "within noise"
    assert all(v["verdict"] in VERDICTS for v in (big, small, worse, tie))


def test_table5_and_wrn_verdicts():
    rows = _rows({"dfl": (60, 50, 50), "pcl": (40, 30, 30), "dfl_pcl": (70, 60, 60)},
                 setting="no defence") + \
        _rows({"dfl": (40, 30, 30), "pcl": (60, 50, 50), "dfl_pcl": (70, 60, 60)})
    got = {v["claim"]: v["verdict"] for v in verdict_table5(rows)}
    assert got == {"table5_dfl_no_defence": "reproduced", "table5_pcl_adversarial": "reproduced",
                   "table5_both_best": "reproduced"}
    wrn = verdict_wrn(_rows({"resnet_dfl_pcl": (60, 50, 50), "wrn": (40, 30, 30)}))
    assert wrn["verdict"] == "not reproduced"


def test_fig6_verdict():
    rising = {"pcl": [{"val_acc": 0.3}, {"val_acc": 0.9}], "dfl": [{"val_acc": 0.8},
                                                                     {"val_acc": 0.8}]}
    assert verdict_fig6(rising, n_val=500)["verdict"] == "reproduced"
    steady = {"pcl": [{"val_acc": 0.8}, {"val_acc": 0.8}], "dfl": [{"val_acc": 0.3},
                                                                     {"val_acc": 0.9}]}
    assert verdict_fig6(steady, n_val=500)["verdict"] == "not reproduced"


def test_comparison_markdown_has_one_line_per_row_group_and_every_paper_value():
    rows = _rows({"resnet": (50, 40, 40), "dfl_pcl": (70, 60, 60)})
    rows[0]["strong"] = {"AutoAttack": (33.0, None)}
    text = comparison_markdown(rows, title="Table X")
    body = [line for line in text.splitlines() if line.startswith("| adversarial")]
    assert len(body) == 2
    assert "FGSM paper" in text and "+20.0" in text and "33.0" in text
    table = records_markdown({"a": {"x": 0.12345, "y": "z"}})
    assert "| a | 0.123 | z |" in table


def test_depth_statement_says_plainly_whether_the_claim_shows_and_names_failed_runs():
    from dfl_lib.paper.verdicts import depth_statement

    finals = [{"depth": "ResNet-50", "variant": "with DFL", "setting": "PGD-10 training",
               "val_acc": 0.29}, {"depth": "ResNet-18", "variant": "with DFL",
                                  "setting": "PGD-10 training", "val_acc": 0.93}]
    no = depth_statement(verdict_depth(_depth((0.5, 0.7, 0.9), (0.9, 0.7, 0.5)), n_val=1000),
                         finals)
    assert no.startswith("Our curves do not show") and "ResNet-50 with DFL" in no
    assert "ResNet-18 with DFL" not in no
    yes = depth_statement(verdict_depth(_depth((0.9, 0.8, 0.6), (0.7, 0.8, 0.9)), n_val=1000), [])
    assert yes.startswith("Our curves show")
