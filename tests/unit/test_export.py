"""Export of a preprocessed dataset to NumPy (.npz per case) and HDF5 (one file), with metadata."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from tests.data_builders import make_lits, make_msd

from ctseg.cli import main
from ctseg.config import Config
from ctseg.errors import InputError
from ctseg.preprocessing import load_preprocessed
from ctseg.preprocessing.export import export_preprocessed
from ctseg.training import prepare_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    make_msd(root / "data", 3)
    prepare_run(root / "data", root / "run", Config(), progress=False)
    return root / "run"


def test_numpy_export_matches_the_cache(run_dir, tmp_path) -> None:
    out = export_preprocessed(run_dir, tmp_path / "npz", fmt="numpy", progress=False)
    split = json.loads((run_dir / "split.json").read_text())
    files = sorted(out.glob("*.npz"))
    assert [f.stem for f in files] == ["case_000", "case_001", "case_002"]
    plan = json.loads((out / "plan.json").read_text())
    assert plan == json.loads((run_dir / "plan.json").read_text())
    assert json.loads((out / "dataset.json").read_text())["labels"] == {"0": "background", "1": "organ"}
    for f in files:
        cached = load_preprocessed(run_dir / "preprocessed", f.stem)
        with np.load(f) as npz:  # no pickle needed
            np.testing.assert_array_equal(npz["image"], cached["image"])
            np.testing.assert_array_equal(npz["seg"], cached["seg"])
            np.testing.assert_allclose(npz["spacing"], plan["spacing"], atol=1e-6)
            np.testing.assert_array_equal(npz["affine"], np.asarray(cached["geometry"].resampled_affine))
            assert json.loads(str(npz["geometry"]))["input_shape"] == [12, 10, 6]
            assert str(npz["split"]) == ("val" if f.stem in split["val"] else "train")


def test_hdf5_export_matches_the_cache(run_dir, tmp_path) -> None:
    target = export_preprocessed(run_dir, tmp_path / "all.h5", fmt="hdf5", progress=False)
    assert target == tmp_path / "all.h5"
    with h5py.File(target, "r") as h5:
        assert sorted(h5) == ["case_000", "case_001", "case_002"]
        assert json.loads(h5.attrs["plan"])["patch_size"] == json.loads((run_dir / "plan.json").read_text())["patch_size"]
        assert json.loads(h5.attrs["labels"]) == {"0": "background", "1": "organ"}
        for case_id in h5:
            cached = load_preprocessed(run_dir / "preprocessed", case_id)
            np.testing.assert_array_equal(h5[case_id]["image"][()], cached["image"])
            np.testing.assert_array_equal(h5[case_id]["seg"][()], cached["seg"])
            assert h5[case_id]["seg"].dtype == np.uint8 and h5[case_id]["image"].compression == "gzip"
            np.testing.assert_array_equal(h5[case_id].attrs["affine"], np.asarray(cached["geometry"].resampled_affine))
            assert json.loads(h5[case_id].attrs["geometry"])["crop"]
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_export_straight_from_a_dataset_via_the_cli(tmp_path) -> None:
    make_lits(tmp_path / "lits", (1, 2))
    assert main(["export-data", str(tmp_path / "lits"), "-o", str(tmp_path / "out"), "--format", "hdf5", "--set", "plan.target_spacing=[4.0,4.0,4.0]"]) == 0
    with h5py.File(tmp_path / "out" / "preprocessed.h5", "r") as h5:
        assert sorted(h5) == ["volume-1", "volume-2"]
        spacing, affine = h5["volume-1"].attrs["spacing"], h5["volume-1"].attrs["affine"]
        np.testing.assert_allclose(spacing, np.linalg.norm(affine[:3, :3], axis=0))
        np.testing.assert_allclose(spacing, [4.0, 4.0, 4.0], rtol=0.15)  # the grid spans the extent exactly
        assert set(np.unique(h5["volume-1"]["seg"][()])) <= {0, 1, 2}
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["preprocessed.h5"]  # the scratch cache is gone


def test_export_errors(tmp_path) -> None:
    with pytest.raises(InputError, match="unknown export format"):
        export_preprocessed(tmp_path, tmp_path / "o", fmt="parquet")
    assert main(["export-data", str(tmp_path / "nothing"), "-o", str(tmp_path / "o")]) == 2
