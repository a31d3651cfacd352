"""Segmentation loss maths as plain functions on tensors.

Conventions: ``logits`` are (B, C, *spatial) raw network outputs over C mutually exclusive classes
(class 0 = background); ``target`` is an integer label map (B, *spatial) or (B, 1, *spatial) with
values in [0, C). Losses are scalars (0-dim tensors) to minimise; their minimum is 0. The binary
loss (:func:`binary_cross_entropy`) takes one-channel logits (B, 1, *spatial) and labels in {0, 1}.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "one_hot",
    "soft_dice_per_class",
    "dice_loss",
    "cross_entropy",
    "dice_ce_loss",
    "generalised_dice_loss",
    "generalised_dice_weights",
    "binary_cross_entropy",
    "downsample_labels",
]


def _labels(target: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
    """``target`` as a long (B, *spatial) tensor, checked against ``logits`` when given."""
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class labels, got dtype {target.dtype}")
    if logits is not None:
        if logits.ndim < 3:
            raise ValueError(f"logits must be (B, C, *spatial), got shape {tuple(logits.shape)}")
        if target.ndim == logits.ndim and target.shape[1] == 1:
            target = target[:, 0]
        expected = (logits.shape[0], *logits.shape[2:])
        if tuple(target.shape) != expected:
            raise ValueError(
                f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}: "
                f"expected {expected} or {(expected[0], 1, *expected[1:])}"
            )
    return target.long()


def one_hot(
    target: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """One-hot encode labels: (B, *spatial) or (B, 1, *spatial) -> (B, num_classes, *spatial).

    Raises:
        ValueError: a label outside [0, num_classes).
    """
    if target.ndim >= 3 and target.shape[1] == 1:
        target = target[:, 0]
    target = _labels(target)
    if target.numel():
        low, high = torch.aminmax(target)
        if int(low) < 0 or int(high) >= num_classes:
            raise ValueError(
                f"labels must lie in [0, {num_classes}) for {num_classes} classes, "
                f"found values in [{int(low)}, {int(high)}]"
            )
    out = torch.zeros(
        (target.shape[0], num_classes, *target.shape[1:]), dtype=dtype, device=target.device
    )
    return out.scatter_(1, target.unsqueeze(1), 1)


def soft_dice_per_class(
    probs: torch.Tensor,
    onehot: torch.Tensor,
    *,
    smooth: float = 1e-5,
    batch_dice: bool = True,
    dims: Sequence[int] | None = None,
) -> torch.Tensor:
    """Soft Dice ``(2 |P.G| + smooth) / (|P| + |G| + smooth)`` per class.

    Args:
        probs: (B, C, *spatial) class probabilities.
        onehot: (B, C, *spatial) one-hot (or soft) reference, same shape as ``probs``.
        smooth: added to numerator and denominator; a class empty in both gives Dice 1, not NaN.
        batch_dice: sum over the batch and spatial axes (nnU-Net "batch Dice"), else per sample.
        dims: axes to sum over, overriding ``batch_dice``.

    Returns:
        (C,) with ``batch_dice`` (default dims), else (B, C).
    """
    if probs.shape != onehot.shape:
        raise ValueError(
            f"probs {tuple(probs.shape)} and onehot {tuple(onehot.shape)} must have the same shape"
        )
    if dims is None:
        dims = ((0,) if batch_dice else ()) + tuple(range(2, probs.ndim))
    dims = tuple(dims)
    intersection = (probs * onehot).sum(dims)
    denominator = probs.sum(dims) + onehot.sum(dims)
    return (2 * intersection + smooth) / (denominator + smooth).clamp_min(1e-8)


def _class_weights(
    class_weights: torch.Tensor | Sequence[float] | None, num_classes: int, ref: torch.Tensor
) -> torch.Tensor | None:
    if class_weights is None:
        return None
    w = torch.as_tensor(class_weights, dtype=ref.dtype, device=ref.device)
    if w.shape != (num_classes,):
        raise ValueError(
            f"class_weights must have one value per class ({num_classes}), got shape {tuple(w.shape)}"
        )
    if bool((w < 0).any()):
        raise ValueError(f"class_weights must be non-negative, got {w.tolist()}")
    return w


def _dice_loss_from_probs(
    probs: torch.Tensor,
    labels: torch.Tensor,
    *,
    include_background: bool,
    smooth: float,
    batch_dice: bool,
    class_weights: torch.Tensor | Sequence[float] | None,
) -> torch.Tensor:
    num_classes = probs.shape[1]
    if num_classes < 2:
        raise ValueError(
            "Dice loss needs softmax logits with at least 2 channels (background + foreground), "
            f"got {num_classes}"
        )
    onehot = one_hot(labels, num_classes, dtype=probs.dtype)
    weights = _class_weights(class_weights, num_classes, probs)
    if not include_background:
        probs, onehot = probs[:, 1:], onehot[:, 1:]
        weights = None if weights is None else weights[1:]
    dice = soft_dice_per_class(probs, onehot, smooth=smooth, batch_dice=batch_dice)
    if weights is None:
        weights = torch.ones(dice.shape[-1], dtype=dice.dtype, device=dice.device)
    if batch_dice:
        # nnU-Net: a class absent from the whole batch still counts (pushes its probability down).
        return 1 - (weights * dice).sum() / weights.sum().clamp_min(1e-8)
    # Per-sample Dice: a (sample, class) pair whose reference is empty has Dice ~ 0 for any
    # non-zero soft prediction, with a vanishing gradient; averaging it in would swamp the
    # informative pairs. Count only pairs present in the reference; if none is, the loss is 0.
    present = (onehot.sum(tuple(range(2, onehot.ndim))) > 0).to(dice.dtype)
    pair_weights = weights * present
    total = pair_weights.sum()
    mean_dice = (pair_weights * dice).sum() / total.clamp_min(1e-8)
    return torch.where(total > 0, 1 - mean_dice, mean_dice * 0)


def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    include_background: bool = False,
    smooth: float = 1e-5,
    batch_dice: bool = True,
    class_weights: torch.Tensor | Sequence[float] | None = None,
) -> torch.Tensor:
    """``1 - `` weighted mean soft Dice of ``softmax(logits)`` against ``target``.

    Args:
        logits: (B, C, *spatial), C >= 2.
        target: (B, *spatial) or (B, 1, *spatial) integer labels.
        include_background: count class 0 too.
        smooth: see :func:`soft_dice_per_class`.
        batch_dice: one Dice per class over the whole batch (nnU-Net default for 3D). With
            ``False``, Dice per (sample, class), averaged over the pairs whose class is present in
            that sample's target, so empty classes do not dominate.
        class_weights: (C,) non-negative weights (entry 0 is ignored without background).

    Returns:
        Scalar loss in [0, 1]; 0 for a perfect prediction.
    """
    labels = _labels(target, logits)
    return _dice_loss_from_probs(
        torch.softmax(logits, dim=1),
        labels,
        include_background=include_background,
        smooth=smooth,
        batch_dice=batch_dice,
        class_weights=class_weights,
    )


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | Sequence[float] | None = None,
    ignore_index: int = -100,
) -> torch.Tensor:
    """Mean voxel-wise cross-entropy of ``logits`` (B, C, *spatial) against labels.

    ``weight`` (C,) rescales classes (the mean is then weighted, as in ``F.cross_entropy``);
    voxels labelled ``ignore_index`` do not count.
    """
    labels = _labels(target, logits)
    w = _class_weights(weight, logits.shape[1], logits)
    return F.cross_entropy(logits, labels, weight=w, ignore_index=ignore_index)


def dice_ce_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    dice_weight: float = 1.0,
    ce_weight: float = 1.0,
    include_background: bool = False,
    smooth: float = 1e-5,
    batch_dice: bool = True,
    class_weights: torch.Tensor | Sequence[float] | None = None,
) -> torch.Tensor:
    """``dice_weight * dice_loss + ce_weight * cross_entropy`` (nnU-Net's default loss).

    One log-softmax serves both terms. ``class_weights`` apply to both.
    """
    labels = _labels(target, logits)
    log_probs = torch.log_softmax(logits, dim=1)
    loss = log_probs.new_zeros(())
    if ce_weight:
        w = _class_weights(class_weights, logits.shape[1], logits)
        loss = loss + ce_weight * F.nll_loss(log_probs, labels, weight=w)
    if dice_weight:
        dice = _dice_loss_from_probs(
            log_probs.exp(),
            labels,
            include_background=include_background,
            smooth=smooth,
            batch_dice=batch_dice,
            class_weights=class_weights,
        )
        loss = loss + dice_weight * dice
    return loss


def generalised_dice_weights(volumes: torch.Tensor) -> torch.Tensor:
    """Generalised Dice class weights ``1 / volume^2`` along the last axis, normalised to sum 1.

    A class of zero volume (absent from the reference) would get an infinite weight; it gets the
    largest finite weight of its row instead (so false positives of an absent class still cost,
    without swamping the rest). A row with no class present gets equal weights.

    Args:
        volumes: (..., C) reference volumes in voxels (non-negative).

    Returns:
        (..., C) weights, each row summing to 1.
    """
    present = volumes > 0
    inv = torch.where(present, 1.0 / volumes.clamp_min(1e-6).square(), torch.zeros_like(volumes))
    largest = inv.amax(dim=-1, keepdim=True)
    weights = torch.where(present, inv, largest)
    weights = torch.where(largest > 0, weights, torch.ones_like(weights))
    return weights / weights.sum(dim=-1, keepdim=True)


def generalised_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    include_background: bool = True,
    smooth: float = 1e-5,
    batch_dice: bool = True,
) -> torch.Tensor:
    """Generalised Dice loss (Sudre et al. 2017) of ``softmax(logits)`` against ``target``.

    ``1 - (2 sum_c w_c |P_c G_c| + smooth) / (sum_c w_c (|P_c| + |G_c|) + smooth)`` with
    ``w_c = 1 / |G_c|^2`` (:func:`generalised_dice_weights`: normalised; absent classes get the
    largest finite weight), so small structures count as much as large ones.

    Args:
        logits: (B, C, *spatial), C >= 2.
        target: (B, *spatial) or (B, 1, *spatial) integer labels.
        include_background: count class 0 (the usual choice for this loss).
        smooth: added to numerator and denominator.
        batch_dice: one sum over the whole batch; else one loss per sample, averaged.

    Returns:
        Scalar loss in [0, 1]; 0 for a perfect prediction.
    """
    labels = _labels(target, logits)
    num_classes = logits.shape[1]
    if num_classes < 2:
        raise ValueError(
            f"generalised Dice needs softmax logits with at least 2 channels, got {num_classes}"
        )
    probs = torch.softmax(logits, dim=1)
    onehot = one_hot(labels, num_classes, dtype=probs.dtype)
    if not include_background:
        probs, onehot = probs[:, 1:], onehot[:, 1:]
    dims = ((0,) if batch_dice else ()) + tuple(range(2, probs.ndim))
    intersection = (probs * onehot).sum(dims)
    denominator = probs.sum(dims) + onehot.sum(dims)
    weights = generalised_dice_weights(onehot.sum(dims).detach())
    score = (2 * (weights * intersection).sum(-1) + smooth) / (
        (weights * denominator).sum(-1) + smooth
    )
    return 1 - score.mean()


def binary_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    pos_weight: float | None = None,
) -> torch.Tensor:
    """Mean voxel-wise binary cross-entropy of ``sigmoid(logits)`` against {0, 1} labels.

    Args:
        logits: (B, 1, *spatial): one channel, the foreground logit.
        target: (B, *spatial) or (B, 1, *spatial) integer labels in {0, 1}.
        pos_weight: weight of the foreground term (e.g. background/foreground voxel ratio).

    Raises:
        ValueError: logits with more than one channel, or labels outside {0, 1}.
    """
    if logits.ndim >= 3 and logits.shape[1] != 1:
        raise ValueError(
            f"binary cross-entropy takes one-channel logits (B, 1, *spatial) for a binary task, "
            f"got {logits.shape[1]} channels; build the model with out_channels=1, or use the "
            "'ce' loss for several classes"
        )
    labels = _labels(target, logits)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 1):
        raise ValueError(
            f"binary cross-entropy needs labels in {{0, 1}}, found values in "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    weight = None if pos_weight is None else logits.new_tensor(float(pos_weight))
    return F.binary_cross_entropy_with_logits(
        logits[:, 0], labels.to(logits.dtype), pos_weight=weight
    )


def downsample_labels(target: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Nearest-neighbour resize of labels (B, *spatial) or (B, 1, *spatial) to ``size``.

    Matches ``F.interpolate(mode="nearest-exact")`` (voxel centres aligned). When every factor is
    an integer ``f`` this is a strided view ``target[..., f // 2 :: f]`` with no copy.
    Returns the same layout (with or without the channel axis) as ``target``.
    """
    size = tuple(int(s) for s in size)
    spatial = tuple(target.shape[-len(size) :])
    if spatial == size:
        return target
    if all(n % s == 0 for n, s in zip(spatial, size, strict=True)):
        lead = (slice(None),) * (target.ndim - len(size))
        steps = tuple(
            slice((n // s) // 2, None, n // s) for n, s in zip(spatial, size, strict=True)
        )
        return target[lead + steps]
    squeeze = target.ndim == len(size) + 1
    x = target.unsqueeze(1) if squeeze else target
    out = F.interpolate(x.float(), size=size, mode="nearest-exact").to(target.dtype)
    return out[:, 0] if squeeze else out
