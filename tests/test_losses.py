"""Losses: values against hand computations on tiny tensors, gradients where norms and arccos are
singular, boundedness, batch-mean scaling, and the registry's errors."""
import math

import pytest
import torch
import torch.nn.functional as F

from dfl_lib.losses import (LOSSES, AdditiveMarginSoftmax, CenterLoss, CrossEntropy,
                            LegacyPolarisedContrastiveLoss, PolarisedContrastiveLoss,
                            PrototypeConformityLoss, build_loss, pairwise_distance)

K, D = 4, 6
DIMS = {"pooled": 5, "penultimate": D}


def val(t) -> float:
    """A scalar tensor's value (detached: the centroids require grad)."""
    return float(t.detach())


def batch(n=8, dims=DIMS, k=K, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g)
    y = torch.arange(n) % k
    feats = {name: torch.randn(n, d, generator=g) for name, d in dims.items()}
    return logits, y, feats


def cosine_logits(n=8, k=K, d=D, scale=30.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    f, w = torch.randn(n, d, generator=g), torch.randn(k, d, generator=g)
    return scale * F.normalize(f, dim=1) @ F.normalize(w, dim=1).T  # (n, k)


def set_centroids(loss, c):
    with torch.no_grad():
        loss.centroids.copy_(c)


# --------------------------------------------------------------------------- PCL
# Both forms: the study's PCL on directions (unit sphere) and the legacy raw-distance form.
PCLS = [PolarisedContrastiveLoss, LegacyPolarisedContrastiveLoss]


def pcl_points(loss, f):
    """(features, centroids) in the space where the loss measures distances."""
    c = loss.centroids.detach()
    if isinstance(loss, LegacyPolarisedContrastiveLoss):
        return f, c
    return f / (f.pow(2).sum(1, keepdim=True) + loss.norm_floor ** 2).sqrt(), F.normalize(c, dim=1)


def pcl_by_hand(loss, logits, y, f):
    """The documented formula, one sample and one class at a time."""
    (f, c), m, eps = pcl_points(loss, f), loss.margin, loss.cos_eps
    intra, push, angle = [], [], []
    for i in range(len(y)):
        yi = int(y[i])
        intra.append(val(torch.linalg.norm(f[i] - c[yi])))
        others = [j for j in range(len(c)) if j != yi]
        push.append(sum(max(0.0, m - val(torch.linalg.norm(f[i] - c[j]))) for j in others)
                    / len(others))
        cosines = [val(F.cosine_similarity(c[yi], c[j], dim=0)) for j in others]
        angle.append(sum((math.pi - math.acos((1 - eps) * u)) / math.pi for u in cosines)
                     / len(others))
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    return {"ce": val(F.cross_entropy(logits, y)), "intra": loss.w_intra * mean(intra),
            "inter_push": loss.w_inter * mean(push), "inter_angle": loss.w_inter * mean(angle)}


@pytest.mark.parametrize("cls,margin", [(PolarisedContrastiveLoss, 1.3),
                                        (LegacyPolarisedContrastiveLoss, 3.5)])
def test_pcl_matches_hand_computation_and_total_is_the_sum(cls, margin):
    logits, y, feats = batch()
    loss = cls(K, D, w_intra=2.0, w_inter=0.5, margin=margin)
    got = loss.components(logits, y, feats)
    want = pcl_by_hand(loss, logits, y, feats["penultimate"])
    assert set(got) == {"ce", "intra", "inter_push", "inter_angle"}
    for name in want:
        assert val(got[name]) == pytest.approx(want[name], rel=1e-5), name
    assert want["inter_push"] > 0  # the margin is active in this batch, so the hinge is tested
    assert val(loss(logits, y, feats)) == pytest.approx(sum(want.values()), rel=1e-5)


def test_pcl_default_margins():
    assert PolarisedContrastiveLoss(K, 64).margin == pytest.approx(math.sqrt(2))  # orthogonal
    assert LegacyPolarisedContrastiveLoss(K, 64).margin == pytest.approx(8.0)  # sqrt(d)
    assert PolarisedContrastiveLoss(K, 64, margin=0.0).margin == 0.0  # 0 is a margin, not "default"


def test_pcl_centroids_start_where_non_negative_features_can_reach_them():
    d = 64
    loss = PolarisedContrastiveLoss(10, d, seed=3)
    c = loss.centroids.detach()
    assert (c >= 0).all() and torch.allclose(c.norm(dim=1), torch.ones(10))
    y = torch.arange(10)
    # features (post-ReLU, non-negative) on their centroids, at any scale: no intra distance
    for scale in (0.3, 1.0, 30.0):
        assert val(loss.regulariser(scale * c, y)["intra"]) < 1e-3
    # the legacy form's N(0, 1) centroids: the nearest non-negative feature, relu(c), stays
    # ~sqrt(d / 2) away, a floor no training can remove
    legacy = LegacyPolarisedContrastiveLoss(10, d, seed=3)
    floor = val(legacy.regulariser(F.relu(legacy.centroids.detach()), y)["intra"])
    assert floor > 0.5 * math.sqrt(d)


def test_pcl_optimum_is_reachable_with_orthogonal_centroids():
    loss = PolarisedContrastiveLoss(K, D)
    set_centroids(loss, torch.eye(K, D))  # orthogonal unit vectors in the positive orthant
    y = torch.tensor([0, 1, 2, 3, 2])
    terms = loss.regulariser(3.7 * torch.eye(K, D)[y], y)
    assert val(terms["intra"]) < 1e-3 and val(terms["inter_push"]) < 1e-3


@pytest.mark.parametrize("scale", [0.1, 10.0, 1e4])
def test_pcl_regulariser_does_not_depend_on_the_feature_scale(scale):
    # directions only: shrinking or inflating features cannot lower the regulariser
    _, y, feats = batch()
    f = feats["penultimate"].abs() + 0.1
    loss = PolarisedContrastiveLoss(K, D)
    base = {k: val(v) for k, v in loss.regulariser(f, y).items()}
    scaled = {k: val(v) for k, v in loss.regulariser(scale * f, y).items()}
    assert scaled == pytest.approx(base, rel=2e-3)
    # the legacy form is not scale-free: far from every centroid its push vanishes
    legacy = LegacyPolarisedContrastiveLoss(K, D)
    assert val(legacy.regulariser(1e4 * f, y)["inter_push"]) == 0.0
    assert val(legacy.regulariser(f, y)["inter_push"]) > 0.0


def test_pcl_all_zero_features_have_bounded_gradients():
    loss = PolarisedContrastiveLoss(K, D)
    f = torch.zeros(4, D, requires_grad=True)
    y = torch.arange(4)
    sum(loss.regulariser(f, y).values()).backward()
    assert torch.isfinite(f.grad).all() and f.grad.abs().max() <= 2.0 / loss.norm_floor


@pytest.mark.parametrize("cls", PCLS)
def test_pcl_intra_is_zero_on_the_centroids(cls):
    loss = cls(K, D)
    y = torch.tensor([0, 1, 2, 3, 1])
    f = loss.centroids.detach()[y].clone()
    assert val(loss.regulariser(f, y)["intra"]) == pytest.approx(0.0, abs=1e-3)
    assert val(loss.regulariser(f + torch.tensor([0.5, 0, 0, 0, 0, 0]), y)["intra"]) > 1e-2


@pytest.mark.parametrize("cls", PCLS)
def test_pcl_moving_from_the_midpoint_towards_the_own_centroid_lowers_the_regulariser(cls):
    c = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    gap = torch.dist(F.normalize(c[0], dim=0), F.normalize(c[1], dim=0))
    loss = cls(2, 3, margin=val(torch.dist(c[0], c[1]) if cls is PCLS[1] else gap))
    set_centroids(loss, c)
    y = torch.tensor([0])
    values = []
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):  # 0 = midpoint, 1 = own centroid
        f = ((0.5 + 0.5 * t) * c[0] + (0.5 - 0.5 * t) * c[1])[None]
        values.append(val(sum(loss.regulariser(f, y).values())))
    assert all(a > b for a, b in zip(values, values[1:])), values


@pytest.mark.parametrize("cls", PCLS)
@pytest.mark.parametrize("gap", [1e-4, 1e-6])
def test_pcl_angle_gradient_is_alive_for_nearly_equal_centroids(cls, gap):
    # cos(c0, c1) = 1 - gap; a hard clamp at 1 - 1e-4 would give zero gradient for gap = 1e-6
    theta = math.acos(1 - gap)
    c = torch.tensor([[1.0, 0.0, 0.0], [math.cos(theta), math.sin(theta), 0.0],
                      [0.0, 0.0, 1.0]], dtype=torch.float64)
    loss = cls(3, 3).double()
    set_centroids(loss, c)
    f = torch.zeros(2, 3, dtype=torch.float64)
    y = torch.tensor([0, 1])
    loss.regulariser(f, y)["inter_angle"].backward()
    g = loss.centroids.grad
    assert torch.isfinite(g).all()
    assert g[:2].norm(dim=1).min() > 1e-3  # both near-equal centroids are pushed
    # and it pushes them apart: a small step down the gradient lowers their cosine
    with torch.no_grad():
        moved = c - 1e-3 * g / g.norm()
    assert F.cosine_similarity(moved[0], moved[1], dim=0) < F.cosine_similarity(c[0], c[1], dim=0)


@pytest.mark.parametrize("cls", PCLS)
def test_pcl_gradients_finite_when_a_feature_sits_on_its_centroid(cls):
    logits, y, _ = batch()
    loss = cls(K, D)
    f = loss.centroids.detach()[y].clone().requires_grad_(True)
    total = loss(logits, y, {"penultimate": f})
    total.backward()
    assert torch.isfinite(total)
    assert torch.isfinite(f.grad).all() and torch.isfinite(loss.centroids.grad).all()
    assert loss.centroids.grad.abs().sum() > 0


def test_pairwise_distance_gradient_is_finite_where_the_plain_norm_is_nan():
    c = torch.randn(K, D)
    y = torch.arange(K)
    naive_f = c[y].clone().requires_grad_(True)
    (naive_f - c[y]).pow(2).sum(1).sqrt().sum().backward()
    assert torch.isnan(naive_f.grad).any()
    safe_f = c[y].clone().requires_grad_(True)
    pairwise_distance(safe_f, c).sum().backward()
    assert torch.isfinite(safe_f.grad).all()


def test_distances_stay_accurate_for_large_features_near_their_centroid():
    # |f|^2 + |c|^2 - 2 f.c cancels in float32 here (|f|^2 ~ 1e6, distance^2 ~ 1e-4)
    g = torch.Generator().manual_seed(0)
    c = 100.0 + torch.randn(3, 64, generator=g)
    offset = 1e-2 * F.normalize(torch.randn(3, 64, generator=g), dim=1)
    dist = pairwise_distance(c + offset, c)
    assert torch.allclose(dist.diagonal(), torch.full((3,), 1e-2), rtol=1e-2)


@pytest.mark.parametrize("cls", PCLS)
def test_pcl_no_nan_in_values_or_gradients(cls):
    logits, y, feats = batch(n=16)
    logits.requires_grad_(True)
    f = feats["penultimate"].requires_grad_(True)
    loss = cls(K, D)
    terms = loss.components(logits, y, {"penultimate": f})
    assert all(torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    for g in (logits.grad, f.grad, loss.centroids.grad):
        assert torch.isfinite(g).all() and g.abs().sum() > 0


@pytest.mark.parametrize("cls", PCLS)
def test_pcl_inter_angle_is_larger_for_nearly_equal_than_for_opposite_centroids(cls):
    loss = cls(2, 3)
    y, f = torch.tensor([0, 1]), torch.zeros(2, 3)
    set_centroids(loss, torch.tensor([[1.0, 0.0, 0.0], [1.0, 1e-3, 0.0]]))
    near = val(loss.regulariser(f, y)["inter_angle"])
    set_centroids(loss, torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]))
    opposite = val(loss.regulariser(f, y)["inter_angle"])
    assert near > 0.99 and opposite < 0.01 and near > opposite


# --------------------------------------------------------------------------- batch means

@pytest.mark.parametrize("name", sorted(LOSSES))
def test_a_batch_duplicated_gives_the_same_value(name):
    logits, y, feats = batch()
    if name == "am_softmax":
        logits = cosine_logits()
    loss = build_loss(name, num_classes=K, feature_dims=DIMS)
    twice = {k: torch.cat([v, v]) for k, v in feats.items()}
    assert val(loss(torch.cat([logits, logits]), torch.cat([y, y]), twice)) == pytest.approx(
        val(loss(logits, y, feats)), rel=1e-5)


# --------------------------------------------------------------------------- centre loss

def test_center_loss_matches_hand_computation():
    loss = CenterLoss(2, 2, weight=0.5)
    set_centroids(loss, torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    f = torch.tensor([[3.0, 4.0], [1.0, 2.0]])  # squared distances 25 and 1
    terms = loss.components(logits, y, {"penultimate": f})
    ce = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-1.0))) / 2
    assert val(terms["ce"]) == pytest.approx(ce, rel=1e-6)
    assert val(terms["center"]) == pytest.approx(0.5 * (0.5 * 25 + 0.5 * 1) / 2, rel=1e-6)
    assert val(loss(logits, y, {"penultimate": f})) == pytest.approx(ce + 3.25, rel=1e-6)


# --------------------------------------------------------------------------- AM-softmax

def test_am_softmax_matches_hand_computation():
    loss = AdditiveMarginSoftmax(margin=0.2, scale=10.0)
    logits = torch.tensor([[5.0, -3.0, 1.0]])  # cosines 0.5, -0.3, 0.1 at scale 10
    y = torch.tensor([0])
    want = -(5.0 - 2.0) + math.log(math.exp(5.0 - 2.0) + math.exp(-3.0) + math.exp(1.0))
    assert val(loss(logits, y)) == pytest.approx(want, rel=1e-6)
    assert set(loss.components(logits, y)) == {"margin_ce"}


def test_am_softmax_with_zero_margin_is_cross_entropy_and_a_margin_raises_it():
    logits, y = cosine_logits(), torch.arange(8) % K
    ce = F.cross_entropy(logits, y)
    assert val(AdditiveMarginSoftmax(margin=0.0)(logits, y)) == pytest.approx(val(ce), rel=1e-6)
    assert val(AdditiveMarginSoftmax(margin=0.35)(logits, y)) > val(ce)


def test_am_softmax_validates_its_settings_and_the_head():
    with pytest.raises(ValueError, match="margin"):
        AdditiveMarginSoftmax(margin=-0.1)
    with pytest.raises(ValueError, match="scale"):
        AdditiveMarginSoftmax(scale=0.0)
    with pytest.raises(ValueError, match="head='cosine'"):  # logits of a linear head
        AdditiveMarginSoftmax(scale=1.0)(torch.tensor([[3.0, -2.0]]), torch.tensor([0]))


# --------------------------------------------------------------------------- Mustafa et al.

def test_prototype_conformity_matches_hand_computation():
    dims = {"pooled": 1, "penultimate": 2}
    loss = PrototypeConformityLoss(3, dims, w_prox=2.0, w_conprox=0.1, conprox_cap=math.inf)
    with torch.no_grad():
        loss.prox["pooled"].copy_(torch.tensor([[0.0], [1.0], [2.0]]))
        loss.conprox["pooled"].copy_(torch.tensor([[0.0], [2.0], [4.0]]))
        loss.prox["penultimate"].copy_(torch.zeros(3, 2))
        loss.conprox["penultimate"].copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]]))
    logits, y = torch.zeros(2, 3), torch.tensor([0, 2])
    feats = {"pooled": torch.tensor([[1.0], [5.0]]),
             "penultimate": torch.tensor([[1.0, 1.0], [0.0, 0.0]])}
    terms = loss.components(logits, y, feats)
    # pooled: prox (1 + 9) / 2; conprox sample 0 (others 1, 2): (1 + 9) / 2, sample 1 (others 0, 1):
    # (25 + 9) / 2
    assert val(terms["prox_pooled"]) == pytest.approx(2.0 * 5.0)
    assert val(terms["conprox_pooled"]) == pytest.approx(-0.1 * (5.0 + 17.0) / 2)
    # penultimate: prox (2 + 0) / 2; conprox sample 0: (1 + 5) / 2, sample 1: (0 + 1) / 2
    assert val(terms["prox_penultimate"]) == pytest.approx(2.0 * 1.0)
    assert val(terms["conprox_penultimate"]) == pytest.approx(-0.1 * (3.0 + 0.5) / 2)
    assert val(terms["ce"]) == pytest.approx(math.log(3.0))
    assert val(loss(logits, y, feats)) == pytest.approx(sum(val(v) for v in terms.values()))


def test_prototype_conformity_conprox_is_capped_so_the_loss_is_bounded_below():
    logits, y, feats = batch()
    loss = PrototypeConformityLoss(K, DIMS, w_conprox=1e-4, conprox_cap=4.0)
    far = {k: 1e4 * v for k, v in feats.items()}
    terms = loss.components(logits, y, far)
    for key, d in DIMS.items():
        assert val(terms[f"conprox_{key}"]) == pytest.approx(-1e-4 * 4.0 * d)
    uncapped = PrototypeConformityLoss(K, DIMS, conprox_cap=math.inf).components(logits, y, far)
    assert val(uncapped["conprox_pooled"]) < -1e3  # their form: grows without bound


def test_prototype_conformity_centroid_groups_for_their_learning_rates():
    loss = PrototypeConformityLoss(K, DIMS, w_prox=1.0, w_conprox=1e-4)
    groups = loss.centroid_groups()
    assert [p.shape for p in groups["prox"]] == [(K, 5), (K, D)]
    assert len(groups["conprox"]) == 2
    assert {id(p) for ps in groups.values() for p in ps} == {id(p) for p in loss.parameters()}
    lrs = [g["lr"] for g in loss.centroid_param_groups({"prox": 0.5, "conprox": 1e-4})]
    assert lrs == [0.5, pytest.approx(1.0)]  # 1e-4 / 1e-4: their gradient rescale


# --------------------------------------------------------------------------- centroid init

@pytest.mark.parametrize("make", [
    lambda s: PolarisedContrastiveLoss(K, D, seed=s).centroids,
    lambda s: CenterLoss(K, D, seed=s).centroids,
    lambda s: torch.cat([p.flatten() for p in PrototypeConformityLoss(K, DIMS, seed=s).parameters()]),
])
def test_centroid_init_is_seeded_and_not_degenerate(make):
    a, b, c = make(0).detach(), make(0).detach(), make(1).detach()
    assert torch.equal(a, b) and not torch.equal(a, c)
    if a.dim() == 2:
        assert torch.pdist(a).min() > 0.1  # no two centroids (nearly) equal


def test_prototype_conformity_prox_and_conprox_centres_differ():
    loss = PrototypeConformityLoss(K, DIMS)
    for key in DIMS:
        assert not torch.equal(loss.prox[key], loss.conprox[key])


# --------------------------------------------------------------------------- registry

@pytest.mark.parametrize("name", sorted(LOSSES))
def test_build_loss_runs_forward_and_backward(name):
    logits, y, feats = batch()
    if name == "am_softmax":
        logits = cosine_logits()
    logits.requires_grad_(True)
    for v in feats.values():
        v.requires_grad_(True)
    loss = build_loss(name, num_classes=K, feature_dims=DIMS, seed=3)
    value = loss(logits, y, feats)
    assert value.dim() == 0 and torch.isfinite(value)
    assert val(value) == pytest.approx(val(sum(loss.components(logits, y, feats).values())))
    value.backward()
    assert logits.grad.abs().sum() > 0
    for p in loss.centroid_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    if name in ("pcl", "pcl_legacy", "center"):
        assert feats["penultimate"].grad.abs().sum() > 0
    if name == "prototype_conformity":
        assert all(v.grad.abs().sum() > 0 for v in feats.values())


def test_build_loss_passes_the_chosen_feature_dims():
    assert build_loss("pcl", num_classes=K, feature_dims=DIMS).centroids.shape == (K, D)
    assert build_loss("center", num_classes=K, feature_dims=DIMS,
                      feature="pooled").centroids.shape == (K, 5)
    assert isinstance(build_loss("ce", num_classes=K, feature_dims={}), CrossEntropy)


def test_build_loss_errors_are_clear():
    with pytest.raises(ValueError, match="unknown loss 'arcface'.*am_softmax.*pcl"):
        build_loss("arcface", num_classes=K, feature_dims=DIMS)
    with pytest.raises(ValueError, match="w_intra"):
        build_loss("pcl", num_classes=K, feature_dims=DIMS, w_intra=-1.0)
    with pytest.raises(ValueError, match="margin"):
        build_loss("pcl", num_classes=K, feature_dims=DIMS, margin=-0.5)
    with pytest.raises(ValueError, match="w_conprox"):
        build_loss("prototype_conformity", num_classes=K, feature_dims=DIMS, w_conprox=-1e-4)
    with pytest.raises(ValueError, match="weight"):
        build_loss("center", num_classes=K, feature_dims=DIMS, weight=-1.0)
    with pytest.raises(KeyError, match="'penultimate'.*'pooled'"):
        build_loss("pcl", num_classes=K, feature_dims={"pooled": 5})
    with pytest.raises(KeyError, match="penultimate"):
        build_loss("prototype_conformity", num_classes=K, feature_dims={"pooled": 5})
    with pytest.raises(ValueError, match="num_classes"):
        build_loss("pcl", num_classes=1, feature_dims=DIMS)


def test_features_that_do_not_fit_the_loss_are_named():
    logits, y, feats = batch()
    loss = build_loss("pcl", num_classes=K, feature_dims=DIMS)
    with pytest.raises(ValueError, match=r"7-d.*6-d"):
        loss(logits, y, {"penultimate": torch.randn(8, 7)})
    with pytest.raises(KeyError, match=r"'penultimate'.*\['pooled'\]"):
        loss(logits, y, {"pooled": feats["pooled"]})
    with pytest.raises(TypeError, match="features dict"):
        loss(logits, y, None)
    with pytest.raises(ValueError, match="rows"):
        loss(logits, y, {"penultimate": feats["penultimate"][:4]})
