"""Each figure a notebook saves is written in its profile's formats (`Profile.figure_formats`):
PNG and PDF for the reports people read, PNG alone at smoke (the tests' profile)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from dfl_lib.study import notebook as nbmod  # noqa: E402


@pytest.mark.parametrize("profile, formats", [("quick", {"png", "pdf"}), ("smoke", {"png"})])
def test_a_figure_is_saved_in_its_profiles_formats(tmp_path, monkeypatch, profile, formats):
    monkeypatch.setattr(nbmod, "set_threads", lambda *a, **k: 1)  # the test's one thread stays
    nb = nbmod.Notebook("04-training-curves", profile=profile, out_dir=str(tmp_path),
                        runs_dir=str(tmp_path / "runs"))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = nb.save_figure(fig, "curve")
    assert path.endswith("curve.png") and nb.figures == ["curve.png"]
    assert {p.suffix[1:] for p in (tmp_path / "04-training-curves").iterdir()} == formats
