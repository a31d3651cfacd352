"""Contract tests run over every loss, plus known answers for the functional maths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ctseg.losses import (
    CrossEntropyLoss,
    DeepSupervisionLoss,
    DiceCELoss,
    DiceLoss,
    create_loss,
    cross_entropy,
    dice_loss,
    list_losses,
    one_hot,
    soft_dice_per_class,
)
from ctseg.losses.functional import downsample_labels
from ctseg.models import UNet

NUM_CLASSES = 3
LOSSES = list_losses()


def _target(shape: tuple[int, ...] = (2, 8, 8, 4), classes: int = NUM_CLASSES) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, classes, shape, generator=g)


def _perfect_logits(target: torch.Tensor, classes: int = NUM_CLASSES) -> torch.Tensor:
    return one_hot(target, classes) * 40.0 - 20.0


def _kwargs(name: str, **dice_kw: object) -> dict[str, object]:
    return {} if name == "ce" else dict(dice_kw)


@pytest.mark.parametrize("batch_dice", [True, False])
@pytest.mark.parametrize("name", LOSSES)
class TestLossContract:
    def test_perfect_prediction_is_minimum(self, name: str, batch_dice: bool) -> None:
        target = _target()
        loss = create_loss(name, **_kwargs(name, batch_dice=batch_dice))
        assert float(loss(_perfect_logits(target), target)) == pytest.approx(0.0, abs=1e-4)
        # Also with the (B, 1, *spatial) target layout.
        value = loss(_perfect_logits(target), target[:, None])
        assert float(value) == pytest.approx(0.0, abs=1e-4)

    def test_random_logits_finite_loss_and_grads(self, name: str, batch_dice: bool) -> None:
        target = _target()
        logits = torch.randn(2, NUM_CLASSES, 8, 8, 4, requires_grad=True)
        loss = create_loss(name, **_kwargs(name, batch_dice=batch_dice))(logits, target)
        assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() > 0.01
        loss.backward()
        assert logits.grad is not None and torch.isfinite(logits.grad).all()
        assert float(logits.grad.abs().sum()) > 0

    def test_absent_class_gives_no_nan(self, name: str, batch_dice: bool) -> None:
        target = _target(classes=2)  # class 2 is absent from the target...
        logits = _perfect_logits(target).requires_grad_()  # ...and from the prediction
        loss = create_loss(name, **_kwargs(name, batch_dice=batch_dice))(logits, target)
        assert loss.item() == pytest.approx(0.0, abs=1e-4)
        loss.backward()
        assert torch.isfinite(logits.grad).all()

    def test_class_weights_change_value(self, name: str, batch_dice: bool) -> None:
        target = _target()
        logits = torch.randn(2, NUM_CLASSES, 8, 8, 4, generator=torch.Generator().manual_seed(1))
        base = create_loss(name, **_kwargs(name, batch_dice=batch_dice))(logits, target)
        weighted = create_loss(
            name, class_weights=[1.0, 5.0, 0.1], **_kwargs(name, batch_dice=batch_dice)
        )(logits, target)
        assert torch.isfinite(weighted) and not torch.isclose(base, weighted)

    def test_2d_input(self, name: str, batch_dice: bool) -> None:
        target = _target((2, 6, 6))
        loss = create_loss(name, **_kwargs(name, batch_dice=batch_dice))
        assert float(loss(_perfect_logits(target), target)) == pytest.approx(0.0, abs=1e-4)


def test_unknown_loss_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="ce, dice, dice_ce"):
        create_loss("focal")
    with pytest.raises(TypeError, match="'ce'"):
        create_loss("ce", batch_dice=True)


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
    # Perfect predictions at every scale give the minimum.
    perfect = [_perfect_logits(downsample_labels(target, o.shape[2:])) for o in outputs]
    assert float(DeepSupervisionLoss(DiceLoss())(perfect, target)) == pytest.approx(0.0, abs=1e-4)
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
