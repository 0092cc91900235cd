"""The forensics heatmap (notebook 08), drawn with seaborn: every evaluated cell carries its
number, the paper's printed row in bold, a red outline exactly where the paper's number lies
inside the cell's interval, and only the models the records hold get columns."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from dfl_lib.figures.forensics import forensics_heatmap  # noqa: E402


def _records():
    out = []
    for setting in ("no defence", "adversarial training"):
        for flaw, acc in (("honest", 0.0), ("eps-normalised", 60.0)):
            for row in ("resnet", "dfl_pcl"):
                for column in ("FGSM", "PGD-10", "C&W"):
                    out.append({"flaw": flaw, "row": row, "setting": setting, "column": column,
                                "accuracy": acc + (column == "FGSM"), "paper": 57.0, "n": 250,
                                "inside": flaw == "eps-normalised" and row == "dfl_pcl"})
    return out


def test_the_heatmap_numbers_outlines_and_columns():
    fig = forensics_heatmap(_records(), title="T")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 2
    for ax in panels:
        texts = [t.get_text() for t in ax.texts]
        assert len(texts) == 3 * 6  # paper, honest, flaw rows x 2 models x 3 columns
        assert [t.get_fontweight() for t in ax.texts if t.get_position()[1] < 1] == ["bold"] * 6
        outlines = [p for p in ax.patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
        assert len(outlines) == 3  # eps-normalised on DFL + PCL's three columns
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert not [label for label in labels if label.startswith("DFL only")]
    plt.close(fig)
