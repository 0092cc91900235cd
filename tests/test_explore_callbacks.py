"""The epsilon explorer's widget callbacks: a failure shows inside the explorer (the Output
widget holds the traceback, the status label names the exception) and the explorer keeps
working; the explorer refuses a model partly in train mode and never changes a model's buffers
or modes. Widgets are driven as in a kernel without a front end: ipywidgets fires observers
synchronously on `widget.value = ...` and handlers on `button.click()`."""
import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from dfl_lib.errors import UsageError  # noqa: E402
from dfl_lib.figures.explore import adversarial_drawer, attack_batch, explorer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- helpers

def _find(box, kind):
    """The widgets of type `kind` in `box`, depth first: found by kind as a user sees them, so a
    test fails at the behaviour it checks rather than at a missing attribute."""
    found = [box] if isinstance(box, kind) else []
    for child in getattr(box, "children", ()):
        found += _find(child, kind)
    return found


def _output_text(out) -> str:
    """All text in the Output widget's outputs (stream text, error tracebacks, text/plain)."""
    parts = []
    for o in out.outputs:
        parts.append(o.get("text", ""))
        parts.extend(o.get("traceback", []))
        parts.append(o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _shows_figure(out) -> bool:
    return any("image/png" in o.get("data", {}) for o in out.outputs)


def _failing_draw(*, bad_eps=None, bad_attack=None):
    """draw(eps, attack) that opens its figure, then raises RuntimeError (a two-line message) for
    eps >= bad_eps or attack == bad_attack, as a plot failing midway; otherwise returns the
    figure and a line in the explorer's usual 'eps ...' form."""
    def draw(eps, attack):
        fig, ax = plt.subplots(figsize=(1, 1))
        if (bad_eps is not None and eps >= bad_eps) or attack == bad_attack:
            raise RuntimeError(f"no figure at eps {eps:.2f} with {attack}\nsecond line")
        ax.plot([0, eps])
        return fig, f"eps {eps:.3f}, {attack}: fine"
    return draw


def _tiny_model():
    """Conv + BatchNorm + Linear on 1x8x8 inputs, 3 classes, with non-default BN buffers (a few
    train-mode forwards), returned in eval mode."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, 1, 8, 8))
    return model.eval()


def _batch():
    gen = torch.Generator().manual_seed(1)
    return torch.rand(4, 1, 8, 8, generator=gen), torch.tensor([0, 1, 2, 0])


def _snapshot(model):
    """Every buffer and parameter (cloned) and every submodule's mode."""
    return ({k: v.detach().clone() for k, v in model.state_dict().items()},
            [m.training for m in model.modules()])


def _assert_unchanged(model, before):
    state, modes = before
    now = model.state_dict()
    for key, value in state.items():
        assert torch.equal(now[key], value), f"{key} changed"
    assert [m.training for m in model.modules()] == modes


# --------------------------------------------------------------------------- callbacks

def test_epsilon_slider_failure_is_shown_inside_the_explorer_and_it_recovers():
    ui = explorer(_failing_draw(bad_eps=0.2), attacks=("pgd", "fgsm"), interactive=True)
    [slider], [out] = _find(ui, widgets.FloatSlider), _find(ui, widgets.Output)

    slider.value = 0.25  # an observer raising here would escape to JupyterLab's log console
    assert ui.status.value == "failed: RuntimeError: no figure at eps 0.25 with pgd"
    assert "RuntimeError: no figure at eps 0.25 with pgd" in _output_text(out)
    assert "Traceback" in _output_text(out) and not _shows_figure(out)  # old figure gone
    assert ui.text.value == ""  # no stale line of the previous epsilon

    slider.value = 0.05
    assert ui.status.value == "ok" and _shows_figure(out)
    assert ui.text.value == "eps 0.050, pgd: fine"
    assert "Traceback" not in _output_text(out)


def test_attack_selector_failure_is_shown_inside_the_explorer_and_it_recovers():
    ui = explorer(_failing_draw(bad_attack="fgsm"), attacks=("pgd", "fgsm"), interactive=True)
    [choice], [out] = _find(ui, widgets.Dropdown), _find(ui, widgets.Output)

    choice.value = "fgsm"
    assert ui.status.value == "failed: RuntimeError: no figure at eps 0.10 with fgsm"
    assert "second line" in _output_text(out)  # the whole message in the traceback only

    choice.value = "pgd"
    assert ui.status.value == "ok" and _shows_figure(out)
    assert ui.text.value == "eps 0.100, pgd: fine"


def test_a_plot_failing_midway_is_reported_and_leaves_no_open_figure():
    plt.close("all")
    ui = explorer(_failing_draw(bad_eps=0.2), attacks=("pgd",), interactive=True)
    [slider] = _find(ui, widgets.FloatSlider)
    assert plt.get_fignums() == []  # the drawn figure lives on as PNG in the Output only

    slider.value = 0.3
    assert ui.status.value.startswith("failed: RuntimeError:")
    assert plt.get_fignums() == []  # the half-drawn figure is closed, not shown under a cell


def test_a_failing_first_draw_still_gives_a_working_explorer():
    ui = explorer(_failing_draw(bad_eps=0.1), attacks=("pgd",), interactive=True,
                  eps_values=(0.0, 0.15))
    [slider], [out] = _find(ui, widgets.FloatSlider), _find(ui, widgets.Output)
    assert ui.status.value.startswith("failed: RuntimeError: no figure at eps 0.15")
    assert "RuntimeError" in _output_text(out)

    slider.value = 0.0
    assert ui.status.value == "ok" and _shows_figure(out)


def test_button_callbacks_wired_like_the_explorer_report_their_failure():
    """Any button the explorer gains is wired through the same guard as its sliders."""
    from dfl_lib.figures.explore import _shows_errors  # the explorer's one wiring of every callback

    out, status, clicks = widgets.Output(), widgets.Label(value="ok"), []

    def on_click(button):
        clicks.append(button)
        if len(clicks) == 1:
            raise KeyError("missing")

    button = widgets.Button(description="redraw")
    button.on_click(_shows_errors(on_click, out=out, status=status))
    button.click()
    assert status.value == "failed: KeyError: 'missing'"
    assert "KeyError" in _output_text(out)
    button.click()  # still wired: the second click runs
    assert clicks == [button, button]


# --------------------------------------------------------------------------- the model guard

def test_a_model_partly_in_train_mode_is_refused_and_left_as_it_was():
    model = _tiny_model()
    x, y = _batch()
    model[1].train()  # one BatchNorm back in train mode; the top module stays in eval mode
    before = _snapshot(model)

    with pytest.raises(UsageError, match=r"before exploring.*in train mode: 1\)"):
        adversarial_drawer(model, x, y)
    with pytest.raises(UsageError, match="before exploring"):
        attack_batch(model, x, y, attack="pgd", eps=0.0)  # eps 0: no attack runs to check it
    _assert_unchanged(model, before)  # refused, never switched to eval (nor run in train mode)

    model[1].eval()
    draw = adversarial_drawer(model, x, y)
    model[1].train()  # switched back after the drawer was built
    with pytest.raises(UsageError, match="before exploring"):
        explorer(draw, attacks=("pgd",), interactive=True)
    _assert_unchanged(model, before)


def test_redraws_never_change_the_models_buffers_or_modes():
    model = _tiny_model()
    x, y = _batch()
    before = _snapshot(model)
    ui = explorer(adversarial_drawer(model, x, y), attacks=("pgd", "fgsm", "cw_pgd"),
                  interactive=True, eps_max=0.3)
    [slider], [choice] = _find(ui, widgets.FloatSlider), _find(ui, widgets.Dropdown)
    for eps, attack in ((0.0, "pgd"), (0.2, "pgd"), (0.2, "fgsm"), (0.05, "cw_pgd")):
        choice.value, slider.value = attack, eps
        want = f"eps {eps:.3f}, {attack}: predictions"
        assert any(label.value.startswith(want) for label in _find(ui, widgets.Label))
    _assert_unchanged(model, before)
    assert not any(m.training for m in model.modules())

    # a BatchNorm switched to train mode after the explorer was built: the next redraw (eps 0,
    # a plain forward that would rewrite its running stats) is refused inside the explorer
    model[1].train()
    slider.value = 0.0
    assert model[1].training  # refused, not switched back behind the user's back
    model[1].eval()
    _assert_unchanged(model, before)
    assert ui.status.value.startswith("failed: UsageError: put the model in eval mode")
    assert "UsageError" in _output_text(ui.output)
    slider.value = 0.1  # fixed by the user: the explorer works again
    assert ui.status.value == "ok"


def test_attack_names_the_drawer_cannot_run_are_refused_when_the_explorer_is_built():
    x, y = _batch()
    draw = adversarial_drawer(_tiny_model(), x, y)
    for attacks in (("pgd", "autoattack"), ("PGD",)):
        with pytest.raises(UsageError, match="unknown explorer attack.*known: cw_pgd, fgsm, pgd"):
            explorer(draw, attacks=attacks, interactive=True)
        with pytest.raises(UsageError, match="unknown explorer attack"):
            explorer(draw, attacks=attacks, interactive=False)
    for attacks in ((), "pgd"):  # nothing to choose; a string is not a sequence of names
        with pytest.raises(UsageError, match="non-empty sequence of attack names"):
            explorer(draw, attacks=attacks, interactive=True)
