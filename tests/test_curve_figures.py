"""Plot helpers: a figure from run histories, laid out by the records' labels."""
import pytest

from dfl_lib.figures.curves import curve_grid


def _records():
    hist = lambda a: [{"epoch": e, "train_acc": a * e, "val_acc": a} for e in (1, 2, 3)]  # noqa
    return [{"history": hist(0.1), "row": "ResNet-18", "loss": "CE", "remedy": "warm-up",
             "seed": 0},
            {"history": hist(0.2), "row": "ResNet-18", "loss": "PCL", "remedy": "warm-up",
             "seed": 0},
            {"history": hist(0.3), "row": "ResNet-50", "loss": "CE", "remedy": "none", "seed": 0}]


def test_curve_grid_has_a_panel_per_row_and_metric_and_a_line_per_record(tmp_path):
    fig = curve_grid(_records(), rows="row", hue="loss", style="remedy",
                     metrics={"train_acc": "train acc", "val_acc": "val acc"},
                     percent=("val_acc",), title="t")
    axes = fig.axes
    assert len(axes) == 4
    assert [len(ax.lines) for ax in axes] == [2, 2, 1, 1]
    assert axes[1].lines[0].get_ydata()[0] == pytest.approx(10.0)  # percent
    assert axes[0].get_title() == "ResNet-18: train acc" and axes[1].get_ylabel() == "val acc (%)"
    assert axes[1].lines[0].get_linestyle() != axes[3].lines[0].get_linestyle()  # by remedy
    fig.savefig(tmp_path / "x.png")
    assert (tmp_path / "x.png").stat().st_size > 0


def test_curve_grid_errors_are_clear():
    with pytest.raises(ValueError, match="no records"):
        curve_grid([], rows="row", hue="loss", style="remedy", metrics={"val_acc": "v"})
    with pytest.raises(KeyError, match="history"):
        curve_grid([{"row": 1}], rows="row", hue="loss", style="remedy", metrics={"v": "v"})


def test_a_record_without_its_seed_is_refused():
    """Figure 6 (b) was drawn from records without a seed and named none: a curve must say
    which seed it is, so curve_grid refuses a record that does not."""
    records = _records()
    records[1] = {k: v for k, v in records[1].items() if k != "seed"}
    with pytest.raises(KeyError, match=r"'seed'.*lack \['seed'\]"):
        curve_grid(records, rows="row", hue="loss", style="remedy", metrics={"val_acc": "v"})


def test_curve_grid_draws_listed_metrics_on_a_log_scale():
    records = [{"history": [{"epoch": 1, "loss": 1e7, "acc": 0.1},
                            {"epoch": 2, "loss": 1.0, "acc": 0.5}],
                "panel": "p", "hue": "h", "style": "s", "seed": 0}]
    fig = curve_grid(records, rows="panel", hue="hue", style="style",
                     metrics={"loss": "loss", "acc": "accuracy"}, log=("loss",))
    scales = [ax.get_yscale() for ax in fig.axes]
    assert scales == ["log", "linear"]


def test_seeds_of_one_configuration_are_one_mean_line_with_a_band_and_named_in_the_title():
    def hist(a):
        return [{"epoch": e, "val_acc": a} for e in (1, 2)]
    records = [{"history": hist(a), "row": "r", "loss": "CE", "remedy": "w", "seed": s}
               for s, a in enumerate((0.92, 0.94, 0.96))]
    fig = curve_grid(records, rows="row", hue="loss", style="remedy",
                     metrics={"val_acc": "val acc"}, percent=("val_acc",), title="T")
    ax = fig.axes[0]
    assert len(ax.lines) == 1 and ax.lines[0].get_ydata()[0] == pytest.approx(94.0)
    assert len(ax.collections) == 1  # the band from the lowest to the highest seed
    assert ax.get_ylim() == (0.0, 100.0)  # accuracy on the full axis
    assert "(3 seeds)" in ax.lines[0].get_label()
    assert "seeds 0, 1, 2" in fig._suptitle.get_text()


def test_runs_that_did_not_train_are_marked():
    records = [{"history": [{"epoch": 1, "val_acc": 0.11}], "row": "r", "loss": "CE",
                "remedy": "no warm-up", "seed": 0},
               {"history": [{"epoch": 1, "val_acc": 0.97}], "row": "r", "loss": "CE",
                "remedy": "warm-up", "seed": 0}]
    fig = curve_grid(records, rows="row", hue="loss", style="remedy",
                     metrics={"val_acc": "val acc"}, percent=("val_acc",), untrained_below=0.9)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["CE, no warm-up (seed 0) - did not train", "CE, warm-up (seed 0)"]


def test_a_long_metric_label_keeps_its_axis_label_short():
    """Figure 3's monitor panel wrapped "PGD-10 monitor error (100 images) (%)" over its title
    and the legend: the axis drops a trailing "(...)", the panel title keeps all of it."""
    fig = curve_grid(_records(), rows="row", hue="loss", style="remedy",
                     metrics={"val_acc": "PGD-10 monitor error (100 images)",
                              "train_acc": "(a) training error"}, percent=("val_acc",))
    assert fig.axes[0].get_ylabel() == "PGD-10 monitor error (%)"
    assert fig.axes[0].get_title() == "ResNet-18: PGD-10 monitor error (100 images)"
    assert fig.axes[1].get_ylabel() == "(a) training error"


def test_the_paper_vs_ours_legend_names_only_rows_with_a_cell_of_ours():
    from dfl_lib.figures.comparison import paper_vs_ours

    def cell(row, label, ours):
        return {"dataset": "mnist", "row": row, "label": label, "setting": "no defence",
                "column": "PGD-10", "paper": 50.0, "ours": ours, "std": 1.0, "seeds": 3}
    fig = paper_vs_ours({"Table 1": [cell("resnet", "ResNet", 10.0),
                                     cell("mustafa", "Mustafa et al.", None)]})
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "ResNet" in labels and "Mustafa et al." not in labels


def test_the_paper_vs_ours_panels_count_cells_by_seeds_and_the_title_names_the_models():
    """quick-full-clean trains its regime anchor at seed 0 beside 3-seed cells: "3 seed(s)
    each" would have called it a mean over 3 seeds."""
    from dfl_lib.figures.comparison import paper_vs_ours

    def cell(row, setting, seeds, dataset="mnist"):
        return {"dataset": dataset, "row": row, "label": row, "setting": setting,
                "column": "PGD-10", "paper": 50.0, "ours": 40.0, "std": None, "seeds": seeds}
    fig = paper_vs_ours({"Table 1": [cell("resnet", "no defence", 3), cell("dfl", "no defence", 3),
                                     cell("resnet", "adversarial training", 1),
                                     cell("resnet", "no defence", 1, "cifar10_jpeg")]},
                        models="ours: resnet18 (width 16) for the paper's ResNet-50 (quick)")
    assert fig.axes[0].get_title() == "MNIST (eps 0.3): 3 cells, 2 at 3 seeds, 1 at seed 0"
    assert fig.axes[1].get_title() == "CIFAR-10, JPEG copy (eps 0.03): 1 cell at seed 0"
    assert fig._suptitle.get_text().endswith("\nours: resnet18 (width 16) for the paper's "
                                             "ResNet-50 (quick)")


def test_the_paper_vs_ours_figure_crosses_out_cells_below_the_clean_floor():
    """quick-full-cifar's CIFAR-10 cells train to 9-39% clean against a floor of 70%: the
    figure showed them as any other cell."""
    from dfl_lib.figures.comparison import paper_vs_ours

    def cell(row, clean, dataset):
        return {"dataset": dataset, "row": row, "label": row, "setting": "no defence",
                "column": "PGD-10", "paper": 50.0, "ours": 10.0, "std": 1.0, "seeds": 3,
                "strong": {"clean": (clean, 1.0)}}
    fig = paper_vs_ours({"Table 2": [cell("resnet", 38.8, "cifar10_jpeg"),
                                     cell("dfl", 71.0, "cifar10_jpeg"),
                                     cell("resnet", 98.9, "mnist")]},
                        clean_floors={"mnist": 90.0, "cifar10_jpeg": 70.0})
    mnist, cifar = fig.axes[:2]
    assert "below" not in mnist.get_title()
    assert cifar.get_title().endswith("\n1 below the clean floor (70% clean, crossed): below "
                                      "regime")
    crosses = [line for line in cifar.get_lines() if line.get_marker() == "x"]
    assert len(crosses) == 1 and list(crosses[0].get_xdata()) == [50.0]
    assert "below the clean floor" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_adversarial_examples_name_their_network_and_scale_the_perturbation():
    import torch

    from dfl_lib.figures.explore import plot_adversarial_examples

    x = torch.rand(3, 1, 8, 8)
    batch = {"x": x, "x_adv": (x + 0.1).clamp(0, 1), "y": torch.tensor([0, 1, 2]),
             "pred": torch.tensor([0, 2, 2]), "confidence": torch.tensor([0.9, 0.8, 0.7])}
    fig = plot_adversarial_examples(batch, eps=0.1, attack="pgd", label="ResNet-18, seed 0")
    assert fig._suptitle.get_text().startswith("ResNet-18, seed 0\npgd at eps = 0.100")
    bars = fig.axes[9:]  # 3 rows x 3 images, then the perturbation row's colour scale
    assert len(bars) == 1 and "pixel units" in bars[0].get_ylabel()
    assert bars[0].get_ylim() == pytest.approx((-0.1, 0.1))


def test_a_single_seed_entry_names_its_seed_beside_a_mean_over_seeds():
    """Figure 5 (quick-full-depth): the PGD row's lines are means over 3 seeds, the clean row's
    seed 0 alone; unnamed, the same configuration had two legend entries, one unexplained."""
    def hist(a):
        return [{"epoch": e, "val_acc": a} for e in (1, 2)]
    records = ([{"history": hist(0.9), "row": "PGD", "loss": "CE", "remedy": "w", "seed": s}
                for s in (0, 1, 2)]
               + [{"history": hist(0.97), "row": "clean", "loss": "CE", "remedy": "w",
                   "seed": 0}])
    fig = curve_grid(records, rows="row", hue="loss", style="remedy",
                     metrics={"val_acc": "val acc"}, percent=("val_acc",), title="T")
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert labels == ["CE, w (3 seeds)", "CE, w (seed 0)"]


def test_a_one_seed_figure_says_seed_once_in_the_singular():
    records = [{"history": [{"epoch": 1, "val_acc": 0.9}], "row": "r", "loss": "CE",
                "remedy": "w", "seed": 0}]
    fig = curve_grid(records, rows="row", hue="loss", style="remedy",
                     metrics={"val_acc": "val acc"}, title="T")
    assert fig._suptitle.get_text() == "T\nseed 0"


def test_a_legend_of_long_labels_stays_within_the_figure_and_below_the_panels(tmp_path):
    """The warm-up control (two panels, seven labels of about 60 characters) drew a legend in
    four columns twice the figure's width; on a one-row figure it then covered the panels."""
    import matplotlib
    matplotlib.use("Agg")
    records = [{"history": [{"epoch": 1, "val_acc": 0.2 + 0.1 * i}, {"epoch": 2, "val_acc": 0.9}],
                "row": "ResNet-50", "kind": f"configuration number {i}, PGD-10 training, lr",
                "remedy": "no warm-up", "seed": 0} for i in range(7)]
    fig = curve_grid(records, rows="row", hue="kind", style="remedy",
                     metrics={"val_acc": "val acc", "train_acc": "t"}, title="T")
    fig.savefig(tmp_path / "x.png")  # draws: the extents below are the rendered ones
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    figure = fig.bbox
    assert legend.x0 >= figure.x0 and legend.x1 <= figure.x1
    lowest_panel = min(ax.get_tightbbox(renderer).y0 for ax in fig.axes)
    assert legend.y1 <= lowest_panel
