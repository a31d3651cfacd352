"""Predicting label maps on the input's exact grid from a run folder."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .._fileio import read_json, write_json
from .._resources import check_memory
from ..config import AugmentSettings, read_run_config
from ..errors import CtsegError, InputError, RunFolderError
from ..io.datasets import case_id_from_path, list_images
from ..io.image import Image, LabelMap
from ..io.nifti import is_nifti
from ..io.outputs import (
    check_output_format,
    is_dicom_series_input,
    output_is_valid,
    output_path,
    safe_name,
    write_label_output,
)
from ..io.reader import image_suffix, read_image
from ..models.persist import load_model
from ..preprocessing import (
    LOCATOR_DIR,
    CaseGeometry,
    Plan,
    preprocess_image,
    preprocess_region,
    restore_labels,
    roi_box,
    tiles_on_body,
    volume_grid,
)
from .backends import network_backend, resolve_precision
from .polarity import add_mirrored_lesions, polarity_rule
from .postprocess import apply_postprocessing, remove_subgrid_regions
from .prefetch import prefetched
from .slices import volume_probabilities
from .sliding_window import TILE_GRIDS, tile_grid, tiles_touching
from .tuning import POSTPROCESSING_FILE

__all__ = ["Predictor", "predict", "PredictionRecord", "LOG_FILE"]

_MEMORY_FIX = "free memory, predict on a larger machine, or train a run with a coarser plan (plan.target_spacing or plan.max_median_voxels)"


def _label_fractions(values: dict, labels: dict[int, str], run: Path, setting: str = "min_contact") -> dict[int, float]:
    """``{label: fraction}`` checked against the plan's foreground labels and the range 0-1
    (``setting`` names the ``predict.`` setting in the error)."""
    out = {}
    for key, value in values.items():
        try:
            label, fraction = int(key), float(value)
        except (TypeError, ValueError):
            label, fraction = -1, -1.0
        if label not in labels or label == 0 or not 0.0 <= fraction <= 1.0:
            raise InputError(f"{run}: predict.{setting} {{{key}: {value}}} needs a foreground label ({', '.join(str(k) for k in sorted(labels) if k)}) and a fraction in 0-1")
        out[label] = fraction
    return out


@dataclass(frozen=True)
class PredictionRecord:
    """One case of a prediction run: ``status`` is "done", "skipped" (a valid output was already
    there) or "failed" (``error`` says why; only when predicting a folder)."""

    case_id: str
    input: Path
    output: Path
    seconds: float
    status: str = "done"
    error: str = ""


class Predictor:
    """Loads a run folder once; ``predict_image`` maps a CT :class:`Image` to a :class:`LabelMap`."""

    def __init__(self, run_dir: str | Path, *, device: str = "cpu", step: float | None = None, tta: bool | None = None, checkpoint: str | None = None, backend: str = "torch", tile_grid: str | None = None, polarity: bool | None = None, precision: str | None = None) -> None:
        run = Path(run_dir)
        if not run.is_dir():
            raise RunFolderError(f"{run}: run folder not found; give the folder written by `ctseg train -o`")
        cfg = read_run_config(run)
        plan_path = run / "plan.json"
        if not plan_path.is_file():
            raise RunFolderError(f"{run}: plan.json missing; the run folder is incomplete")
        self.plan = Plan.from_dict(read_json(plan_path))
        which = checkpoint or cfg.predict.checkpoint
        if which not in ("final", "best"):
            raise InputError(f"checkpoint must be 'final' or 'best', got {which!r}")
        weights = run / f"model_{which}.pt"
        if which == "final" and not weights.is_file() and (run / "model_best.pt").is_file():
            weights = run / "model_best.pt"
        self.device = torch.device(device)
        self.model, self.spec = load_model(weights, self.device)
        self.precision = resolve_precision(cfg.predict.precision if precision is None else precision, self.device, backend)
        self.network = network_backend(self.model, self.plan.patch_size, backend, self.device, self.precision)  # what the sliding window calls
        self.step = cfg.predict.step if step is None else step
        if not 0 < self.step <= 1:
            raise InputError(f"step must be in (0, 1], got {self.step}")
        self.tta = _mirror_axes(cfg.predict.tta if tta is None else tta, cfg.train.augment, run)
        self.tile_grid = cfg.predict.tile_grid if tile_grid is None else tile_grid
        if self.tile_grid not in TILE_GRIDS:
            raise InputError(f"tile grid must be one of {', '.join(TILE_GRIDS)}, got {self.tile_grid!r} (predict.tile_grid or --tile-grid)")
        if self.plan.spatial_dims == 2 and self.tile_grid != "spread":
            raise InputError(f"{run}: a 2D run predicts slice by slice on the 'spread' tile grid; drop --tile-grid {self.tile_grid} (or set predict.tile_grid=spread)")
        self.batch_size = cfg.predict.batch_size
        self.keep_largest = cfg.predict.keep_largest_component
        self.labels = self.plan.labels
        tuned = run / POSTPROCESSING_FILE  # chosen on the validation cases after training
        chosen = read_json(tuned) if tuned.is_file() else {}
        self.min_component_mm3 = {int(k): float(v) for k, v in chosen.get("min_component_mm3", {}).items()}
        self.min_contact = _label_fractions(chosen.get("min_contact", cfg.predict.min_contact), self.labels, run)
        self.min_confidence = _label_fractions(chosen.get("min_confidence", cfg.predict.min_confidence), self.labels, run, "min_confidence")
        # asked for: refused where it cannot work; on in the config (the cpu preset): where it can
        self.polarity = polarity_rule(cfg, self.plan, run, strict=polarity is not None) if (cfg.predict.polarity_tta if polarity is None else polarity) else None
        self.locator: Predictor | None = None
        if self.plan.crop == "roi":  # a cascade's fine stage: its locator run lives inside this run
            locator = run / LOCATOR_DIR
            if not (locator / "plan.json").is_file():
                raise RunFolderError(f"{run}: this cascade run has no {LOCATOR_DIR}/ run folder; train it again")
            self.locator = Predictor(locator, device=device, step=step, tta=False, backend=backend, tile_grid=tile_grid, precision=self.precision)

    def probabilities(self, image: Image, progress: bool = False) -> tuple[np.ndarray, CaseGeometry]:
        """Class probabilities on the preprocessed grid and the geometry to undo it."""
        box = None
        if self.locator is not None:
            located = self.locator.predict_image(image)
            box = roi_box(located.array > 0, image.affine, self.plan.roi_margin_mm)  # None: nothing found
        check_memory(image.array.size * 4 * 3, f"preprocessing {image.meta.get('path', 'the image')}", _MEMORY_FIX)
        tiles, outside = None, None
        if self.tile_grid == "monai":
            array, geometry, tiles, outside = self._anchored_input(image, box)
        else:
            array, geometry = preprocess_image(image, self.plan, box)
        crop_voxels = float(np.prod([hi - lo for lo, hi in geometry.crop]))
        # stitched probabilities + weights + a padded copy, then per-class resampling to the crop
        need = 4.0 * array.size * (self.plan.num_classes + 2) + 4.0 * self.plan.num_classes * crop_voxels
        check_memory(need, f"predicting {image.meta.get('path', 'the image')}", _MEMORY_FIX)
        probs = volume_probabilities(array[None], self.network, self.plan, step=self.step, batch_size=self.batch_size, tta=self.tta, device=self.device, progress=progress, grid=self.tile_grid, tiles=tiles)
        if outside is not None:  # background off the body, as restoring makes it, before post-processing
            probs[:, outside] = 0.0
            probs[0, outside] = 1.0
        spacing = self._network_spacing(geometry)
        if self.polarity is not None:
            def again(volume: np.ndarray) -> np.ndarray:
                return volume_probabilities(volume[None], self.network, self.plan, step=self.step, batch_size=self.batch_size, tta=self.tta, device=self.device, grid=self.tile_grid, tiles=tiles)

            probs = add_mirrored_lesions(array, probs, again, self.polarity, spacing)
        probs = apply_postprocessing(probs, spacing, keep_largest=self.keep_largest, min_component_mm3=self.min_component_mm3, min_contact=self.min_contact, min_confidence=self.min_confidence)
        return probs, geometry

    def _anchored_input(self, image: Image, box: tuple[slice, slice, slice] | None) -> tuple[np.ndarray, CaseGeometry, list[tuple[int, ...]], np.ndarray]:
        """The "monai" tile grid: MONAI's tile starts on the whole preprocessed volume, keeping only
        the tiles that reach the body's box (or ``box``); only the block those tiles span is
        preprocessed. Returns (that block, its geometry, the tiles' starts in it, a mask of the
        block's voxels off the body's box)."""
        grid = volume_grid(image, self.plan, box)
        patch = self.plan.patch_size
        tiles = tiles_touching(tile_grid(grid.shape, patch, self.step, "monai"), patch, grid.box)
        tiles = tiles_on_body(grid, tiles, patch, self.plan.crop_threshold_hu) or tiles
        region = tuple(slice(max(0, min(t[a] for t in tiles)), min(n, max(t[a] for t in tiles) + patch[a])) for a, n in enumerate(grid.shape))
        array, geometry = preprocess_region(grid, self.plan, region)  # type: ignore[arg-type]
        local = [tuple(v - r.start for v, r in zip(t, region)) for t in tiles]
        outside = np.ones(array.shape, dtype=bool)
        outside[tuple(slice(b.start - r.start, b.stop - r.start) for b, r in zip(grid.box, region))] = False
        return array, geometry, local, outside

    def predict_image(self, image: Image, progress: bool = False) -> LabelMap:
        """uint8 labels with exactly the input's shape and affine."""
        probs, geometry = self.probabilities(image, progress)
        labels = remove_subgrid_regions(restore_labels(probs, geometry), self.subgrid_voxels(image, geometry))
        return LabelMap(labels, image.affine.copy(), {"source": image.meta.get("path")})

    def subgrid_voxels(self, image: Image, geometry: CaseGeometry) -> int:
        """Input voxels in half a voxel of the network's grid: restored regions this small are the
        linear interpolation's, not predictions (:func:`remove_subgrid_regions`)."""
        return int(0.5 * float(np.prod(self._network_spacing(geometry))) / float(np.prod(image.spacing)))

    def _network_spacing(self, geometry: CaseGeometry) -> tuple[float, ...]:
        """The voxel size (mm) of the grid the network predicts on: the plan's, or for a 2D plan each
        case's own grid."""
        return self.plan.spacing if self.plan.spatial_dims == 3 else geometry.resampled_spacing


def _mirror_axes(tta: bool, augment: AugmentSettings, run: Path) -> tuple[int, ...] | bool:
    """The axes mirror TTA may flip: those the network was trained to see flipped, as nnU-Net
    keeps its allowed mirroring axes. A run trained without flips refuses TTA: averaging in outputs
    on mirrored inputs it never saw wrecks them (the demo's run: tumour Dice 0.43 -> 0, liver
    0.96 -> 0.87 on 18 cases)."""
    if not tta:
        return False
    if augment.flip_prob <= 0 or not augment.flip_axes:
        raise InputError(f"{run}: this network was trained without mirroring (train.augment.flip_prob=0), so mirror test-time augmentation would average in predictions on flipped images it never saw; predict without --tta (or predict.tta=false), or train with train.augment.flip_prob > 0")
    return tuple(int(a) for a in augment.flip_axes)


def _plan_outputs(input_path: Path, output: Path, fmt: str = "nifti") -> list[tuple[Path, Path]]:
    if not input_path.exists():
        raise InputError(f"{input_path}: input not found; give a NIfTI file or a folder of them")
    check_output_format(fmt, input_path)
    if is_dicom_series_input(input_path):  # one DICOM series folder = one case
        return [(input_path, output_path(input_path, output, input_path.name, fmt))]
    if input_path.is_dir():
        files = list_images(input_path)
        if not files:
            raise InputError(f"{input_path}: no image files (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd) or DICOM series in this folder")
        if output.exists() and not output.is_dir():
            raise InputError(f"{output}: is a file; give an output folder for a folder of inputs")
        return [(f, output / f"{safe_name(case_id_from_path(f))}.nii.gz") for f in files]
    if image_suffix(input_path) is None:
        raise InputError(f"{input_path}: not an image file (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd) or DICOM series folder")
    target = output if is_nifti(output) else output / f"{safe_name(case_id_from_path(input_path))}.nii.gz"
    return [(input_path, target)]


def predict(
    input_path: str | Path,
    output: str | Path,
    run_dir: str | Path,
    *,
    device: str = "cpu",
    step: float | None = None,
    tta: bool | None = None,
    checkpoint: str | None = None,
    progress: bool = True,
    output_format: str = "nifti",
    series: str | int | None = None,
    backend: str = "torch",
    overwrite: bool = False,
    tile_grid: str | None = None,
    polarity: bool | None = None,
    precision: str | None = None,
) -> list[PredictionRecord]:
    """Predict one NIfTI file, every NIfTI file in a folder, or one DICOM series folder (``series``
    picks one of several); outputs are uint8 label NIfTI files on each input's exact grid (same
    shape, affine and header geometry), or with ``output_format`` "dicom-seg" / "rtstruct" (DICOM
    input only) a DICOM-SEG / RTSTRUCT referencing the series; written atomically. ``backend``
    "onnx" runs the network on onnxruntime (CPU) with the same sliding window and post-processing.
    ``tile_grid`` ("spread" or "monai"; default: the run's ``predict.tile_grid``) places the tiles,
    see :mod:`ctseg.inference.sliding_window`. ``polarity`` (default: the run's
    ``predict.polarity_tta``) adds the second, contrast-mirrored pass of :mod:`ctseg.inference.polarity`.
    ``precision`` ("auto", "float32" or "bfloat16"; default: the run's ``predict.precision``) is the
    network's arithmetic, see :func:`~ctseg.inference.backends.resolve_precision`.

    A folder of images is a cohort: cases whose output already exists and reads completely are
    skipped (``overwrite`` redoes them), a case that fails is recorded and the others go on, and
    ``predict_log.json`` in the output folder lists what was done, skipped and failed (with the
    error) and the times. A single file or series raises its error instead.
    """
    pairs = _plan_outputs(Path(input_path), Path(output), output_format)
    cohort = Path(input_path).is_dir() and not is_dicom_series_input(Path(input_path))
    predictor = Predictor(run_dir, device=device, step=step, tta=tta, checkpoint=checkpoint, backend=backend, tile_grid=tile_grid, polarity=polarity, precision=precision)
    records: list[PredictionRecord] = []
    if cohort and not overwrite:
        done = [(s, d) for s, d in pairs if output_is_valid(d, output_format, _nifti_shape(s))]
        records += [PredictionRecord(case_id_from_path(s), s, d, 0.0, "skipped") for s, d in done]
        pairs = [p for p in pairs if p not in done]
    started = time.perf_counter()
    def read(pair: tuple[Path, Path]) -> Image:
        src = pair[0]
        return read_image(src, series=None if series is None or not src.is_dir() else str(series), dtype=np.float32)

    # the next case is read in a thread while this one is predicted
    for (src, dst), get_image in tqdm(prefetched(pairs, read), total=len(pairs), desc="predict", unit="case", disable=not progress or len(pairs) == 1):
        start = time.perf_counter()
        try:
            image = get_image()
            labels = predictor.predict_image(image, progress=progress and len(pairs) == 1)
            write_label_output(labels, image, dst, output_format, predictor.labels)
        except Exception as exc:  # a cohort goes on past a bad case; one case reports it  # noqa: BLE001
            if not cohort:
                raise
            error = str(exc) if isinstance(exc, CtsegError) else f"{type(exc).__name__}: {exc}"
            records.append(PredictionRecord(case_id_from_path(src), src, dst, time.perf_counter() - start, "failed", error))
            continue
        records.append(PredictionRecord(case_id_from_path(src), src, dst, time.perf_counter() - start))
    if cohort:
        _write_log(Path(output) / LOG_FILE, records, run_dir, time.perf_counter() - started, predictor)
    return records


LOG_FILE = "predict_log.json"


def _nifti_shape(path: Path) -> tuple[int, ...] | None:
    """The input's shape from its NIfTI header (cheap), to check an existing output against."""
    if not is_nifti(path):
        return None
    try:
        import nibabel as nib

        return tuple(nib.load(str(path)).shape[:3])
    except Exception:  # an unreadable input fails later, with its own message  # noqa: BLE001
        return None


def _write_log(path: Path, records: list[PredictionRecord], run_dir: str | Path, seconds: float, predictor: Predictor) -> None:
    def row(r: PredictionRecord) -> dict:
        out = {"case": r.case_id, "input": str(r.input), "output": str(r.output), "seconds": round(r.seconds, 2)}
        return {**out, "error": r.error} if r.status == "failed" else out

    write_json(path, {
        "run": str(Path(run_dir).resolve()),
        "seconds": round(seconds, 2),
        # how the network ran: what "auto" chose decides the speed and, by rounding, a few boundary voxels
        "network": {"device": str(predictor.device), "precision": predictor.precision, "tile_grid": predictor.tile_grid},
        **{status: [row(r) for r in records if r.status == status] for status in ("done", "skipped", "failed")},
    })
