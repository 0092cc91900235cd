"""The poisoning figures read as their captions say: one legend entry per defence row (the
quick report listed "ResNet (CE)" twice, once per panel row), every panel with its own y scale
(sharey hid the right panels' tick labels), the detection legend off the bars."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from dfl_lib.figures.poisoning import detection_bars, poison_bars  # noqa: E402

_ROWS = ("resnet", "dfl", "pcl", "dfl_pcl")


def _records():
    out = []
    for row in _ROWS:
        for poison in ("none", "badnets", "label_flip"):
            seeds = (0, 1, 2) if poison == "badnets" and row in ("resnet", "dfl_pcl") else (0,)
            for seed in seeds:
                rec = {"poison": poison, "row": row, "setting": "no defence", "seed": seed,
                       "fraction": 0.0 if poison == "none" else 0.1,
                       "clean_accuracy": 97.0 + seed,
                       "detection": {"activation clustering": {"auroc": 0.9},
                                     "spectral signatures": {"auroc": 0.7}}}
                if poison == "badnets":
                    rec["attack_success_rate"] = 99.0
                out.append(rec)
        if row in ("resnet", "dfl_pcl"):
            out.append({"poison": "badnets", "row": row, "setting": "PGD training", "seed": 0,
                        "fraction": 0.1, "clean_accuracy": 95.0, "attack_success_rate": 98.0})
    return out


def _legend_labels(fig):
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_poison_bars_has_one_legend_entry_per_row_with_its_seed_counts():
    fig = poison_bars(_records(), fraction=0.1)
    labels = _legend_labels(fig)
    assert len(labels) == len(_ROWS)
    assert labels[0] == "ResNet (CE) (1 or 3 seeds per bar)"
    assert labels[1] == "DFL only (1 seed per bar)"
    plt.close(fig)


def test_every_poisoning_panel_shows_its_y_scale():
    for fig in (poison_bars(_records(), fraction=0.1), detection_bars(_records())):
        for ax in fig.axes:
            assert [t for t in ax.get_yticklabels() if t.get_visible() and t.get_text()], ax.get_title()
        plt.close(fig)


def test_the_detection_legend_lies_below_the_panels():
    fig = detection_bars(_records())
    assert not [ax for ax in fig.axes if ax.get_legend() is not None]
    assert _legend_labels(fig) == ["ResNet (CE)", "DFL only", "PCL only", "DFL + PCL"]
    plt.close(fig)


def test_every_poison_bars_panel_puts_the_poisons_at_the_same_places():
    fig = poison_bars(_records(), fraction=0.1)
    assert len({ax.get_xlim() for ax in fig.axes}) == 1
    plt.close(fig)


def test_the_poisoned_umap_explains_its_colours_and_markers_in_a_legend():
    """The figure's dots and crosses were explained only in its title: the legend names each
    class colour and both markers."""
    import numpy as np

    from dfl_lib.figures.poisoning import poisoned_umap

    rng = np.random.default_rng(0)
    panel = {"clean_2d": rng.normal(size=(30, 2)), "clean_y": np.arange(30) % 3,
             "poison_2d": rng.normal(size=(5, 2)), "poison_y": np.array([1, 2, 1, 2, 1]),
             "target": 0}
    fig = poisoned_umap({"ResNet (CE)": panel, "DFL": panel}, title="T")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["class 0", "class 1", "class 2", "clean training sample",
                      "poisoned training sample (colour: original class)"]
    assert [h.get_marker() for h in fig.legends[0].legend_handles][-2:] == ["o", "X"]


def test_poison_bars_draws_only_the_settings_and_rows_that_ran():
    """The quick report drew two empty 'PGD training' panels and left gaps for the two defence
    rows it never ran: a setting the records lack is named in the title, not drawn, and the
    bars of the rows that ran sit side by side, centred on their poison."""
    records = [r for r in _records() if r["setting"] == "no defence"
               and r["row"] in ("resnet", "dfl_pcl")]
    fig = poison_bars(records, fraction=0.1)
    assert len(fig.axes) == 2
    assert "PGD training: not run at this profile" in fig._suptitle.get_text()
    bars = sorted(round(p.get_x() + p.get_width() / 2, 6) for p in fig.axes[0].patches)
    assert bars == [-0.2, 0.2, 0.8, 1.2, 1.8, 2.2]
    assert _legend_labels(fig) == ["ResNet (CE) (1 or 3 seeds per bar)",
                                   "DFL + PCL (1 or 3 seeds per bar)"]
    notes = [t.get_text() for t in fig.axes[1].texts]
    assert notes == ["no backdoor", "no backdoor"]  # 'none' and 'label_flip' have none
    plt.close(fig)


def test_a_poison_not_run_in_a_setting_reads_not_run_not_no_backdoor():
    """quick-full-poisoning ran the clean-label backdoor without PGD training only: its PGD
    success panel said "no backdoor", which it is not."""
    records = [r for r in _records() if r["row"] in ("resnet", "dfl_pcl")]
    records = [r for r in records if r["setting"] == "no defence"] + [
        {**r, "setting": "PGD training"} for r in records
        if r["setting"] == "no defence" and r["poison"] == "none"]
    fig = poison_bars(records, fraction=0.1)
    pgd_clean, pgd_success = fig.axes[1], fig.axes[3]
    assert "not run" in [t.get_text() for t in pgd_clean.texts]
    assert "no backdoor" in [t.get_text() for t in pgd_success.texts]  # 'none' ran there
    assert [t.get_text() for t in pgd_success.texts].count("not run") == \
        len({r["poison"] for r in records}) - 1
    plt.close(fig)


def test_the_rate_sweep_labels_its_axis_with_the_shares_tried():
    """A two-point sweep (5% and 10%) spans less than a decade: the log axis labelled its minor
    ticks "5x10^0"; the ticks are the shares tried, written as numbers."""
    from dfl_lib.figures.poisoning import rate_sweep

    records = [{**r, "fraction": f} for r in _records() if r["poison"] == "badnets"
               and r["setting"] == "no defence" and r["seed"] == 0 for f in (0.05, 0.1)]
    fig = rate_sweep(records)
    fig.canvas.draw()
    for ax in fig.axes:
        shown = [t.get_text() for t in ax.get_xticklabels(which="both") if t.get_text()]
        assert shown == ["5", "10"], shown
    plt.close(fig)
