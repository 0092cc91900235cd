"""The named flawed evaluations: each is the honest evaluation (`attack.DEFAULTS`) with a few
options changed, a one-paragraph reason why it is wrong, and who described it. Combinations
merge their options (`combine`).

    FLAWS["train-mode-bn"].options     # {"mode": "train"}
    combine("eps-normalised", "softmax-clipped-log")

Every flaw is something a careful author could run without noticing: nothing here is the study's
evaluation (`dfl_lib.evaluation`), and nothing there can select these (tests/test_forensics.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError
from .attack import check_options

__all__ = ["Flaw", "FLAWS", "HONEST", "COMBINATIONS", "combine"]


@dataclass(frozen=True)
class Flaw:
    """A flawed evaluation: `options` for `attack.flawed_accuracy`, the paper's columns it
    applies to, the rows it needs ("any", "dfl" (a DFL row, so a plain twin exists), "pcl"),
    why it is wrong and its source."""
    name: str
    title: str
    options: dict
    why: str
    source: str
    columns: tuple[str, ...] = ("FGSM", "PGD-10", "C&W")
    rows: str = "any"
    parts: tuple[str, ...] = field(default=())


HONEST = Flaw("honest", "honest: eval mode, logits' CE (C&W: CW-inf), eps in pixels, clipped "
              "to [0, 1], true labels, every image", {},
              "The study's evaluation (the library's FGSM, PGD-10 and CW-inf, last iterate).",
              "Madry et al. 2018; Carlini et al. 2019, 'On evaluating adversarial robustness'")

_FLAWS = (
    Flaw("softmax-clipped-log", "CE on probabilities clipped to [1e-7, 1 - 1e-7]",
         {"objective": "clipped_log_softmax"},
         "Cross-entropy computed as -log(clip(softmax(z)_y, 1e-7, 1 - 1e-7)), as Keras' "
         "categorical_crossentropy does on probability outputs. Where the true class is more "
         "confident than 1 - 1e-7 (most clean images of a confident clean-trained network) the "
         "clip is flat: the gradient is exactly zero, sign(0) = 0, and the image never moves. "
         "The network looks robust because the attack is blind, not because it is.",
         "keras.backend.categorical_crossentropy (epsilon 1e-7); Carlini & Wagner 2016, "
         "'Defensive distillation is not robust to adversarial examples' (softmax saturation); "
         "Athalye et al. 2018 (vanishing gradients)", columns=("FGSM", "PGD-10")),
    Flaw("softmax-probability", "ascend 1 - p_y (softmax probability) instead of CE",
         {"objective": "probability"},
         "The attack maximises 1 - softmax(z)_y. Its gradient carries the factor p_y (1 - p_y), "
         "which underflows on confident predictions, so the sign step is taken on rounding "
         "noise or not at all. Carlini & Wagner compared such objectives and found those on "
         "probabilities much weaker than those on logits.",
         "Carlini & Wagner 2017, 'Towards evaluating the robustness of neural networks', "
         "Section V.A (objective functions)", columns=("FGSM", "PGD-10")),
    Flaw("train-mode-bn", "BatchNorm (and the DFL's) in train mode while attacking and judging",
         {"mode": "train"},
         "model.eval() forgotten: every BatchNorm layer normalises with the statistics of the "
         "adversarial batch itself, so the attack optimises against a moving target and the "
         "judged network is not the one deployed (its running statistics also drift with "
         "every attacked batch).",
         "bethgelab/foolbox issue 74 ('PyTorch models need to be in eval mode'); "
         "yaodongyu/TRADES issue 3 (Carlini: outputs depend on batch contents); "
         "Trusted-AI/adversarial-robustness-toolbox issue 484"),
    Flaw("train-mode-attack", "BatchNorm in train mode while attacking, eval mode when judging",
         {"mode": "train_attack"},
         "The attack's gradients come from the train-mode network (batch statistics), the "
         "accuracy from the eval-mode one: an unintended transfer attack from a different "
         "function.",
         "MadryLab/cifar10_challenge issue 22; locuslab/fast_adversarial issue 14"),
    Flaw("eps-normalised", "eps = 0.3 applied to standardised inputs (about 0.09 in pixels)",
         {"eps_units": "normalised"},
         "The images are standardised by the data loader ((x - 0.1307) / 0.3081 on MNIST) and "
         "the attack's eps and step size are applied to that tensor: 0.3 there is 0.3 x 0.3081 "
         "= 0.092 in pixel units, less than a third of the reported budget.",
         "Carlini et al. 2019, 'On evaluating adversarial robustness' (state the threat model "
         "in the input's units)"),
    Flaw("no-clip", "no clipping of the adversarial image to [0, 1]",
         {"clip": "none"},
         "The perturbed image is never clamped to the valid pixel range: the attack may leave "
         "the input domain, which makes it stronger than the threat model allows (a flaw that "
         "lowers accuracy: it cannot explain a high one).",
         "Carlini et al. 2019 (valid input domain)"),
    Flaw("delta-clipped", "the perturbation, not the image, clamped to [0, 1]",
         {"clip": "delta"},
         "torch.clamp applied to delta instead of x + delta: every darkening step is undone, "
         "so only brightening perturbations survive. On MNIST's white-on-black digits the "
         "attack can then only add strokes, never erase them.",
         "a clipping slip of the kind Carlini et al. 2019 ask to check (Section 4: verify the "
         "perturbation stays what the threat model allows)"),
    Flaw("cw-fixed-c", "C&W-L2 at c = 0.1, 10 Adam steps, no search, read as accuracy",
         {"cw": "fixed_c"},
         "The paper's stated C&W setting. C&W-L2 is a minimum-norm attack: with a fixed small c "
         "and 10 steps of lr 0.01 it barely moves pixels at exactly 0 or 1 (the tanh box) and "
         "gives up on what needs more, so its 'accuracy' is close to clean accuracy on any "
         "network.",
         "Carlini & Wagner 2017 (the binary search over c is part of the attack); the paper's "
         "Section 4.2", columns=("C&W",)),
    Flaw("feature-attack", "ascend the distance of the penultimate features from the clean ones",
         {"objective": "features"},
         "The attack pushes the features away from where they were instead of pushing the "
         "logits across a decision boundary: a large feature move need not change the class, "
         "so accuracy under it says little about robustness.",
         "Tramer et al. 2020, 'On adaptive attacks to adversarial example defenses' (attack the "
         "decision, not a proxy); Sabour et al. 2016 (feature adversaries)",
         columns=("FGSM", "PGD-10")),
    Flaw("centroid-attack", "ascend the PCL distance to the true class's centroid",
         {"objective": "centroid"},
         "The attack ascends the loss's own feature distance to the true centroid: on the unit "
         "sphere it can grow without the logits changing their order, so it misses the "
         "decision.",
         "Tramer et al. 2020 (attacking the defence's loss instead of the classifier)",
         columns=("FGSM", "PGD-10"), rows="pcl"),
    Flaw("clean-prediction-judge", "attacked images judged against the clean predictions",
         {"judge": "clean_predictions"},
         "Accuracy counted as 'the prediction did not change' instead of 'the prediction is the "
         "true label': a misclassified clean image that stays misclassified counts as robust.",
         "Carlini et al. 2019 (report accuracy on the true labels)"),
    Flaw("correct-subset", "accuracy over the clean-correct images only",
         {"judge": "correct_subset"},
         "Robust accuracy reported over the images the network classifies correctly without "
         "attack, not over the test set: it reads higher by the clean errors.",
         "Carlini et al. 2019 (robust accuracy over the whole test set)"),
    Flaw("transfer-from-plain", "attack crafted on the network without the DFL, judged on the DFL "
         "network", {"source": "plain"},
         "The attack runs on another model (here the plain ResNet of the same setting and "
         "seed, as if the DFL had not been plugged into the attacked graph) and the DFL network "
         "is judged: an unintended transfer attack, weaker than white-box.",
         "Athalye et al. 2018; Carlini et al. 2019 (a transfer attack is no white-box "
         "evaluation)", rows="dfl"),
)
FLAWS = {f.name: f for f in _FLAWS}

# combinations a careless pipeline could plausibly stack (each part also stands alone)
COMBINATIONS = (("train-mode-bn", "softmax-clipped-log"),
                ("eps-normalised", "softmax-clipped-log"),
                ("eps-normalised", "train-mode-bn"),
                ("transfer-from-plain", "eps-normalised"),
                ("eps-normalised", "train-mode-bn", "softmax-clipped-log"))


def combine(*names: str) -> Flaw:
    """The flaws `names` stacked: options merged (UsageError if two set one option
    differently), columns and rows the strictest of the parts."""
    unknown = [n for n in names if n not in FLAWS]
    if unknown or not names:
        raise UsageError(f"unknown flaws {unknown or names}; known: {', '.join(FLAWS)}")
    parts = [FLAWS[n] for n in names]
    options: dict = {}
    for f in parts:
        for key, value in f.options.items():
            if options.get(key, value) != value:
                raise UsageError(f"flaws {names} set {key} twice ({options[key]!r}, {value!r})")
            options[key] = value
    check_options(options)
    columns = tuple(c for c in ("FGSM", "PGD-10", "C&W") if all(c in f.columns for f in parts))
    rows = next((f.rows for f in parts if f.rows == "pcl"), None) or \
        next((f.rows for f in parts if f.rows == "dfl"), "any")
    return Flaw(" + ".join(names), " + ".join(f.title for f in parts), options,
                " ".join(f.why for f in parts), "; ".join(f.source for f in parts),
                columns=columns, rows=rows, parts=tuple(names))
