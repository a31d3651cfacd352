"""The "monai" tile grid reproduces MONAI's sliding_window_inference (tile starts, Gaussian weights,
padding, stitched probabilities), and skipping the tiles off the body keeps it exact inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.conftest import make_affine

from ctseg.config import Config
from ctseg.inference import Predictor
from ctseg.inference.postprocess import remove_subgrid_regions
from ctseg.inference.sliding_window import (
    monai_importance,
    sliding_window,
    tile_grid,
    tiles_touching,
)
from ctseg.io import Image
from ctseg.models.persist import build_model, model_spec, save_model
from ctseg.preprocessing import Plan, preprocess_region, restore_labels, tiles_on_body, volume_grid

monai_inferers = pytest.importorskip("monai.inferers", reason="MONAI (a test dependency) is not installed")
monai_data = pytest.importorskip("monai.data.utils", reason="MONAI (a test dependency) is not installed")

PATCH = (16, 12, 8)


def _net(classes: int = 3, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.InstanceNorm3d(4), torch.nn.LeakyReLU(), torch.nn.Conv3d(4, classes, 3, padding=1)
    ).eval()


def _monai(volume: np.ndarray, net, patch=PATCH, batch: int = 4) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """MONAI's stitched softmax over a (1, X, Y, Z) volume and the tile starts it ran (padded voxels)."""
    seen: list[tuple[int, ...]] = []

    def predictor(x: torch.Tensor, coords) -> torch.Tensor:
        seen.extend(tuple(s.start for s in c[2:]) for c in coords)
        return torch.softmax(net(x), 1)

    with torch.inference_mode():
        out = monai_inferers.sliding_window_inference(torch.from_numpy(volume[None]), patch, batch, predictor, overlap=0.5, mode="gaussian", with_coord=True)
    return out[0].numpy(), seen


def _dice_per_label(a: np.ndarray, b: np.ndarray, classes: int) -> list[float]:
    out = []
    for c in range(1, classes):
        x, y = a == c, b == c
        total = int(x.sum()) + int(y.sum())
        out.append(1.0 if total == 0 else 2.0 * int((x & y).sum()) / total)
    return out


def test_monai_weights_equal_monais_importance_map() -> None:
    for patch in [(8, 8, 8), (7, 9, 6), (40, 48, 48)]:
        ref = monai_data.compute_importance_map(patch, mode="gaussian", sigma_scale=0.125).numpy()
        np.testing.assert_allclose(monai_importance(patch), ref, rtol=1e-6, atol=0)
    weights = monai_importance((8, 8, 8))
    assert weights.min() == pytest.approx(1e-3) and weights.argmax() == np.ravel_multi_index((3, 3, 3), (8, 8, 8))  # first of the 2x2x2 middle voxels


def test_monai_tile_starts_match_the_windows_monai_runs() -> None:
    volume = np.zeros((1, 37, 29, 5), np.float32)
    _, seen = _monai(volume, lambda x: torch.zeros((x.shape[0], 2, *x.shape[2:])))
    # MONAI pads the 5-voxel axis to 8 (1 before, 2 after): our starts are in unpadded voxels
    assert [(a, b, c - 1) for a, b, c in seen] == tile_grid((37, 29, 5), PATCH, 0.5, "monai")
    assert sorted({t[0] for t in seen}) == [0, 8, 16, 21]  # interval 8, the last moved back to end at 37
    assert sorted({t[1] for t in seen}) == [0, 6, 12, 17]
    # the default grid spreads starts instead
    assert sorted({t[0] for t in tile_grid((37, 29, 5), PATCH, 0.5, "spread")}) == [0, 7, 14, 21]


@pytest.mark.parametrize("shape", [(37, 25, 13), (20, 16, 5), (5, 40, 17)])
def test_monai_grid_probabilities_equal_monai(shape) -> None:
    """Not a multiple of the patch; smaller than the patch along one axis (padded on both sides)."""
    volume = np.random.default_rng(sum(shape)).normal(size=(1, *shape)).astype(np.float32)
    net = _net()
    ref, _ = _monai(volume, net)
    ours = sliding_window(volume, net, PATCH, 3, grid="monai", batch_size=4)
    assert ours.shape == ref.shape == (3, *shape)
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)
    assert min(_dice_per_label(ours.argmax(0), ref.argmax(0), 3)) >= 0.999
    spread = sliding_window(volume, net, PATCH, 3, grid="spread", batch_size=4)
    assert np.abs(spread - ref).max() > 1e-3  # the default grid is a different (if as good) stitching


def test_tiles_off_the_box_are_skipped_and_the_box_still_agrees() -> None:
    shape, box = (40, 30, 6), (slice(10, 20), slice(8, 15), slice(0, 6))
    volume = np.random.default_rng(3).normal(size=(1, *shape)).astype(np.float32)
    patch = (8, 8, 8)
    tiles = tile_grid(shape, patch, 0.5, "monai")
    kept = tiles_touching(tiles, patch, box)
    # x starts 0, 4, ..., 32 (9), y 0, 4, ..., 20, 22 (7), z one tile (-1): 63 tiles; the box
    # [10, 20) x [8, 15) is reached by x starts 4, 8, 12, 16 and y starts 4, 8, 12
    assert len(tiles) == 63 and len(kept) == 12
    net = _net(seed=1)
    calls: list[int] = []

    def counted(x: torch.Tensor) -> torch.Tensor:
        calls.append(int(x.shape[0]))
        return net(x)

    ours = sliding_window(volume, counted, patch, 3, grid="monai", tiles=kept, batch_size=4)
    assert sum(calls) == 12
    ref, _ = _monai(volume, net, patch)
    np.testing.assert_allclose(ours[(slice(None), *box)], ref[(slice(None), *box)], atol=1e-5, rtol=0)
    assert np.all(ours[0, 30:] == 1.0)  # no tile there: background


# --- the Predictor: MONAI's grid on the whole preprocessed volume, only the body's tiles run ---

def _body_ct(shape=(48, 44, 5), spacing=(2.0, 2.0, 3.0)) -> Image:
    """A small 'body' (soft tissue and a denser organ) in the middle of a wide field of air."""
    affine = make_affine(spacing, shape=shape)
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).astype(float)
    xyz = idx @ affine[:3, :3].T + affine[:3, 3]
    rng = np.random.default_rng(0)
    body = ((xyz[..., 0] / 16) ** 2 + (xyz[..., 1] / 12) ** 2) < 1
    organ = ((xyz[..., 0] - 3) / 7) ** 2 + (xyz[..., 1] / 5) ** 2 < 1
    hu = np.where(body, 40.0, -1000.0) + np.where(organ, 80.0, 0.0) + rng.normal(0, 20, shape)
    return Image(hu.astype(np.float32), affine)


def _run(tmp: Path, tile_grid_name: str) -> Path:
    plan = Plan(
        spacing=(3.0, 3.0, 3.0), patch_size=(8, 8, 8), median_shape=(32, 29, 5),
        normalization={"mode": "window", "clip_low": -200.0, "clip_high": 300.0, "mean": 50.0, "std": 250.0},
        crop_threshold_hu=-500.0, labels={0: "background", 1: "organ", 2: "lesion"},
        network={"features": [4, 8], "strides": [[1, 1, 1], [2, 2, 2]], "kernel_sizes": [[3, 3, 3], [3, 3, 3]]},
    )  # fmt: skip
    run = tmp / f"run-{tile_grid_name}"
    run.mkdir()
    cfg = Config.from_dict({"predict": {"tile_grid": tile_grid_name, "keep_largest_component": False}})
    (run / "config.yaml").write_text(cfg.to_yaml())
    import json

    (run / "plan.json").write_text(json.dumps(plan.to_dict()))
    spec = model_spec(plan.network, plan.num_classes, "unet", deep_supervision=False)
    torch.manual_seed(2)
    save_model(build_model(spec), spec, run / "model_final.pt")
    return run


def test_predictor_monai_grid_matches_monai_on_the_whole_volume_inside_the_body(tmp_path) -> None:
    image = _body_ct()
    predictor = Predictor(_run(tmp_path, "monai"))
    plan = predictor.plan
    grid = volume_grid(image, plan)
    whole, whole_geometry = preprocess_region(grid, plan, tuple(slice(0, n) for n in grid.shape))
    ref, seen = _monai(whole[None], lambda x: predictor.network(x) if x.shape[0] > 1 else predictor.network(torch.cat([x, x]))[:1], plan.patch_size)
    calls: list[int] = []
    network = predictor.network
    predictor.network = lambda x: (calls.append(int(x.shape[0])), network(x))[1]
    probs, geometry = predictor.probabilities(image)
    assert grid.shape == (32, 29, 5) and len(seen) == 7 * 7  # MONAI: 7 x 7 x 1 tiles on the whole grid
    # the body's box on the grid is [9, 23) x [9, 20) x all: x starts 4..20 (5) and y starts 4..16 (4)
    assert grid.box[:2] == (slice(9, 23), slice(9, 20)) and sum(calls) == 5 * 4  # 29 of 49 tiles skipped
    lo = np.rint(np.linalg.solve(np.asarray(whole_geometry.resampled_affine), np.asarray(geometry.resampled_affine))[:3, 3]).astype(int)
    inside = tuple(slice(b.start - o, b.stop - o) for b, o in zip(grid.box, lo))
    np.testing.assert_allclose(probs[(slice(None), *inside)], ref[(slice(None), *grid.box)], atol=1e-5, rtol=0)
    # on the input grid: MONAI's labels restored the same way, compared inside the body's box
    ours = predictor.predict_image(image).array
    theirs = remove_subgrid_regions(restore_labels(ref, whole_geometry), predictor.subgrid_voxels(image, whole_geometry))
    canon = grid.reorientation
    body = np.zeros(canon.target_shape, bool)
    body[grid.crop] = True
    body = canon.invert(body)
    assert min(_dice_per_label(ours[body], theirs[body], 3)) >= 0.999 and np.all(ours[~body] == 0)


def _l_shaped_ct(shape=(60, 60, 5), spacing=(2.0, 2.0, 3.0)) -> Image:
    """An L-shaped 'body' (two soft-tissue bars) in air: the far corner of its box holds no body."""
    hu = np.full(shape, -1000.0)
    hu[4:56, 4:16] = 40.0  # one bar along x
    hu[4:16, 4:56] = 40.0  # one bar along y
    hu[6:12, 6:12] += 80.0  # a denser 'organ' where they meet
    hu += np.random.default_rng(1).normal(0, 20, shape)
    return Image(hu.astype(np.float32), make_affine(spacing, shape=shape))


def test_tiles_covering_only_air_are_skipped_and_the_body_still_agrees(tmp_path) -> None:
    image = _l_shaped_ct()
    predictor = Predictor(_run(tmp_path, "monai"))
    plan = predictor.plan
    grid = volume_grid(image, plan)
    touching = tiles_touching(tile_grid(grid.shape, plan.patch_size, 0.5, "monai"), plan.patch_size, grid.box)
    on_body = tiles_on_body(grid, touching, plan.patch_size)
    assert 0 < len(on_body) < len(touching)  # the tiles in the L's empty corner are left out
    calls: list[int] = []
    network = predictor.network
    predictor.network = lambda x: (calls.append(int(x.shape[0])), network(x))[1]
    ours = predictor.predict_image(image).array
    assert sum(calls) == len(on_body)
    predictor.network = network
    whole, whole_geometry = preprocess_region(grid, plan, tuple(slice(0, n) for n in grid.shape))
    ref, _ = _monai(whole[None], lambda x: network(x) if x.shape[0] > 1 else network(torch.cat([x, x]))[:1], plan.patch_size)
    theirs = remove_subgrid_regions(restore_labels(ref, whole_geometry), predictor.subgrid_voxels(image, whole_geometry))
    body = np.asarray(image.array) > -500.0
    assert min(_dice_per_label(ours[body], theirs[body], 3)) >= 0.999
    np.testing.assert_array_equal(ours[body], theirs[body])


def test_region_preprocessing_equals_the_same_block_of_the_whole_volume() -> None:
    image = _body_ct(shape=(50, 41, 12), spacing=(1.2, 2.0, 3.0))
    plan = Plan(spacing=(3.0, 1.5, 3.0), patch_size=(8, 8, 8), median_shape=(1, 1, 1), normalization={"mode": "window", "clip_low": -200.0, "clip_high": 300.0, "mean": 50.0, "std": 250.0}, crop_threshold_hu=-500.0, labels={0: "bg", 1: "fg"}, network={})
    grid = volume_grid(image, plan)
    whole, _ = preprocess_region(grid, plan, tuple(slice(0, n) for n in grid.shape))
    for region in [grid.box, (slice(3, 9), slice(20, 33), slice(0, 4)), (slice(0, 20), slice(40, 55), slice(5, 12))]:
        block, geometry = preprocess_region(grid, plan, region)
        np.testing.assert_allclose(block, whole[region], atol=1e-5, rtol=0)
        assert geometry.resampled_shape == tuple(s.stop - s.start for s in region)


def test_an_unknown_tile_grid_is_refused_with_the_choices(tmp_path) -> None:
    from ctseg.errors import InputError

    with pytest.raises(InputError, match="spread, monai"):
        Predictor(_run(tmp_path, "spread"), tile_grid="nnunet")
    with pytest.raises(InputError, match="spread, monai"):
        tile_grid((10, 10, 10), (4, 4, 4), 0.5, "nnunet")


def test_cli_predict_takes_the_tile_grid(tmp_path) -> None:
    from ctseg.cli import main
    from ctseg.io import read_nifti, write_nifti

    image = _body_ct()
    src = tmp_path / "ct.nii.gz"
    write_nifti(image, src)
    run = _run(tmp_path, "spread")
    assert main(["predict", "-i", str(src), "-o", str(tmp_path / "monai.nii.gz"), "-m", str(run), "--tile-grid", "monai"]) == 0
    written = read_nifti(tmp_path / "monai.nii.gz").array
    np.testing.assert_array_equal(written, Predictor(run, tile_grid="monai").predict_image(read_nifti(src)).array)
    with pytest.raises(SystemExit):
        main(["predict", "-i", str(src), "-o", str(tmp_path / "x.nii.gz"), "-m", str(run), "--tile-grid", "nnunet"])
