"""2D training samples (axial slices) and slice-wise prediction, with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctseg.config import AugmentSettings
from ctseg.data import SliceSampler, foreground_slices
from ctseg.inference.slices import slice_probabilities
from ctseg.models import create_model
from ctseg.models.runtime import as_logits, forward
from ctseg.training.validation import ValidationSet


def _case(fg_slices: range = range(3, 6)) -> dict:
    """Image value = slice index z + 100 everywhere (so a patch tells which slice it came from);
    an organ (1) and a tumour (2) only in ``fg_slices``."""
    shape = (40, 36, 12)
    image = np.broadcast_to(np.arange(shape[2], dtype=np.float32) + 100.0, shape)[None].copy()
    seg = np.zeros((1, *shape), np.uint8)
    for z in fg_slices:
        seg[0, 10:30, 8:28, z] = 1
        seg[0, 12:15, 10:13, z] = 2
    locations = {c: np.argwhere(seg[0] == c) for c in (1, 2)}
    return {"image": image, "seg": seg, "locations": locations, "pad_value": -1.0}


def _slices_seen(images: np.ndarray) -> set[int]:
    values = np.unique(images)
    return {int(v) - 100 for v in values if v >= 100}


def test_foreground_slices_lists_the_slices_with_labels() -> None:
    np.testing.assert_array_equal(foreground_slices(_case()["seg"]), [3, 4, 5])


def test_dropping_empty_slices_really_drops_them() -> None:
    case = _case()
    keep = SliceSampler([case], (16, 16), batch_size=4, foreground_fraction=0.0, augment=None, drop_empty=True)
    seen = set()
    for seed in range(30):
        images, labels = keep.sample(np.random.default_rng(seed))
        assert images.shape == (4, 1, 16, 16) and labels.shape == (4, 16, 16) and labels.dtype == np.int64
        seen |= _slices_seen(images)
    assert seen == {3, 4, 5}  # random (not foreground-centred) samples, and still only those slices
    every = SliceSampler([case], (16, 16), batch_size=4, foreground_fraction=0.0, augment=None)
    seen_all = set().union(*(_slices_seen(every.sample(np.random.default_rng(s))[0]) for s in range(30)))
    assert seen_all - {3, 4, 5}, "without dropping, empty slices are drawn too"


def test_drop_empty_skips_cases_without_foreground_and_refuses_when_none_has_any() -> None:
    empty = _case(fg_slices=range(0))
    sampler = SliceSampler([empty, _case()], (16, 16), 2, 0.0, None, drop_empty=True)
    assert all(sampler.draw(np.random.default_rng(s), False)[0] == 1 for s in range(20))
    with pytest.raises(ValueError, match="no training case has a slice"):
        SliceSampler([empty], (16, 16), 2, 0.0, None, drop_empty=True)


def test_foreground_centred_slices_hold_the_small_tumour() -> None:
    sampler = SliceSampler([_case()], (16, 16), batch_size=2, foreground_fraction=1.0, augment=None)
    rng = np.random.default_rng(0)
    hits = sum(bool((sampler.sample(rng)[1] == 2).any()) for _ in range(40))
    assert hits >= 15  # class-balanced: the tumour class is drawn in about half of the batches


def test_augmented_slices_are_replayable_and_flip_in_plane_only() -> None:
    augment = AugmentSettings(flip_prob=1.0, rotate_prob=1.0, scale_prob=1.0, elastic_prob=1.0, noise_prob=1.0)
    sampler = SliceSampler([_case()], (24, 20), 3, 0.5, augment)
    a, b = sampler.sample(np.random.default_rng(5)), sampler.sample(np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (3, 1, 24, 20) and set(np.unique(a[1])) <= {0, 1, 2}


def test_validation_set_draws_2d_slice_patches() -> None:
    val = ValidationSet([_case()], (16, 16), 4, {0: "bg", 1: "organ", 2: "tumour"}, drop_empty=True)
    assert len(val.items) == 4
    assert all(img.shape == (1, 16, 16) and lab.shape == (16, 16) for img, lab in val.items)
    assert _slices_seen(np.stack([img for img, _ in val.items])) <= {3, 4, 5}


class _Recording(torch.nn.Module):
    """Class-1 logit = the input; remembers the batch size of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(int(x.shape[0]))
        return torch.cat([torch.zeros_like(x), x, -x], dim=1)


def test_validation_calls_stay_within_the_voxel_budget() -> None:
    """Large validation patches go through the network fewer at a time; the scores do not change."""
    labels = {0: "bg", 1: "organ", 2: "tumour"}
    default, bounded = _Recording(), _Recording()
    a = ValidationSet([_case()], (16, 16), 6, labels).evaluate(default, torch.device("cpu"))
    b = ValidationSet([_case()], (16, 16), 6, labels, max_voxels=2 * 16 * 16 + 5).evaluate(bounded, torch.device("cpu"))
    assert default.batches == [4, 2] and bounded.batches == [2, 2, 2]
    assert a["dice"] == b["dice"] and a["loss"] == pytest.approx(b["loss"])
    tiny = ValidationSet([_case()], (16, 16), 3, labels, max_voxels=10)
    assert tiny.chunk == 1  # a patch larger than the budget still runs, alone


class _Pointwise(torch.nn.Module):
    """A '2D network' whose class-1 logit is the input itself: its softmax is known at every pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] == 1
        return torch.cat([torch.zeros_like(x), x], dim=1)


@pytest.mark.parametrize(("shape", "patch", "tta"), [((20, 18, 7), (32, 32), False), ((70, 50, 5), (32, 24), True)])
def test_slice_probabilities_match_the_pointwise_answer(shape, patch, tta) -> None:
    """Padding (slice smaller than the patch) and tiling (larger) leave a pointwise network's answer
    unchanged on every slice, in the right place and order."""
    volume = np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32)
    probs = slice_probabilities(volume, _Pointwise(), patch, 2, step=0.5, batch_size=3, tta=tta)
    assert probs.shape == (2, *shape) and probs.dtype == np.float32
    expected = 1.0 / (1.0 + np.exp(-volume[0]))
    np.testing.assert_allclose(probs[1], expected, atol=1e-5)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)


def test_a_softmax_head_is_trained_and_predicted_through_its_logits() -> None:
    torch.manual_seed(0)
    plain = create_model("unet", spatial_dims=2, out_channels=3, features=(4, 8))
    head = create_model("unet", spatial_dims=2, out_channels=3, features=(4, 8), final_activation="softmax")
    head.load_state_dict(plain.state_dict())
    plain.eval(), head.eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        ref = torch.softmax(plain(x), 1)
        np.testing.assert_allclose(torch.softmax(forward(head, x), 1).numpy(), ref.numpy(), atol=1e-6)
        np.testing.assert_allclose(torch.softmax(as_logits(head, head(x)), 1).numpy(), ref.numpy(), atol=1e-6)
    assert as_logits(plain, ref) is ref  # a logits network is left alone


class _Batches3d(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 2, 1)
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(int(x.shape[0]))
        return self.conv(x)


def test_only_small_lone_3d_inputs_are_sent_as_a_pair() -> None:
    """PyTorch's slow batch-of-one path only hits small inputs; a large one runs alone."""
    from ctseg.models.runtime import DUPLICATE_BELOW_VOXELS, forward

    net = _Batches3d()
    small, large = torch.rand(1, 1, 8, 8, 8), torch.rand(1, 1, 64, 64, 64)
    assert 8**3 < DUPLICATE_BELOW_VOXELS <= 64**3
    with torch.inference_mode():
        a, b = forward(net, small), forward(net, large)
        torch.testing.assert_close(a, net.conv(small))
        torch.testing.assert_close(b, net.conv(large))
        forward(net, torch.rand(3, 1, 8, 8, 8))
    assert net.batches == [2, 1, 3] and a.shape[0] == 1 and b.shape[0] == 1
