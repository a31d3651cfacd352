"""Contract tests run over every loss, plus known answers for the functional maths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ctseg.losses import (
    BCELoss,
    CrossEntropyLoss,
    DeepSupervisionLoss,
    DiceCELoss,
    DiceLoss,
    GeneralisedDiceLoss,
    binary_cross_entropy,
    create_loss,
    cross_entropy,
    dice_loss,
    generalised_dice_loss,
    list_losses,
    one_hot,
    soft_dice_per_class,
)
from ctseg.losses.functional import downsample_labels, generalised_dice_weights
from ctseg.models import UNet

NUM_CLASSES = 3
LOSSES = list_losses()
#: Arguments a loss cannot be built without.
REQUIRED = {
    "weighted_ce": {"class_weights": [0.2, 1.0, 3.0]},
    "weighted_dice": {"class_weights": [0.2, 1.0, 3.0]},
}


def _variants() -> list[object]:
    """Every loss with its defaults, and per-sample where it has a batch/per-sample switch."""
    out = []
    for name in LOSSES:
        base = REQUIRED.get(name, {})
        out.append(pytest.param(name, base, id=name))
        if hasattr(create_loss(name, **base), "batch_dice"):
            out.append(pytest.param(name, {**base, "batch_dice": False}, id=f"{name}-per_sample"))
    return out


def _target(shape: tuple[int, ...] = (2, 8, 8, 4), classes: int = NUM_CLASSES) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, classes, shape, generator=g)


def _perfect_logits(target: torch.Tensor, classes: int = NUM_CLASSES) -> torch.Tensor:
    return one_hot(target, classes) * 40.0 - 20.0


class _Task:
    """Targets and logits of the right kind for one loss: C classes, or binary (one channel)."""

    def __init__(self, loss: torch.nn.Module) -> None:
        self.binary = bool(getattr(loss, "binary", False))
        self.classes = 2 if self.binary else NUM_CLASSES
        self.channels = 1 if self.binary else NUM_CLASSES

    def target(self, shape: tuple[int, ...] = (2, 8, 8, 4), present: int | None = None):
        return _target(shape, classes=present or self.classes)

    def perfect(self, target: torch.Tensor) -> torch.Tensor:
        if self.binary:
            return (target[:, None].float() * 40.0 - 20.0).clone()
        return _perfect_logits(target)

    def wrong(self, target: torch.Tensor) -> torch.Tensor:
        return self.perfect((target + 1) % self.classes)

    def random(self, target: torch.Tensor, seed: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.randn(target.shape[0], self.channels, *target.shape[1:], generator=g)


@pytest.mark.parametrize(("name", "kwargs"), _variants())
class TestLossContract:
    def test_perfect_is_minimum_and_wrong_is_worse(self, name: str, kwargs: dict) -> None:
        loss = create_loss(name, **kwargs)
        task = _Task(loss)
        target = task.target()
        perfect = loss(task.perfect(target), target)
        assert perfect.ndim == 0 and float(perfect) == pytest.approx(0.0, abs=1e-4)
        # Also with the (B, 1, *spatial) target layout.
        assert float(loss(task.perfect(target), target[:, None])) == pytest.approx(0.0, abs=1e-4)
        random = float(loss(task.random(target), target))
        wrong = float(loss(task.wrong(target), target))
        assert float(perfect) + 0.05 < random < wrong

    def test_random_logits_finite_loss_and_grads(self, name: str, kwargs: dict) -> None:
        loss = create_loss(name, **kwargs)
        task = _Task(loss)
        target = task.target()
        logits = task.random(target).requires_grad_()
        value = loss(logits, target)
        assert value.ndim == 0 and torch.isfinite(value) and value.item() > 0.01
        value.backward()
        assert logits.grad is not None and torch.isfinite(logits.grad).all()
        assert float(logits.grad.abs().sum()) > 0

    def test_absent_class_is_handled(self, name: str, kwargs: dict) -> None:
        loss = create_loss(name, **kwargs)
        task = _Task(loss)
        target = task.target(present=task.classes - 1)  # the last class is absent...
        logits = task.perfect(target).requires_grad_()  # ...and not predicted
        value = loss(logits, target)
        assert value.item() == pytest.approx(0.0, abs=1e-4)
        value.backward()
        assert torch.isfinite(logits.grad).all()
        random = task.random(target).requires_grad_()
        value = loss(random, target)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(random.grad).all()

    def test_2d_input(self, name: str, kwargs: dict) -> None:
        loss = create_loss(name, **kwargs)
        task = _Task(loss)
        target = task.target((2, 6, 6))
        assert float(loss(task.perfect(target), target)) == pytest.approx(0.0, abs=1e-4)
        assert torch.isfinite(loss(task.random(target), target))

    def test_deep_supervision_wrapper(self, name: str, kwargs: dict) -> None:
        loss = create_loss(name, **kwargs)
        task = _Task(loss)
        target = task.target((2, 8, 8, 4))
        sizes = [(8, 8, 4), (4, 4, 2), (2, 2, 1)]
        ds = DeepSupervisionLoss(loss)
        perfect = [task.perfect(downsample_labels(target, s)) for s in sizes]
        assert float(ds(perfect, target)) == pytest.approx(0.0, abs=1e-4)
        logits = [task.random(downsample_labels(target, s), seed=i).requires_grad_()
                  for i, s in enumerate(sizes)]  # fmt: skip
        value = ds(logits, target)
        expected = sum(
            w * loss(lg, downsample_labels(target, lg.shape[2:]))
            for w, lg in zip(ds.output_weights(3), logits, strict=True)
        )
        torch.testing.assert_close(value, expected)
        value.backward()
        assert all(torch.isfinite(lg.grad).all() for lg in logits)


def test_unknown_loss_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="valid names: bce, ce, dice, dice_ce") as info:
        create_loss("focal")
    assert all(name in str(info.value) for name in LOSSES)
    with pytest.raises(TypeError, match="'ce'"):
        create_loss("ce", batch_dice=True)


def test_weighted_losses_need_weights_and_use_them() -> None:
    for name in ("weighted_ce", "weighted_dice"):
        with pytest.raises(ValueError, match=f"'{name}' needs class_weights"):
            create_loss(name)
    target = _target()
    logits = torch.randn(2, NUM_CLASSES, 8, 8, 4, generator=torch.Generator().manual_seed(1))
    weights = [1.0, 5.0, 0.1]
    torch.testing.assert_close(
        create_loss("weighted_ce", class_weights=weights)(logits, target),
        F.cross_entropy(logits, target, weight=torch.tensor(weights)),
    )
    torch.testing.assert_close(
        create_loss("weighted_dice", class_weights=weights, batch_dice=False)(logits, target),
        dice_loss(logits, target, class_weights=weights, batch_dice=False),
    )


@pytest.mark.parametrize("name", ["ce", "dice", "dice_ce", "weighted_ce", "weighted_dice"])
def test_class_weights_change_value(name: str) -> None:
    target = _target()
    logits = torch.randn(2, NUM_CLASSES, 8, 8, 4, generator=torch.Generator().manual_seed(1))
    base = create_loss(name, **REQUIRED.get(name, {}))(logits, target)
    weighted = create_loss(name, class_weights=[1.0, 5.0, 0.1])(logits, target)
    assert torch.isfinite(weighted) and not torch.isclose(base, weighted)


def test_soft_dice_known_answer() -> None:
    probs = torch.tensor([[[1.0, 1.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]]]).reshape(2, 1, 4)
    onehot = torch.tensor([[[1.0, 0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]]]).reshape(2, 1, 4)
    batch = soft_dice_per_class(probs, onehot, smooth=0.0 + 1e-12, batch_dice=True)
    assert batch.shape == (1,) and float(batch[0]) == pytest.approx(2 / 3)
    per_sample = soft_dice_per_class(probs, onehot, smooth=1e-5, batch_dice=False)
    assert per_sample.shape == (2, 1)
    assert float(per_sample[0, 0]) == pytest.approx(2 / 3, abs=1e-4)
    assert float(per_sample[1, 0]) == pytest.approx(1.0)  # empty in both: 1, not NaN
    dims = soft_dice_per_class(probs, onehot, dims=(2,))
    torch.testing.assert_close(dims, per_sample)


def test_dice_smoothing_is_configurable() -> None:
    target = torch.tensor([[0, 1, 0, 0]])
    logits = torch.tensor([[[30.0, 30.0, 30.0, 30.0], [0.0, 0.0, 0.0, 0.0]]])  # never class 1
    # Dice of class 1 = (0 + s) / (1 + s): the loss is 1 / (1 + s).
    assert float(DiceLoss(smooth=1e-5)(logits, target)) == pytest.approx(1.0, abs=1e-4)
    assert float(DiceLoss(smooth=1.0)(logits, target)) == pytest.approx(0.5, abs=1e-4)
    with pytest.raises(ValueError, match="smooth must be > 0"):
        DiceLoss(smooth=0.0)


def test_generalised_dice_known_answer() -> None:
    # Class 1 volume 1, class 0 volume 3: weights 1/9 and 1, normalised to 0.1 and 0.9.
    target = torch.tensor([[0, 0, 0, 1]])
    # Class-1 probabilities 0, 0, 0.5 and 1 (to 1e-13).
    logits = torch.stack([torch.zeros(4), torch.tensor([-30.0, -30.0, 0.0, 30.0])])[None]
    # Intersections 2.5 and 1; |P| + |G| = 5.5 and 2.5.
    # numerator 2 * (0.1 * 2.5 + 0.9 * 1) = 2.3; denominator 0.1 * 5.5 + 0.9 * 2.5 = 2.8
    expected = 1 - 2.3 / 2.8
    assert float(generalised_dice_loss(logits, target)) == pytest.approx(expected, abs=1e-4)
    assert float(GeneralisedDiceLoss(batch_dice=False)(logits, target)) == pytest.approx(
        expected, abs=1e-4
    )


def test_generalised_dice_weights_for_absent_classes() -> None:
    weights = generalised_dice_weights(torch.tensor([[3.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(weights[0], torch.tensor([1 / 19, 9 / 19, 9 / 19]))
    torch.testing.assert_close(weights[1], torch.full((3,), 1 / 3))
    # A false positive of an absent class costs; the loss stays finite.
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2] = 1
    logits = _perfect_logits(target)
    clean = float(generalised_dice_loss(logits, target))
    logits[0, 2, 0, 0] = 50.0  # one voxel predicted as the absent class 2
    assert clean < 1e-4 < float(generalised_dice_loss(logits, target)) < 1.0


def test_bce_matches_torch_and_refuses_multiclass() -> None:
    target = _target((2, 6, 6), classes=2)
    logits = torch.randn(2, 1, 6, 6)
    expected = F.binary_cross_entropy_with_logits(logits[:, 0], target.float())
    torch.testing.assert_close(BCELoss()(logits, target), expected)
    weighted = F.binary_cross_entropy_with_logits(
        logits[:, 0], target.float(), pos_weight=torch.tensor(3.0)
    )
    torch.testing.assert_close(create_loss("bce", pos_weight=3.0)(logits, target), weighted)
    with pytest.raises(ValueError, match="one-channel logits.*out_channels=1"):
        binary_cross_entropy(torch.randn(2, 3, 6, 6), target)
    with pytest.raises(ValueError, match="labels in \\{0, 1\\}"):
        binary_cross_entropy(logits, target * 2)
    with pytest.raises(ValueError, match="pos_weight"):
        BCELoss(pos_weight=0.0)


def test_absent_classes_do_not_dominate_per_sample_dice() -> None:
    # Sample 1 has no class 2; a small soft probability for it everywhere must not push the loss up.
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    target[:, 2:6, 2:6] = 1
    target[0, 0, :4] = 2
    logits = _perfect_logits(target)
    logits[1, 2] = logits[1, 0] - 3.0  # ~5% probability of class 2 in sample 1
    loss = dice_loss(logits, target, batch_dice=False)
    assert float(loss) < 0.05
    # The batch-wide variant still sees class 2 and its false positives.
    assert 0.0 < float(dice_loss(logits, target, batch_dice=True)) < 0.5


def test_include_background_and_validation() -> None:
    target = _target()
    logits = torch.randn(2, NUM_CLASSES, 8, 8, 4)
    with_bg = dice_loss(logits, target, include_background=True)
    assert not torch.isclose(with_bg, dice_loss(logits, target))
    with pytest.raises(ValueError, match="target shape"):
        dice_loss(logits, target[:, :4])
    with pytest.raises(ValueError, match="labels must lie in"):
        dice_loss(logits, target + 1)
    with pytest.raises(ValueError, match="one value per class"):
        dice_loss(logits, target, class_weights=[1.0, 2.0])
    with pytest.raises(TypeError, match="integer"):
        cross_entropy(logits, target.float())
    with pytest.raises(ValueError, match="at least 2 channels"):
        dice_loss(logits[:, :1], torch.zeros_like(target))
    with pytest.raises(ValueError, match="at least 2 channels"):
        generalised_dice_loss(logits[:, :1], torch.zeros_like(target))


def test_cross_entropy_matches_torch() -> None:
    target = _target()
    target[0, 0] = -100
    logits = torch.randn(2, NUM_CLASSES, 8, 8, 4)
    weight = torch.tensor([0.2, 1.0, 3.0])
    expected = F.cross_entropy(logits, target, weight=weight)
    torch.testing.assert_close(CrossEntropyLoss(weight)(logits, target), expected)


def test_dice_ce_is_weighted_sum() -> None:
    target = _target()
    logits = torch.randn(2, NUM_CLASSES, 8, 8, 4)
    combined = DiceCELoss(dice_weight=0.5, ce_weight=2.0)(logits, target)
    expected = 0.5 * DiceLoss()(logits, target) + 2.0 * CrossEntropyLoss()(logits, target)
    torch.testing.assert_close(combined, expected)
    with pytest.raises(ValueError, match="not both 0"):
        DiceCELoss(dice_weight=0.0, ce_weight=0.0)
    assert isinstance(create_loss("dice_ce"), DiceCELoss)  # the default loss is unchanged


@pytest.mark.parametrize("size", [(4, 4, 4), (4, 4, 2), (2, 2, 4), (3, 5, 4)])
def test_downsample_labels_matches_nearest_exact(size: tuple[int, int, int]) -> None:
    target = _target()
    expected = F.interpolate(target[:, None].float(), size=size, mode="nearest-exact")
    torch.testing.assert_close(downsample_labels(target, size), expected[:, 0].long())
    torch.testing.assert_close(downsample_labels(target[:, None], size), expected.long())


def test_deep_supervision_loss_with_anisotropic_unet() -> None:
    torch.manual_seed(0)
    model = UNet(
        spatial_dims=3,
        out_channels=NUM_CLASSES,
        features=(4, 8, 16, 32),
        strides=[1, (2, 2, 1), 2, (2, 2, 1)],
        kernel_sizes=[(3, 3, 1), 3, 3, 3],
        deep_supervision=True,
    ).train()
    x = torch.randn(2, 1, 16, 16, 4)
    target = _target((2, 16, 16, 4))
    outputs = model(x)
    assert [tuple(o.shape[2:]) for o in outputs] == [(16, 16, 4), (8, 8, 4), (4, 4, 2)]
    ds = DeepSupervisionLoss(create_loss("dice_ce"), ignore_lowest=True)
    assert ds.output_weights(3) == pytest.approx([2 / 3, 1 / 3, 0.0])
    loss = ds(outputs, target)
    expected = sum(
        w * create_loss("dice_ce")(o, downsample_labels(target, o.shape[2:]))
        for w, o in zip(ds.output_weights(3), outputs, strict=True)
    )
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # A single tensor (eval mode) is passed straight through.
    single = outputs[0].detach()
    torch.testing.assert_close(ds(single, target), create_loss("dice_ce")(single, target))


def test_deep_supervision_weights() -> None:
    ds = DeepSupervisionLoss(DiceLoss())
    assert ds.output_weights(4) == pytest.approx([8 / 15, 4 / 15, 2 / 15, 1 / 15])
    custom = DeepSupervisionLoss(DiceLoss(), weights=[2.0, 1.0, 1.0])
    assert custom.output_weights(3) == pytest.approx([0.5, 0.25, 0.25])
    with pytest.raises(ValueError, match="3 weights but got 2"):
        custom.output_weights(2)
    with pytest.raises(ValueError, match="non-negative"):
        DeepSupervisionLoss(DiceLoss(), weights=[1.0, -1.0])
