"""Contract tests run over every registered model (2D and 3D where allowed), plus known answers
for the building blocks and the nnU-Net-style U-Net."""

from __future__ import annotations

import re

import pytest
import torch

from ctseg.errors import RunFolderError
from ctseg.models import (
    ConvNormAct,
    InstanceNorm,
    InstanceNormLeakyReLU,
    ResidualBlock,
    StackedConvBlock,
    UNet,
    conv_nd,
    count_parameters,
    create_model,
    list_models,
    model_info,
)
from ctseg.models._norm_act import instance_norm_leaky_relu
from ctseg.models.persist import build_model, load_model, model_spec, save_model

OUT_CHANNELS = 3
MODELS = list_models()
CASES = [(name, dims) for name in MODELS for dims in model_info(name).spatial_dims]
#: Tiny widths (three stages) that every architecture accepts: keeps the suite fast.
SMALL = {"features": (4, 8, 16)}

#: Parameters at the default widths (1 input channel, 3 classes) and the input-size divisor:
#: the table in README.md. A change here is a change of architecture: update both.
DEFAULTS = {
    ("default", 2): (1_943_004, 16),
    ("default", 3): (5_647_100, 16),
    ("fcn", 2): (12_535_625, 32),
    ("fcn", 3): (37_586_153, 32),
    ("resunet", 2): (505_001, 8),
    ("resunet", 3): (1_423_817, 8),
    ("simple_unet", 2): (117_206, 4),
    ("simple_unet", 3): (339_702, 4),
    ("unet", 2): (1_943_004, 16),
    ("unet", 3): (5_647_100, 16),
    ("unet3d", 3): (19_071_459, 8),
    ("unet_small", 2): (121_201, 8),
    ("unet_small", 3): (350_977, 8),
    ("vnet", 2): (13_407_123, 16),
    ("vnet", 3): (65_819_091, 16),
}


def _build(name: str, spatial_dims: int, **kwargs: object) -> torch.nn.Module:
    torch.manual_seed(0)
    settings = {**SMALL, **kwargs}
    return create_model(
        name, spatial_dims=spatial_dims, in_channels=1, out_channels=OUT_CHANNELS, **settings
    )


def _size(model: torch.nn.Module) -> tuple[int, ...]:
    """An odd multiple of the divisor on the first axis (3x), the divisor itself elsewhere: a
    non-cubic input with more than one voxel at the coarsest level."""
    divisor = model.required_divisor()
    return (3 * divisor[0], *divisor[1:])


def _input(model: torch.nn.Module, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 1, *_size(model), generator=g)


@pytest.mark.parametrize(("name", "spatial_dims"), CASES)
class TestModelContract:
    def test_forward_backward_and_deep_supervision(self, name: str, spatial_dims: int) -> None:
        has_ds = model_info(name).deep_supervision
        model = _build(name, spatial_dims, **({"deep_supervision": True} if has_ds else {}))
        x = _input(model)
        outputs = model.train()(x)
        if has_ds:
            # Full resolution first, then divided by the cumulative strides.
            assert isinstance(outputs, list)
            scales = model.deep_supervision_scales()
            assert len(outputs) == len(scales) == len(model.features) - 1
            for out, scale in zip(outputs, scales, strict=True):
                expected = tuple(n // s for n, s in zip(x.shape[2:], scale, strict=True))
                assert out.shape == (x.shape[0], OUT_CHANNELS, *expected)
        else:
            assert isinstance(outputs, torch.Tensor) and model.deep_supervision_scales() == []
            outputs = [outputs]
        assert outputs[0].shape == (x.shape[0], OUT_CHANNELS, *x.shape[2:])
        sum(out.square().mean() for out in outputs).backward()
        for pname, p in model.named_parameters():
            assert p.grad is not None, f"{name}: no gradient for {pname}"
            assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient for {pname}"
        with torch.no_grad():
            y = model.eval()(x)
        assert isinstance(y, torch.Tensor)
        assert y.shape == (x.shape[0], OUT_CHANNELS, *x.shape[2:])
        assert torch.isfinite(y).all()

    def test_state_dict_round_trip_through_persist(
        self, name: str, spatial_dims: int, tmp_path
    ) -> None:
        spec = model_spec(None, OUT_CHANNELS, name, spatial_dims=spatial_dims, overrides=SMALL)
        torch.manual_seed(0)
        model = build_model(spec)
        x = _input(model, batch=2)
        with torch.no_grad():
            model.train()(x)  # moves batch-norm running statistics away from their defaults
        model.eval()
        save_model(model, spec, tmp_path / "m.pt")
        torch.manual_seed(123)
        loaded, loaded_spec = load_model(tmp_path / "m.pt")
        assert loaded_spec == spec and not loaded.training
        assert loaded.state_dict().keys() == model.state_dict().keys()
        with torch.no_grad():
            torch.manual_seed(123)
            fresh = build_model(spec).eval()
            assert not torch.allclose(fresh(x), model(x))
            torch.testing.assert_close(loaded(x), model(x))

    def test_input_errors_name_the_fix(self, name: str, spatial_dims: int) -> None:
        model = _build(name, spatial_dims).eval()
        divisor = model.required_divisor()
        bad = tuple(2 * d + 1 for d in divisor)
        suggested = tuple(3 * d for d in divisor)
        with pytest.raises(ValueError, match=re.escape(str(suggested))):
            model(torch.randn(1, 1, *bad))
        with pytest.raises(ValueError, match=re.escape(str(tuple(2 * d for d in divisor)))):
            model(torch.randn(1, 1, *divisor))  # one voxel at the coarsest level
        with pytest.raises(ValueError, match="channel"):
            model(torch.randn(1, 2, *suggested))
        with pytest.raises(ValueError, match="expects input"):
            model(torch.randn(1, *suggested))
        assert model.padded_size(bad) == suggested

    def test_default_size_parameters_and_divisor(self, name: str, spatial_dims: int) -> None:
        with torch.device("meta"):  # no memory, no initialisation cost
            model = create_model(name, spatial_dims=spatial_dims, out_channels=OUT_CHANNELS)
        params, divisor = DEFAULTS[(name, spatial_dims)]
        assert count_parameters(model) == params
        assert model.required_divisor() == (divisor,) * spatial_dims
        assert model.in_channels == 1 and model.out_channels == OUT_CHANNELS

    def test_dropout_and_softmax_head(self, name: str, spatial_dims: int) -> None:
        model = _build(name, spatial_dims, dropout=0.5, final_activation="softmax")
        x = _input(model, batch=2, seed=1)
        with torch.no_grad():
            model.eval()
            y = model(x)
            torch.testing.assert_close(y.sum(1), torch.ones_like(y[:, 0]))
            torch.testing.assert_close(model(x), y)  # eval: deterministic
            model.train()
            first, second = model(x), model(x)
            first = first[0] if isinstance(first, list) else first
            second = second[0] if isinstance(second, list) else second
            assert not torch.allclose(first, second)  # train: channel dropout is active


def test_every_model_is_in_the_table() -> None:
    assert set(CASES) == set(DEFAULTS)


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown model 'nope'") as info:
        create_model("nope")
    for name in MODELS:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="valid names"):
        model_info("nope")


def test_3d_only_model_refuses_2d() -> None:
    assert model_info("unet3d").spatial_dims == (3,)
    with pytest.raises(ValueError, match="'unet3d'.*3D-only"):
        create_model("unet3d", spatial_dims=2)


def test_bad_keyword_names_model() -> None:
    with pytest.raises(TypeError, match="'unet'.*spatial_dims"):
        create_model("unet", no_such_arg=1)
    with pytest.raises(TypeError, match="'fcn'.*accepted arguments"):
        create_model("fcn", deep_supervision=True)
    with pytest.raises(ValueError, match="'unet'.*strides"):
        create_model("unet", strides=[1, 2])
    with pytest.raises(ValueError, match="strides\\[0\\]"):
        create_model("unet", features=(4, 8), strides=[2, 2])
    with pytest.raises(ValueError, match="norm must be one of"):
        create_model("vnet", norm="layer")
    with pytest.raises(ValueError, match="at least 3"):
        create_model("fcn", features=(4, 8))


def test_registry_aliases_and_info() -> None:
    assert {"unet", "unet_small", "default", "simple_unet", "resunet"} <= set(MODELS)
    small = create_model("unet_small", spatial_dims=2)
    assert isinstance(small, UNet) and small.features == (8, 16, 32, 64)
    default = create_model("default", features=(4, 8))
    assert default.deep_supervision and isinstance(default.encoder[1][0][1], InstanceNorm)
    res = create_model("resunet", features=(4, 8))
    assert isinstance(res.encoder[1], ResidualBlock)
    simple = create_model("simple_unet", spatial_dims=2)
    assert isinstance(simple.encoder[1][0], torch.nn.MaxPool2d)
    assert model_info("unet").uses_plan and model_info("default").uses_plan
    assert not model_info("resunet").uses_plan and not model_info("vnet").deep_supervision


def test_unet_state_dict_keys_unchanged() -> None:
    # Saved runs hold these keys: the default U-Net must keep its layout.
    keys = list(UNet(spatial_dims=3, features=(4, 8), dropout=0.0).state_dict())
    assert keys == [
        "encoder.0.0.0.weight", "encoder.0.0.1.weight", "encoder.0.0.1.bias",
        "encoder.0.1.0.weight", "encoder.0.1.1.weight", "encoder.0.1.1.bias",
        "encoder.1.0.0.weight", "encoder.1.0.1.weight", "encoder.1.0.1.bias",
        "encoder.1.1.0.weight", "encoder.1.1.1.weight", "encoder.1.1.1.bias",
        "upsamples.0.weight", "upsamples.0.bias",
        "decoder.0.0.0.weight", "decoder.0.0.1.weight", "decoder.0.0.1.bias",
        "decoder.0.1.0.weight", "decoder.0.1.1.weight", "decoder.0.1.1.bias",
        "heads.0.weight", "heads.0.bias",
    ]  # fmt: skip


def test_model_spec_precedence() -> None:
    net = {"features": [4, 8], "strides": [[1, 1, 1], [2, 2, 2]], "kernel_sizes": [3, 3]}
    spec = model_spec(net, 3, "unet", deep_supervision=False, dropout=0.1)
    assert spec == {
        "name": "unet",
        "kwargs": {
            "spatial_dims": 3, "in_channels": 1, "out_channels": 3, "features": [4, 8],
            "strides": [[1, 1, 1], [2, 2, 2]], "kernel_sizes": [3, 3],
            "deep_supervision": False, "dropout": 0.1,
        },
    }  # fmt: skip
    # Setting the widths replaces the plan's network as a whole; non-plan models ignore it.
    own = model_spec(net, 3, "unet", spatial_dims=2, overrides={"features": (4, 8, 16)})
    assert "strides" not in own["kwargs"] and own["kwargs"]["features"] == [4, 8, 16]
    vnet = model_spec(net, 2, "vnet", deep_supervision=True)
    assert set(vnet["kwargs"]) == {"spatial_dims", "in_channels", "out_channels", "dropout"}
    with pytest.raises(ValueError, match="valid names"):
        model_spec(net, 3, "nope")


def test_bad_spec_file_is_a_run_folder_error(tmp_path) -> None:
    spec = model_spec(None, 3, "simple_unet", spatial_dims=2)
    save_model(build_model(spec), spec, tmp_path / "m.pt")
    (tmp_path / "m.json").write_text('{"name": "nope", "kwargs": {}}')
    with pytest.raises(RunFolderError, match="m.json: not a valid model spec"):
        load_model(tmp_path / "m.pt")


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
    down = ConvNormAct(2, 1, 4, kernel_size=2, stride=2, norm="batch", act="prelu")
    assert down[0].padding == (0, 0) and down[0].bias is None
    assert isinstance(down[1], torch.nn.BatchNorm2d) and down[2].weight.shape == (4,)
    assert ConvNormAct(2, 1, 4, norm="none", act=None)[0].bias is not None
    block = StackedConvBlock(2, 1, 4, num_convs=3, stride=2)
    assert len(block) == 3
    assert block[0][0].stride == (2, 2) and block[1][0].stride == (1, 1)
    assert block(torch.randn(1, 1, 8, 8)).shape == (1, 4, 4, 4)
    model = UNet(spatial_dims=2, features=(4, 8))
    assert all(not h.bias.detach().any() for h in model.heads)


def test_residual_block_adds_its_input() -> None:
    block = ResidualBlock(2, 4, 4, num_convs=2, act="relu")
    assert isinstance(block.shortcut, torch.nn.Identity)
    torch.nn.init.zeros_(block.convs[1][1].weight)  # last norm's scale 0: convs(x) == 0
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(block(x), torch.relu(x))
    strided = ResidualBlock(3, 2, 4, stride=2)
    assert strided.shortcut[0].stride == (2, 2, 2)
    assert strided(torch.randn(2, 2, 8, 8, 8)).shape == (2, 4, 4, 4, 4)


def test_fcn_upsampling_starts_as_linear_interpolation() -> None:
    model = create_model("fcn", spatial_dims=2, features=(4, 8, 16), out_channels=2)
    up = model.upsamples[0]
    x = torch.randn(1, 2, 4, 4)
    expected = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear")
    # Equal away from the border (the transposed convolution pads with zeros).
    torch.testing.assert_close(up(x)[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1])


def test_vnet_input_stage_is_residual() -> None:
    model = create_model("vnet", spatial_dims=2, features=(4, 8), act="relu", norm="none")
    torch.nn.init.zeros_(model.input_convs[0][0].weight)
    torch.nn.init.zeros_(model.input_convs[0][0].bias)
    x = torch.randn(1, 1, 4, 4)
    hidden = model.input_act(model.input_convs(x) + x.repeat(1, 4, 1, 1))
    torch.testing.assert_close(hidden, torch.relu(x).repeat(1, 4, 1, 1))
    assert model.input_projection is None
    assert create_model("vnet", in_channels=3, features=(4, 8)).input_projection is not None


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


@pytest.mark.parametrize(
    ("shape", "layout"),
    [((2, 3, 5, 6, 4), torch.channels_last_3d), ((2, 3, 5, 6, 4), torch.contiguous_format), ((3, 2, 6, 5), torch.channels_last), ((1, 4, 7), torch.contiguous_format)],
)
def test_instance_norm_leaky_relu_gradients(shape: tuple[int, ...], layout: torch.memory_format) -> None:
    """The fused module's own backward (used when training on the CPU) against finite
    differences in float64, and against PyTorch's group norm + leaky ReLU in float32."""
    torch.manual_seed(0)
    norm = InstanceNormLeakyReLU(shape[1], negative_slope=0.1).double()
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = (torch.randn(shape, dtype=torch.float64) * 2 + 1).contiguous(memory_format=layout).requires_grad_()
    assert torch.autograd.gradcheck(lambda t, w, b: instance_norm_leaky_relu(t, shape[1], w, b, 1e-5, 0.1), (x, norm.weight, norm.bias))

    reference = torch.nn.Sequential(InstanceNorm(shape[1]), torch.nn.LeakyReLU(0.1))
    reference[0].load_state_dict(norm.float().state_dict())  # the same parameter names
    outputs = []
    for module in (norm, reference):
        xf = x.detach().float().contiguous(memory_format=layout).requires_grad_()
        y = module(xf)
        y.backward(torch.linspace(-1, 1, y.numel()).reshape(y.shape))
        outputs.append((y.detach(), xf.grad, module.state_dict(keep_vars=True)))
    (y1, gx1, p1), (y2, gx2, p2) = outputs
    assert torch.equal(y1, y2)  # the forward is PyTorch's own kernel
    torch.testing.assert_close(gx1, gx2, rtol=1e-4, atol=1e-5)
    assert gx1.is_contiguous(memory_format=layout)
    for name in ("weight", "bias"):
        torch.testing.assert_close(p1[name].grad, p2[f"0.{name}"].grad, rtol=1e-4, atol=1e-4)


def test_conv_norm_act_fuses_instance_norm_and_leaky_relu() -> None:
    """Instance norm + leaky ReLU become one module with the parameter names of the pair, so
    checkpoints written before the fusion load unchanged; other pairs stay separate."""
    fused = ConvNormAct(3, 2, 4)
    assert isinstance(fused[1], InstanceNormLeakyReLU) and len(fused) == 2
    old = torch.nn.Sequential(torch.nn.Conv3d(2, 4, 3, padding=1, bias=False), InstanceNorm(4), torch.nn.LeakyReLU(0.01, inplace=True))
    fused.load_state_dict(old.state_dict())
    x = torch.randn(2, 2, 4, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), old(x))
    assert isinstance(ConvNormAct(3, 2, 4, act="relu")[1], InstanceNorm) and len(ConvNormAct(3, 2, 4, act="relu")) == 3
    assert not isinstance(ConvNormAct(3, 2, 4, act=None)[1], InstanceNormLeakyReLU)


def test_unet_without_deep_supervision_leaves_only_aux_heads_idle() -> None:
    model = UNet(spatial_dims=2, features=(4, 8, 16), deep_supervision=False).train()
    model(torch.randn(2, 1, 8, 8)).square().mean().backward()
    idle = {n for n, p in model.named_parameters() if p.grad is None}
    assert idle == {"heads.0.weight", "heads.0.bias"}


def test_unet_decoder_convs_per_stage() -> None:
    """One convolution per decoder stage (nnU-Net's residual-encoder presets) while the encoder
    keeps two; the output shape and the deep-supervision outputs are unchanged."""
    lean = UNet(spatial_dims=3, features=(4, 8, 16), decoder_convs_per_stage=1, deep_supervision=True)
    full = UNet(spatial_dims=3, features=(4, 8, 16), deep_supervision=True)
    assert [len(block) for block in lean.decoder] == [1, 1] and [len(block) for block in full.decoder] == [2, 2]
    assert all(len(stage) == 2 for stage in lean.encoder)
    x = torch.randn(2, 1, 8, 8, 8)
    assert [o.shape for o in lean.train()(x)] == [o.shape for o in full.train()(x)]
    assert count_parameters(lean) < count_parameters(full)
