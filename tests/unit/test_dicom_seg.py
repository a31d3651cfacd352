"""DICOM-SEG: decoding dcmqi's liver SEG to its NRRD, writing SEGs on real and written series and
reading them back exactly, segment names and codes, and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from tests.conftest import make_affine, rotation_z, shared_file

from ctseg import __version__
from ctseg.errors import InputError
from ctseg.io import Image, LabelMap
from ctseg.io.dicom import read_dicom_series
from ctseg.io.dicom_seg import read_dicom_seg, segment_codes, write_dicom_seg
from ctseg.io.dicom_write import write_dicom_series

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom/highdicom notes on the source headers

CT3 = "dcmqi/ct-3slice"


def _nrrd_mask(relative: str) -> tuple[np.ndarray, np.ndarray]:
    """(array in (i, j, k) order, RAS affine) of a NRRD read with SimpleITK."""
    image = sitk.ReadImage(str(shared_file(relative)))
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    lps[:3, 3] = image.GetOrigin()
    return sitk.GetArrayFromImage(image).transpose(2, 1, 0), np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def test_dcmqi_liver_seg_decodes_to_its_nrrd() -> None:
    expected, affine = _nrrd_mask("dcmqi/liver_seg.nrrd")
    labels = read_dicom_seg(shared_file("dcmqi/liver.dcm"), reference=shared_file(CT3))
    assert labels.meta["label_names"] == {1: "Liver"}
    np.testing.assert_array_equal(labels.array, expected)
    np.testing.assert_allclose(labels.affine, affine, atol=1e-4)
    # without a reference the SEG's own frames give the same grid here (it covers every slice)
    own = read_dicom_seg(shared_file("dcmqi/liver.dcm"))
    np.testing.assert_array_equal(own.array, expected)
    np.testing.assert_allclose(own.affine, affine, atol=1e-4)


def test_overlapping_segments_need_masks() -> None:
    with pytest.raises(InputError, match="overlap"):
        read_dicom_seg(shared_file("dcmqi/partial_overlaps.dcm"), reference=shared_file(CT3))
    masks = read_dicom_seg(shared_file("dcmqi/partial_overlaps.dcm"), reference=shared_file(CT3), as_masks=True)
    assert len(masks) == 5 and all(m.shape == (512, 512, 3) for m in masks.values())
    assert all(m.array.any() for m in masks.values())


@pytest.mark.parametrize(
    "name", ["seg_image_ct_binary.dcm", "seg_image_ct_binary_fractional.dcm", "seg_image_ct_true_fractional.dcm", "seg_image_ct_binary_overlap.dcm", "seg_image_ct_binary_single_frame.dcm"]
)
def test_highdicom_samples_read(name) -> None:
    masks = read_dicom_seg(shared_file(f"highdicom-seg/{name}"), as_masks=True)
    assert masks and all(m.array.any() and set(np.unique(m.array)) <= {0, 1} for m in masks.values())


def test_seg_written_on_the_dcmqi_ct_reads_back_to_the_same_mask(tmp_path) -> None:
    ct = read_dicom_series(shared_file(CT3))
    liver, _ = _nrrd_mask("dcmqi/liver_seg.nrrd")
    labels = liver.astype(np.uint8)
    labels[300:340, 300:330, 1:3] = 2  # a "tumour" block outside the liver
    out = write_dicom_seg(LabelMap(labels, ct.affine), shared_file(CT3), tmp_path / "seg.dcm", {0: "background", 1: "liver", 2: "tumour"})
    back = read_dicom_seg(out, reference=shared_file(CT3))
    np.testing.assert_array_equal(back.array, labels)
    assert back.meta["label_names"] == {1: "liver", 2: "tumour"}
    ds = pydicom.dcmread(out)
    source = pydicom.dcmread(next(shared_file(CT3).iterdir()), stop_before_pixels=True)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and ds.SegmentationType == "BINARY"
    assert (ds.PatientID, ds.StudyInstanceUID, ds.FrameOfReferenceUID) == (source.PatientID, source.StudyInstanceUID, source.FrameOfReferenceUID)
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID
    cited = {i.ReferencedSOPInstanceUID for s in ds.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence}
    assert cited == set(ct.meta["dicom"]["sop_instance_uids"])
    segs = {int(s.SegmentNumber): s for s in ds.SegmentSequence}
    assert segs[1].SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"  # SCT liver
    assert segs[2].SegmentedPropertyTypeCodeSequence[0].CodeValue == "108369006"  # SCT neoplasm
    assert segs[2].SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert segs[1].SegmentAlgorithmType == "AUTOMATIC" and segs[1].SegmentAlgorithmName == "ctseg"
    assert segs[1].SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == __version__


def test_seg_on_an_oblique_written_series_round_trips(tmp_path) -> None:
    affine = make_affine((0.7, 0.9, 2.0), flips=(True, False, False), rotation=rotation_z(25.0))
    data = np.random.default_rng(0).integers(-500, 500, (24, 20, 6)).astype(np.int16)
    write_dicom_series(Image(data, affine), tmp_path / "ct")
    ct = read_dicom_series(tmp_path / "ct")  # right-handed: k reversed relative to `affine`
    labels = np.zeros(ct.shape, np.uint8)
    labels[3:10, 4:12, 1:4] = 1
    labels[15:20, 2:6, 4] = 3  # only labels 1 and 3 present: segments 1 and 2
    out = write_dicom_seg(LabelMap(labels, ct.affine), ct, tmp_path / "seg.dcm", {1: "pancreas", 3: "lesion"})
    back = read_dicom_seg(out, reference=tmp_path / "ct")
    assert back.meta["label_names"] == {1: "pancreas", 2: "lesion"}
    np.testing.assert_array_equal(back.array, np.where(labels == 3, 2, labels))
    masks = read_dicom_seg(out, reference=ct, as_masks=True)
    np.testing.assert_array_equal(masks["lesion"].array, labels == 3)


def test_empty_prediction_writes_empty_named_segments(tmp_path) -> None:
    ct = read_dicom_series(shared_file(CT3))
    out = write_dicom_seg(LabelMap(np.zeros(ct.shape, np.uint8), ct.affine), ct, tmp_path / "e.dcm", {0: "background", 1: "liver"})
    back = read_dicom_seg(out, reference=ct)
    assert back.meta["label_names"] == {1: "liver"} and not back.array.any()


def test_labels_off_the_series_grid_are_refused(tmp_path) -> None:
    ct = read_dicom_series(shared_file(CT3))
    shifted = ct.affine.copy()
    shifted[0, 3] += 5.0
    with pytest.raises(InputError, match="not on the grid"):
        write_dicom_seg(LabelMap(np.ones(ct.shape, np.uint8), shifted), ct, tmp_path / "x.dcm", {1: "liver"})
    assert not list(tmp_path.iterdir())


def test_series_without_uids_is_refused_with_the_fix(tmp_path) -> None:
    folder = shared_file("totalsegmentator/example_ct_dicom")
    ct = read_dicom_series(folder)
    with pytest.raises(InputError, match="empty SOPClassUID.*--format nifti"):
        write_dicom_seg(LabelMap(np.zeros(ct.shape, np.uint8), ct.affine), folder, tmp_path / "x.dcm", {1: "liver"})


def test_seg_from_another_scan_is_refused(tmp_path) -> None:
    ct = read_dicom_series(shared_file(CT3))
    write_dicom_series(Image(np.zeros(ct.shape, np.int16), ct.affine), tmp_path / "other")  # same grid, new frame UID
    with pytest.raises(InputError, match="FrameOfReferenceUID"):
        read_dicom_seg(shared_file("dcmqi/liver.dcm"), reference=tmp_path / "other")


def test_not_a_seg_is_refused() -> None:
    with pytest.raises(InputError, match="not a readable DICOM Segmentation"):
        read_dicom_seg(next(Path(shared_file(CT3)).iterdir()))


def test_segment_codes() -> None:
    assert segment_codes("Liver")[1][0] == "10200004"
    assert segment_codes("pancreas")[1][0] == "15776009"
    assert segment_codes("liver tumour") == (("49755003", "Morphologically Abnormal Structure"), ("108369006", "Neoplasm"))
    assert segment_codes("something") == (("85756007", "Tissue"), ("85756007", "Tissue"))


_PRIVATE = {"InstitutionName": "St Example Hospital", "InstitutionAddress": "1 Example Road", "OperatorsName": "Doe^Operator",
            "PatientAddress": "2 Private Lane", "OtherPatientIDs": "ALT-123", "PatientTelephoneNumbers": "555-0100",
            "ReferringPhysicianName": "Roe^Referrer", "PerformingPhysicianName": "Poe^Performer"}  # fmt: skip


def test_seg_and_rtstruct_carry_only_the_patient_and_study_identifiers(tmp_path) -> None:
    from ctseg.io.rtstruct import write_rtstruct

    series = tmp_path / "ct"
    series.mkdir()
    for path in sorted(shared_file(CT3).iterdir()):  # the dcmqi CT with identifying tags added
        ds = pydicom.dcmread(path)
        for keyword, value in _PRIVATE.items():
            setattr(ds, keyword, value)
        ds.save_as(series / path.name)
    ct = read_dicom_series(series)
    labels = np.zeros(ct.shape, np.uint8)
    labels[200:260, 200:260, :] = 1
    names = {0: "background", 1: "liver"}
    seg = write_dicom_seg(LabelMap(labels, ct.affine), series, tmp_path / "seg.dcm", names)
    rt = write_rtstruct(LabelMap(labels, ct.affine), series, tmp_path / "rt.dcm", names)
    source = pydicom.dcmread(next(series.iterdir()), stop_before_pixels=True)
    for out in (seg, rt):
        ds = pydicom.dcmread(out)
        assert (ds.PatientID, str(ds.PatientName), ds.StudyInstanceUID) == (source.PatientID, str(source.PatientName), source.StudyInstanceUID)
        leaked = {k for k, v in _PRIVATE.items() if str(getattr(ds, k, "") or "") == v}
        text = str(ds)
        assert not leaked and not any(v in text for v in _PRIVATE.values()), f"{out.name} carries {leaked}"
