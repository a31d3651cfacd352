"""Contract tests run over every registered model, in 2D and 3D."""

from __future__ import annotations

import re

import pytest
import torch

from ctseg.models import (
    ConvNormAct,
    InstanceNorm,
    StackedConvBlock,
    UNet,
    conv_nd,
    create_model,
    list_models,
)

OUT_CHANNELS = 3
MODELS = list_models()


def _build(name: str, spatial_dims: int, **kwargs: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(
        name, spatial_dims=spatial_dims, in_channels=1, out_channels=OUT_CHANNELS, **kwargs
    )


def _input(model: torch.nn.Module, batch: int = 2) -> torch.Tensor:
    # Twice the divisor: the smallest size that leaves > 1 voxel at the bottleneck.
    size = tuple(2 * d for d in model.required_divisor())
    return torch.randn(batch, 1, *size)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("name", MODELS)
class TestModelContract:
    def test_forward_shape(self, name: str, spatial_dims: int) -> None:
        model = _build(name, spatial_dims)
        x = _input(model)
        y = model(x)
        assert isinstance(y, torch.Tensor)
        assert y.shape == (x.shape[0], OUT_CHANNELS, *x.shape[2:])

    def test_backward_finite_grads(self, name: str, spatial_dims: int) -> None:
        # With deep supervision every parameter (every head included) takes part.
        model = _build(name, spatial_dims, deep_supervision=True).train()
        outputs = model(_input(model))
        sum(out.square().mean() for out in outputs).backward()
        for pname, p in model.named_parameters():
            assert p.grad is not None, f"no gradient for {pname}"
            assert torch.isfinite(p.grad).all(), f"non-finite gradient for {pname}"
        # Without it, only the auxiliary heads (kept so checkpoints stay interchangeable) idle.
        model.zero_grad(set_to_none=True)
        model.deep_supervision = False
        model(_input(model)).square().mean().backward()
        idle = {n for n, p in model.named_parameters() if p.grad is None}
        assert all(n.startswith("heads.") for n in idle), idle
        assert len(idle) == 2 * (len(model.heads) - 1)

    def test_state_dict_round_trip(self, name: str, spatial_dims: int) -> None:
        model = _build(name, spatial_dims).eval()
        torch.manual_seed(123)
        other = create_model(name, spatial_dims=spatial_dims, out_channels=OUT_CHANNELS).eval()
        x = _input(model, batch=1)
        with torch.no_grad():
            assert not torch.allclose(model(x), other(x))
            other.load_state_dict(model.state_dict())
            torch.testing.assert_close(other(x), model(x))

    def test_deep_supervision(self, name: str, spatial_dims: int) -> None:
        model = _build(name, spatial_dims, deep_supervision=True)
        x = _input(model)
        outputs = model.train()(x)
        assert isinstance(outputs, list)
        scales = model.deep_supervision_scales()
        assert len(outputs) == len(model.features) - 1 == len(scales)
        for out, scale in zip(outputs, scales, strict=True):
            expected = tuple(n // s for n, s in zip(x.shape[2:], scale, strict=True))
            assert out.shape == (x.shape[0], OUT_CHANNELS, *expected)
        with torch.no_grad():
            y = model.eval()(x)
        assert isinstance(y, torch.Tensor)
        assert y.shape == (x.shape[0], OUT_CHANNELS, *x.shape[2:])

    def test_wrong_size_suggests_padding(self, name: str, spatial_dims: int) -> None:
        model = _build(name, spatial_dims).eval()
        divisor = model.required_divisor()
        bad = tuple(2 * d + 1 for d in divisor)
        suggested = tuple(3 * d for d in divisor)
        with pytest.raises(ValueError, match=re.escape(str(suggested))):
            model(torch.randn(1, 1, *bad))

    def test_wrong_channels_or_rank(self, name: str, spatial_dims: int) -> None:
        model = _build(name, spatial_dims).eval()
        size = model.required_divisor()
        with pytest.raises(ValueError, match="channel"):
            model(torch.randn(1, 2, *size))
        with pytest.raises(ValueError, match="expects input"):
            model(torch.randn(1, *size))


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown model 'nope'") as info:
        create_model("nope")
    for name in MODELS:
        assert name in str(info.value)


def test_bad_keyword_names_model() -> None:
    with pytest.raises(TypeError, match="'unet'.*spatial_dims"):
        create_model("unet", no_such_arg=1)
    with pytest.raises(ValueError, match="'unet'.*strides"):
        create_model("unet", strides=[1, 2])
    with pytest.raises(ValueError, match="strides\\[0\\]"):
        create_model("unet", features=(4, 8), strides=[2, 2])


def test_registry_has_unet_presets() -> None:
    assert {"unet", "unet_small"} <= set(MODELS)
    small = create_model("unet_small", spatial_dims=2)
    assert isinstance(small, UNet) and small.features == (8, 16, 32, 64)


def test_anisotropic_strides_and_kernels() -> None:
    model = UNet(
        spatial_dims=3,
        features=(4, 8, 16),
        strides=[1, (2, 2, 1), 2],
        kernel_sizes=[(3, 3, 1), 3, 3],
        deep_supervision=True,
    )
    assert model.required_divisor() == (4, 4, 2)
    first_conv = model.encoder[0][0][0]
    assert first_conv.kernel_size == (3, 3, 1) and first_conv.padding == (1, 1, 0)
    x = torch.randn(1, 1, 8, 8, 4)
    outputs = model(x)
    assert [tuple(o.shape[2:]) for o in outputs] == [(8, 8, 4), (4, 4, 4)]
    assert model.padded_size((9, 8, 3)) == (12, 8, 4)


def test_blocks_factories_and_init() -> None:
    assert conv_nd(2) is torch.nn.Conv2d and conv_nd(3) is torch.nn.Conv3d
    with pytest.raises(ValueError, match="spatial_dims"):
        conv_nd(1)
    with pytest.raises(ValueError, match="odd"):
        ConvNormAct(3, 1, 4, kernel_size=2)
    block = StackedConvBlock(2, 1, 4, num_convs=3, stride=2)
    assert len(block) == 3
    assert block[0][0].stride == (2, 2) and block[1][0].stride == (1, 1)
    assert block(torch.randn(1, 1, 8, 8)).shape == (1, 4, 4, 4)
    model = UNet(spatial_dims=2, features=(4, 8))
    assert all(not h.bias.detach().any() for h in model.heads)


def test_dropout_is_active_only_in_training() -> None:
    model = UNet(spatial_dims=2, features=(4, 8), dropout=0.5)
    x = torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model(x), model(x))
        model.train()
        assert not torch.allclose(model(x), model(x))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_instance_norm_matches_torch(spatial_dims: int) -> None:
    torch_cls = torch.nn.InstanceNorm2d if spatial_dims == 2 else torch.nn.InstanceNorm3d
    reference = torch_cls(4, affine=True)
    torch.nn.init.normal_(reference.weight)
    torch.nn.init.normal_(reference.bias)
    ours = InstanceNorm(4)
    ours.load_state_dict(reference.state_dict())  # same parameter names: checkpoints interchange
    x = torch.randn(2, 4, *(6,) * spatial_dims) * 3 + 1
    for mode in (True, False):
        torch.testing.assert_close(ours.train(mode)(x), reference.train(mode)(x))


def test_single_voxel_bottleneck_is_refused() -> None:
    model = UNet(spatial_dims=2, features=(4, 8))
    for mode in (True, False):
        with pytest.raises(ValueError, match=r"at least \(4, 4\)"):
            model.train(mode)(torch.randn(1, 1, 2, 2))
