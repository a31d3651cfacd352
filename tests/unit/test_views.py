"""Three-plane overlays: contours where the anatomy is, the same picture whatever the file's axis
order, physical aspect ratio for anisotropic voxels, and the choice of the slice."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import make_affine, phantom, world_grid

from ctseg.errors import InputError
from ctseg.io import Image, LabelMap
from ctseg.reporting.views import (
    case_montage,
    extract_planes,
    focus_voxel,
    lesion_labels,
    montage_from_files,
    render_plane,
    thumbnail,
)

LABELS = {0: "background", 1: "liver", 2: "tumour"}


def _is(rgb: np.ndarray, colour: str) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return {
        "green": (g > 170) & (r < 110) & (b < 110),  # reference, label 1
        "yellow": (r > 170) & (g > 170) & (b < 110),  # reference, label 2
        "red": (r > 170) & (g < 110) & (b < 110),  # prediction, label 1
        "magenta": (r > 170) & (b > 170) & (g < 110),  # prediction, label 2
    }[colour]


@pytest.fixture(scope="module")
def boxes() -> dict[str, np.ndarray]:
    """RAS grid of 1 mm voxels, shape (60, 50, 20); reference organ box i 10..29, j 15..34 with a
    lesion box i 14..17, j 20..23; the predicted organ is the reference box moved 5 voxels to +i."""
    shape = (60, 50, 20)
    ct = np.full(shape, 40, np.int16)
    ref = np.zeros(shape, np.uint8)
    ref[10:30, 15:35] = 1
    ref[14:18, 20:24, 8:12] = 2
    pred = np.zeros(shape, np.uint8)
    pred[15:35, 15:35] = 1
    return {"ct": ct, "ref": ref, "pred": pred, "affine": np.eye(4)}


def test_axial_contours_are_drawn_where_the_boxes_are(boxes) -> None:
    aff = boxes["affine"]
    planes = extract_planes(Image(boxes["ct"], aff), LabelMap(boxes["ref"], aff), LabelMap(boxes["pred"], aff), LABELS)
    axial = planes[0]
    assert axial.name == "axial" and axial.index in (9, 10)  # through the lesion (k 8..11)
    rgb = render_plane(axial, LABELS, px_per_mm=4.0)
    assert rgb.shape == (200, 240, 3)  # 50 mm (j) tall, 60 mm (i) wide, 4 px per mm
    # Display: column = (59 - i) mm (patient right, +i, on the left), row = (49 - j) mm (anterior up).
    # The reference box i 10..29 -> columns 30..50 mm = 120..200 px; j 15..34 -> rows 60..140 px.
    rows = slice(70, 131)
    assert _is(rgb[rows, 119:121], "green").any(axis=1).all()  # its left edge (i = 29|30)
    assert _is(rgb[rows, 199:201], "green").any(axis=1).all()  # its right edge (i = 9|10)
    assert _is(rgb[59:61, 182:199], "green").any(axis=0).all()  # its top edge (j = 34|35) right of the prediction
    # The lesion i 14..17, j 20..23 -> columns 168..184 px, rows 104..120 px, drawn in yellow.
    assert _is(rgb[106:119, 183:185], "yellow").any(axis=1).all()
    assert _is(rgb[119:121, 170:183], "yellow").any(axis=0).all()
    # The prediction (i 15..34 -> columns 100..180 px) is dashed red: present along its left edge,
    # with gaps, and never where only the reference runs.
    left_edge = _is(rgb[rows, 99:101], "red").any(axis=1)
    assert 0.4 < left_edge.mean() < 0.95
    assert not _is(rgb[rows, 119:121], "red").any() and not _is(rgb[rows, 99:101], "green").any()
    # inside the organ: the CT grey of 40 HU in the -160..240 window (0.5 -> 128)
    np.testing.assert_allclose(rgb[90, 150], [128, 128, 128], atol=2)


def test_lps_ras_and_permuted_files_of_one_world_object_give_the_same_picture() -> None:
    shape = (40, 36, 12)
    pictures = []
    for flips, order in [((False, False, False), (0, 1, 2)), ((True, True, False), (0, 1, 2)), ((True, False, True), (2, 0, 1))]:
        affine = make_affine((1.2, 1.2, 3.0), flips=flips, shape=shape)
        image, organ = phantom(shape, affine, center=(6.0, -4.0, 2.0), radii=(14.0, 9.0, 10.0))
        _, moved = phantom(shape, affine, center=(9.0, -2.0, 2.0), radii=(14.0, 9.0, 10.0))
        lesion = ((world_grid(shape, affine) - np.array([10.0, -4.0, 2.0])) ** 2).sum(-1) < 16
        ref = np.where(lesion & (organ > 0), 2, organ).astype(np.uint8)
        # store the arrays with permuted axes and the matching affine columns
        perm = np.eye(4)
        perm[:3, :3] = np.eye(3)[:, order]
        ct, ref, pred = (np.ascontiguousarray(np.transpose(a, order)) for a in (image, ref, moved))
        stored = affine @ perm
        assert Image(ct, stored).orientation == ("RAS", "LPS", "ILA")[len(pictures)]
        pictures.append(case_montage(Image(ct, stored), LabelMap(ref, stored), LabelMap(pred, stored), LABELS))
    np.testing.assert_array_equal(pictures[0], pictures[1])
    np.testing.assert_array_equal(pictures[0], pictures[2])
    # and the picture is not trivially constant: the lesion (yellow) and prediction (red) are in it
    assert _is(pictures[0], "yellow").sum() > 20 and _is(pictures[0], "red").sum() > 20


def test_anisotropic_voxels_keep_the_anatomy_round() -> None:
    shape = (80, 80, 20)
    affine = make_affine((0.8, 0.8, 4.0), shape=shape)
    image, organ = phantom(shape, affine, center=(0.0, 0.0, 0.0), radii=(20.0, 20.0, 20.0))
    planes = extract_planes(Image(image, affine), LabelMap(organ, affine), None, {0: "bg", 1: "sphere"}, centre=(40, 40, 10))
    coronal = next(p for p in planes if p.name == "coronal")
    assert coronal.pixel_mm == (4.0, 0.8) and coronal.shape == (20, 80)
    rgb = render_plane(coronal, {0: "bg", 1: "sphere"}, px_per_mm=2.0)
    assert rgb.shape[:2] == (160, 128)  # 80 mm x 64 mm at 2 px/mm, not 20 x 80 pixels
    bright = rgb[..., 0] > 200  # the 200 HU sphere (body -100 HU is dark)
    rows, cols = np.flatnonzero(bright.any(axis=1)), np.flatnonzero(bright.any(axis=0))
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert abs(width - 80) <= 6 and abs(height - 80) <= 16  # 40 mm across both ways (4 mm slices)


def test_focus_is_the_largest_lesion_then_the_organ() -> None:
    ref = np.zeros((30, 30, 30), np.uint8)
    ref[2:20, 2:20, 2:20] = 1
    ref[4:7, 4:7, 4:7] = 2  # 27 voxels
    ref[10:15, 11:16, 12:17] = 2  # 125 voxels: the largest lesion, centre (12, 13, 14)
    assert lesion_labels(LABELS) == (2,)
    assert focus_voxel(ref, None, (2,), ref.shape) == (12, 13, 14)
    organ_only = np.where(ref == 2, 1, ref)
    assert focus_voxel(organ_only, None, (2,), ref.shape) == (10, 10, 10)  # centroid of 2..19
    pred = np.zeros_like(ref)
    pred[25:28, 25:28, 25:28] = 2  # a false-positive lesion is shown when the reference has none
    assert focus_voxel(organ_only, pred, (2,), ref.shape) == (26, 26, 26)
    assert focus_voxel(None, None, (2,), ref.shape) == (15, 15, 15)


def test_montage_files_thumbnail_and_grid_check(tmp_path) -> None:
    from ctseg.io import write_nifti

    shape = (32, 30, 8)
    affine = make_affine((1.0, 1.0, 3.0), shape=shape)
    image, organ = phantom(shape, affine, radii=(10.0, 8.0, 9.0))
    write_nifti(Image(image, affine), tmp_path / "ct.nii.gz")
    write_nifti(LabelMap(organ, affine), tmp_path / "ref.nii.gz")
    rgb = montage_from_files(tmp_path / "ct.nii.gz", tmp_path / "ref.nii.gz", None, LABELS, tmp_path / "m.png", title="c")
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG" and rgb.dtype == np.uint8
    small = thumbnail(rgb, max_width=100)
    assert small.shape[1] <= 100 and small.shape[2] == 3
    other = make_affine((1.0, 1.0, 3.0), shape=shape, origin=(5.0, 0.0, 0.0))
    with pytest.raises(InputError, match="not on the grid"):
        case_montage(Image(image, affine), LabelMap(organ, other), None, LABELS)
    with pytest.raises(InputError, match="at least one"):
        case_montage(None, None, None, LABELS)


def test_real_ct_liver_is_drawn_on_the_image_left_and_spleen_on_the_right() -> None:
    from tests.conftest import shared_file

    from ctseg.io import read_nifti

    ct = read_nifti(shared_file("totalsegmentator/example_ct_sm.nii.gz"))
    liver = read_nifti(shared_file("totalsegmentator/example_seg_fast/liver.nii.gz"), label=True)
    spleen = read_nifti(shared_file("totalsegmentator/example_seg_fast/spleen.nii.gz"), label=True)
    labels = {0: "background", 1: "liver", 2: "spleen"}
    seg = np.where(spleen.array > 0, 2, np.where(liver.array > 0, 1, 0)).astype(np.uint8)
    pictures = []
    for flip in (False, True):  # as stored (RAS) and with the left-right axis reversed in the file
        arrays, affine = (ct.array, seg), ct.affine.copy()
        if flip:
            arrays = tuple(np.ascontiguousarray(a[::-1]) for a in arrays)
            affine = affine @ np.array([[-1, 0, 0, ct.shape[0] - 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
        planes = extract_planes(Image(arrays[0], affine), LabelMap(arrays[1], affine), None, labels, centre=None)
        rgb = render_plane(planes[0], labels, px_per_mm=1.0)
        width = rgb.shape[1]
        liver_cols = np.nonzero(_is(rgb, "green"))[1]
        spleen_cols = np.nonzero(_is(rgb, "yellow"))[1]
        assert liver_cols.size > 50 and spleen_cols.size > 50
        assert liver_cols.mean() < 0.45 * width < 0.55 * width < spleen_cols.mean()
        pictures.append(rgb)
    np.testing.assert_array_equal(pictures[0], pictures[1])
