"""End to end on a tiny synthetic dataset: synth -> train (a few iterations) -> predict -> evaluate.

Also the geometry contract on the real CT in ../shared/data and on LPS / reversed / anisotropic
synthetic inputs: every prediction has the input's exact shape, affine and header geometry, and
the same anatomy stored in another orientation gives the same world-space mask.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from tests.conftest import shared_file
from tests.tiny import synth_and_train

from ctseg.cli import main
from ctseg.inference import Predictor
from ctseg.io import Image, read_nifti


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return synth_and_train(tmp_path_factory.mktemp("e2e"), task="pancreas", cases=3, test_cases=2, seed=3, matrix=64)


def test_run_folder_holds_everything_needed_to_predict(tiny) -> None:
    run = tiny["run"]
    for name in ["config.yaml", "plan.json", "fingerprint.json", "dataset.json", "split.json", "versions.json", "model_final.pt", "model_final.json", "model_best.pt", "checkpoint_last.pt", "history.json", "training_curves.png", "train_log.txt"]:
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 1 and set(history[0]["val_dice"]) == {"pancreas", "tumour"}


def test_predict_and_evaluate_folder(tiny) -> None:
    pred = tiny["root"] / "pred"
    assert main(["predict", "-i", str(tiny["data"] / "imagesTs"), "-o", str(pred), "-m", str(tiny["run"])]) == 0
    inputs = sorted((tiny["data"] / "imagesTs").glob("*.nii.gz"))
    for src in inputs:
        out = nib.load(pred / src.name)
        ref = nib.load(src)
        assert out.shape == ref.shape and out.get_data_dtype() == np.uint8
        np.testing.assert_array_equal(out.affine, ref.affine)
        assert set(np.unique(np.asarray(out.dataobj))) <= {0, 1, 2}
    ev = tiny["root"] / "eval"
    assert main(["evaluate", str(pred), str(tiny["data"] / "labelsTs"), "-o", str(ev), "--dataset", str(tiny["data"])]) == 0
    rows = list(csv.DictReader((ev / "metrics.csv").open()))
    assert {r["name"] for r in rows} >= {"pancreas", "tumour"} and len({r["case"] for r in rows}) == len(inputs)
    assert json.loads((ev / "summary.json").read_text())["n_cases"] == len(inputs)


def test_resume_continues_from_the_last_checkpoint(tiny, tmp_path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny["run"], run)
    assert main(["train", str(tiny["data"]), "-o", str(run), "--resume", "--epochs", "2"]) == 0
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and history[1]["iteration"] == 6
    # without --resume an existing run is refused rather than overwritten
    assert main(["train", str(tiny["data"]), "-o", str(run), "--preset", "cpu"]) == 2


def test_real_ct_prediction_keeps_the_input_grid(tiny, tmp_path) -> None:
    src = shared_file("totalsegmentator/example_ct_sm.nii.gz")
    out = tmp_path / "seg.nii.gz"
    assert main(["predict", "-i", str(src), "-o", str(out), "-m", str(tiny["run"])]) == 0
    a, b = nib.load(src), nib.load(out)
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.affine, b.affine)
    for key in ("sform_code", "qform_code", "pixdim", "srow_x", "srow_y", "srow_z", "quatern_b", "quatern_c", "quatern_d"):
        np.testing.assert_array_equal(a.header[key], b.header[key])


def test_bfloat16_prediction_keeps_the_grid_and_agrees_with_float32(tiny, tmp_path) -> None:
    src = sorted((tiny["data"] / "imagesTs").glob("*.nii.gz"))[0]
    outs = {}
    for precision in ("float32", "bfloat16"):
        outs[precision] = tmp_path / f"{precision}.nii.gz"
        assert main(["predict", "-i", str(src), "-o", str(outs[precision]), "-m", str(tiny["run"]), "--precision", precision]) == 0
    ref, got = (read_nifti(outs[k]) for k in ("float32", "bfloat16"))
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got.affine, nib.load(src).affine)
    for label in (1, 2):
        a, b = np.asarray(ref.array) == label, np.asarray(got.array) == label
        total = int(a.sum()) + int(b.sum())
        assert total == 0 or 2 * int((a & b).sum()) / total >= 0.95, label  # a few boundary voxels move
    assert Predictor(tiny["run"], precision="float32").network.bfloat16 is False
    assert Predictor(tiny["run"], precision="bfloat16").network.bfloat16 is True


def test_unknown_precision_in_the_run_config_is_refused(tiny, tmp_path) -> None:
    import shutil

    from ctseg.errors import InputError

    run = tmp_path / "run"
    shutil.copytree(tiny["run"], run)
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("precision: auto", "precision: half"))
    with pytest.raises(InputError, match="precision must be one of"):
        Predictor(run)


def _flip_copy(image: Image, axes: tuple[int, ...]) -> Image:
    """The same world content stored with ``axes`` reversed (array flipped, affine adjusted)."""
    affine = image.affine.copy()
    data = image.array
    for ax in axes:
        data = np.flip(data, ax)
        affine[:3, 3] += affine[:3, ax] * (image.shape[ax] - 1)
        affine[:3, ax] *= -1
    return Image(np.ascontiguousarray(data), affine)


@pytest.mark.parametrize("axes", [(0, 1), (2,), (0, 1, 2)], ids=["LPS", "reversed-slices", "all-flipped"])
def test_orientation_does_not_change_the_world_space_prediction(tiny, axes) -> None:
    predictor = Predictor(tiny["run"])
    image = read_nifti(shared_file("totalsegmentator/example_ct_sm.nii.gz"), dtype=np.float32)
    base = predictor.predict_image(image)
    flipped = _flip_copy(image, axes)
    out = predictor.predict_image(flipped)
    np.testing.assert_array_equal(out.affine, flipped.affine)
    np.testing.assert_array_equal(np.flip(out.array, axes), base.array)


def test_anisotropic_reversed_synthetic_input(tiny, tmp_path) -> None:
    from ctseg.synth import generate_case

    image, _ = generate_case("pancreas", seed=11, matrix=64, slice_spacing=4.5, orientation="LPI")
    label = Predictor(tiny["run"]).predict_image(Image(image.array.astype(np.float32), image.affine))
    assert label.shape == image.shape
    np.testing.assert_array_equal(label.affine, image.affine)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["predict", "-i", "no/such/file.nii.gz", "-o", "x", "-m", "y"], "no/such/file.nii.gz"),
        (["train", "no/such/dataset", "-o", "z"], "no/such/dataset"),
        (["evaluate", "no/pred", "no/gt", "-o", "z"], "no/gt"),
    ],
)
def test_cli_errors_are_one_clear_line(args, needle, tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "ctseg.cli", *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_not_a_dataset_and_unreadable_file(tmp_path, tiny) -> None:
    (tmp_path / "junk").mkdir()
    proc = subprocess.run([sys.executable, "-m", "ctseg.cli", "train", str(tmp_path / "junk"), "-o", str(tmp_path / "r")], capture_output=True, text=True)
    assert proc.returncode == 2 and "not a dataset" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    out = tmp_path / "out.nii.gz"
    proc = subprocess.run([sys.executable, "-m", "ctseg.cli", "predict", "-i", str(bad), "-o", str(out), "-m", str(tiny["run"])], capture_output=True, text=True)
    assert proc.returncode == 2 and "bad.nii.gz" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_help_is_instant() -> None:
    code = "import sys, ctseg.cli; ctseg.cli.build_parser(); print(sorted(m for m in ('torch', 'scipy', 'nibabel') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_training_refuses_a_corrupt_case_before_writing_anything(tiny, tmp_path) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny["data"], data)
    label = sorted((data / "labelsTr").glob("*.nii.gz"))[1]
    label.write_bytes(label.read_bytes()[:200])  # truncated gzip
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "ctseg.cli", "train", str(data), "-o", str(run), "--preset", "cpu"], capture_output=True, text=True)
    assert proc.returncode == 2 and label.name in proc.stderr and "Traceback" not in proc.stderr
    assert not run.exists()


def test_contact_rule_comes_from_the_config_or_the_tuned_file(tiny, tmp_path) -> None:
    import shutil

    from ctseg.config import read_run_config
    from ctseg.errors import InputError
    from ctseg.inference.tuning import POSTPROCESSING_FILE

    run = tmp_path / "run"
    shutil.copytree(tiny["run"], run, ignore=shutil.ignore_patterns("preprocessed", "tensorboard"))
    assert Predictor(run).min_contact == {}  # off unless asked for
    config = read_run_config(run)
    (run / "config.yaml").write_text(config.merged({"predict": {"min_contact": {2: 0.5}}}).to_yaml())
    assert Predictor(run).min_contact == {2: 0.5}
    # what was chosen on the validation cases wins over the config
    (run / POSTPROCESSING_FILE).write_text(json.dumps({"min_component_mm3": {"2": 100.0}, "min_contact": {"2": 0.25}}))
    predictor = Predictor(run)
    assert predictor.min_contact == {2: 0.25} and predictor.min_component_mm3 == {2: 100.0}
    (run / POSTPROCESSING_FILE).unlink()
    (run / "config.yaml").write_text(config.merged({"predict": {"min_contact": {5: 0.5}}}).to_yaml())
    with pytest.raises(InputError, match="min_contact"):
        Predictor(run)
    # the confidence rule: the same precedence and checks
    assert Predictor(tiny["run"]).min_confidence == {}
    (run / "config.yaml").write_text(config.merged({"predict": {"min_confidence": {2: 0.7}}}).to_yaml())
    assert Predictor(run).min_confidence == {2: 0.7}
    (run / POSTPROCESSING_FILE).write_text(json.dumps({"min_confidence": {"2": 0.6}}))
    assert Predictor(run).min_confidence == {2: 0.6}
    (run / POSTPROCESSING_FILE).unlink()
    (run / "config.yaml").write_text(config.merged({"predict": {"min_confidence": {2: 1.5}}}).to_yaml())
    with pytest.raises(InputError, match="min_confidence"):
        Predictor(run)


def test_mirror_tta_flips_only_the_axes_the_network_was_trained_to_see_flipped(tiny, tmp_path) -> None:
    import shutil

    from ctseg.config import read_run_config
    from ctseg.errors import InputError
    from ctseg.inference.sliding_window import mirror_sets

    with pytest.raises(InputError, match="trained without mirroring"):  # the cpu preset: no flips
        Predictor(tiny["run"], tta=True)
    assert Predictor(tiny["run"]).tta is False
    run = tmp_path / "run"
    shutil.copytree(tiny["run"], run, ignore=shutil.ignore_patterns("preprocessed", "tensorboard"))
    config = read_run_config(run)
    (run / "config.yaml").write_text(config.merged({"train": {"augment": {"flip_prob": 0.5, "flip_axes": [0, 2]}}}).to_yaml())
    predictor = Predictor(run, tta=True)
    assert predictor.tta == (0, 2) and mirror_sets(predictor.tta) == [(), (0,), (2,), (0, 2)]
    image = read_nifti(sorted((tiny["data"] / "imagesTs").glob("*.nii.gz"))[0])
    labels = predictor.predict_image(image)
    assert labels.array.shape == image.array.shape


def test_polarity_pass_adds_only_lesion_and_is_refused_without_its_labels(tiny, tmp_path) -> None:
    import shutil

    from ctseg.config import read_run_config
    from ctseg.errors import InputError

    image = read_nifti(sorted((tiny["data"] / "imagesTs").glob("*.nii.gz"))[0])
    preset = Predictor(tiny["run"]).polarity  # the cpu preset turns it on, vessel-shaped regions left out
    assert preset is not None and preset.max_elongation == pytest.approx(2.0)
    plain = Predictor(tiny["run"], polarity=False)
    assert plain.polarity is None
    both = Predictor(tiny["run"], polarity=True)
    assert (both.polarity.lesion, both.polarity.host) == (2, 1)
    assert both.polarity.hu_per_unit == pytest.approx(both.plan.normalization["std"])
    out = both.predict_image(image)
    assert out.array.shape == image.array.shape
    changed = out.array != plain.predict_image(image).array
    assert np.all(out.array[changed] == 2)  # the second pass only adds lesion voxels
    np.testing.assert_array_equal(out.affine, image.affine)
    run = tmp_path / "run"
    shutil.copytree(tiny["run"], run, ignore=shutil.ignore_patterns("preprocessed", "tensorboard"))
    config = read_run_config(run)
    (run / "config.yaml").write_text(config.merged({"predict": {"polarity_tta": False}}).to_yaml())
    assert Predictor(run).polarity is None and Predictor(run, polarity=True).polarity is not None
    (run / "config.yaml").write_text(config.merged({"train": {"augment": {"lesion_labels": [5, 1]}}}).to_yaml())
    with pytest.raises(InputError, match="polarity TTA needs the lesion and host labels 5 and 1"):
        Predictor(run, polarity=True)  # asked for by name: refused
    assert Predictor(run).polarity is None  # on in the config only: left off where it cannot work
    # the command line: the flag reaches the predictor (exit 0, the file written)
    out_file = tmp_path / "pred.nii.gz"
    assert main(["predict", "-i", str(image.meta["path"]), "-o", str(out_file), "-m", str(tiny["run"]), "--polarity-tta"]) == 0
    assert out_file.is_file()


def test_tuning_sees_the_polarity_pass_that_predict_will_run(tiny, tmp_path, monkeypatch) -> None:
    import shutil

    import ctseg.inference.tuning as tuning
    from ctseg.config import read_run_config

    calls = []
    real = tuning.add_mirrored_lesions
    monkeypatch.setattr(tuning, "add_mirrored_lesions", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    run = tmp_path / "run"
    shutil.copytree(tiny["run"], run, ignore=shutil.ignore_patterns("tensorboard"))
    val = [c for c in json.loads((run / "split.json").read_text())["val"]]
    assert val
    tuning.determine_postprocessing(run, progress=False)  # the cpu preset: polarity on
    assert len(calls) == len(val) and calls[0].lesion == 2 and calls[0].host == 1
    config = read_run_config(run)
    (run / "config.yaml").write_text(config.merged({"predict": {"polarity_tta": False}}).to_yaml())
    calls.clear()
    tuning.determine_postprocessing(run, progress=False)
    assert calls == []
