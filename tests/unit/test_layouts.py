"""Dataset layouts (MSD, nnU-Net raw v1/v2, LiTS, plain) -> one list of cases; detection and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.data_builders import ct_and_mask, make_lits, make_msd, make_nnunet, make_plain, save

from ctseg.errors import DatasetError, InputError
from ctseg.io.datasets import case_id_from_path, detect_layout, load_dataset


def test_msd(tmp_path) -> None:
    pairs = make_msd(tmp_path, 2)
    ds = load_dataset(tmp_path)
    assert ds.layout == "msd" and [c.case_id for c in ds.training] == ["case_000", "case_001"]
    assert [(c.image, c.label) for c in ds.training] == [(i.resolve(), lab.resolve()) for i, lab in pairs]
    assert [c.case_id for c in ds.test] == ["case_900"] and ds.labels == {0: "background", 1: "organ"}
    assert "MSD layout: 2 training case(s), 1 test case(s)" in ds.describe()


@pytest.mark.parametrize("version", [1, 2])
def test_nnunet(tmp_path, version) -> None:
    make_nnunet(tmp_path, ("liver_001", "liver_002"), version=version)
    ds = load_dataset(tmp_path)
    assert ds.layout == "nnunet" and [c.case_id for c in ds.training] == ["liver_001", "liver_002"]
    assert ds.training[0].image.name == "liver_001_0000.nii.gz" and ds.training[0].label.name == "liver_001.nii.gz"
    assert ds.labels == {0: "background", 1: "liver"}
    assert [c.case_id for c in ds.test] == ["liver_900"]


def test_nnunet_refuses_several_channels_and_region_labels(tmp_path) -> None:
    make_nnunet(tmp_path)
    meta = json.loads((tmp_path / "dataset.json").read_text())
    (tmp_path / "dataset.json").write_text(json.dumps({**meta, "channel_names": {"0": "CT", "1": "PET"}}))
    with pytest.raises(DatasetError, match="single-channel CT"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({**meta, "labels": {"background": 0, "liver": [1, 2]}}))
    with pytest.raises(DatasetError, match="region-based"):
        load_dataset(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({**meta, "channel_names": {"0": "T2"}}))
    ds = load_dataset(tmp_path, strict=False)
    assert [i.kind for i in ds.issues] == ["modality"]


@pytest.mark.parametrize("gz", [False, True])
def test_lits_in_batch_subfolders(tmp_path, gz) -> None:
    make_lits(tmp_path, (10, 2, 0), gz=gz)
    save(tmp_path / "test-volume-5.nii", ct_and_mask()[0])
    ds = load_dataset(tmp_path)
    assert ds.layout == "lits"
    assert [c.case_id for c in ds.training] == ["volume-0", "volume-2", "volume-10"]  # numeric order
    assert all(c.label.name.startswith("segmentation-" + c.case_id.split("-")[1] + ".") for c in ds.training)
    assert ds.labels == {0: "background", 1: "liver", 2: "tumour"}
    assert [c.case_id for c in ds.test] == ["test-volume-5"]


def test_lits_labels_from_dataset_json_and_missing_segmentation(tmp_path) -> None:
    make_lits(tmp_path, (1, 2), batches=False)
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"0": "background", "1": "liver", "2": "lesion"}}))
    (tmp_path / "segmentation-2.nii").unlink()
    ds = load_dataset(tmp_path, strict=False)
    assert ds.labels[2] == "lesion" and [c.case_id for c in ds.training] == ["volume-1"]
    assert [(i.case, i.kind) for i in ds.issues] == [("volume-2", "missing-label")]
    with pytest.raises(DatasetError, match="segmentation-2.nii"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("flat", [False, True])
def test_plain_pairs_with_inferred_labels(tmp_path, flat) -> None:
    make_plain(tmp_path, ("b", "a"), flat=flat, label_value=2)
    ds = load_dataset(tmp_path)
    assert ds.layout == "plain" and [c.case_id for c in ds.training] == ["a", "b"]
    assert ds.labels_inferred and ds.labels == {0: "background", 1: "label_1", 2: "label_2"}
    assert "inferred" in ds.describe()


def test_plain_labels_from_dataset_json_mixed_formats_and_orphans(tmp_path) -> None:
    import SimpleITK as sitk

    make_plain(tmp_path, ("a",))
    sitk.WriteImage(sitk.ReadImage(str(tmp_path / "images" / "a.nii.gz")), str(tmp_path / "images" / "c.nrrd"))
    save(tmp_path / "labels" / "c.nii.gz", ct_and_mask()[1])
    save(tmp_path / "labels" / "orphan.nii.gz", ct_and_mask()[1])
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "kidney": 1}}))
    ds = load_dataset(tmp_path, strict=False)
    assert ds.layout == "plain" and not ds.labels_inferred and ds.labels == {0: "background", 1: "kidney"}
    assert [(c.case_id, c.image.suffix, c.label.name) for c in ds.training] == [("a", ".gz", "a.nii.gz"), ("c", ".nrrd", "c.nii.gz")]
    assert [(i.case, i.kind) for i in ds.issues] == [("orphan", "missing-image")]


def test_duplicate_case_ids_keep_the_first(tmp_path) -> None:
    make_lits(tmp_path, (1,), batches=False)
    make_lits(tmp_path / "copy", (1,), batches=False, gz=True)
    ds = load_dataset(tmp_path, strict=False)
    assert [c.case_id for c in ds.training] == ["volume-1"]
    assert [(i.case, i.kind) for i in ds.issues] == [("volume-1", "duplicate")]
    with pytest.raises(DatasetError, match="duplicate case id"):
        load_dataset(tmp_path)


def test_detection_errors_name_the_layouts(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a dataset") as info:
        load_dataset(tmp_path / "empty")
    for layout in ("MSD", "nnU-Net raw", "LiTS", "plain"):
        assert layout in str(info.value)
    (tmp_path / "nojson" / "imagesTr").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no dataset.json"):
        detect_layout(tmp_path / "nojson")
    (tmp_path / "badjson").mkdir()
    (tmp_path / "badjson" / "dataset.json").write_text("{labels: ")
    with pytest.raises(DatasetError, match=r"dataset.json: invalid JSON"):
        load_dataset(tmp_path / "badjson")
    with pytest.raises(InputError, match="not found"):
        load_dataset(tmp_path / "missing")
    with pytest.raises(InputError, match="unknown dataset layout"):
        load_dataset(tmp_path / "empty", layout="kits")


def test_forced_layout(tmp_path) -> None:
    make_plain(tmp_path, ("a",), flat=True)
    assert load_dataset(tmp_path, layout="plain").layout == "plain"
    with pytest.raises(DatasetError, match="no LiTS files"):
        load_dataset(tmp_path, layout="lits")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a/pancreas_001.nii.gz", "pancreas_001"), ("liver_7_0000.nii", "liver_7"), ("x.nrrd", "x"), ("ct.v2.mha", "ct.v2"), ("volume-3.nii", "volume-3")],
)
def test_case_ids(name, expected) -> None:
    assert case_id_from_path(name) == expected


@pytest.mark.parametrize("layout", ["lits", "nnunet", "plain"])
def test_training_preparation_accepts_every_layout(tmp_path, layout) -> None:
    """prepare_run (verify -> fingerprint -> plan -> preprocess) on each layout."""
    from ctseg.config import Config
    from ctseg.training import prepare_run

    data = tmp_path / "data"
    {"lits": lambda: make_lits(data, (1, 2)), "nnunet": lambda: make_nnunet(data), "plain": lambda: make_plain(data, ("a", "b"))}[layout]()
    run = prepare_run(data, tmp_path / "run", Config(), progress=False)
    assert sorted(run.train_ids + run.val_ids) == sorted({*run.train_ids, *run.val_ids})
    assert len(set(run.train_ids) | set(run.val_ids)) == 2
    seg = np.load(next((tmp_path / "run" / "preprocessed").glob("*_seg.npy")))
    assert seg.max() >= 1
    saved = json.loads((tmp_path / "run" / "dataset.json").read_text())
    assert saved["labels"]["1"] in ("liver", "label_1")
