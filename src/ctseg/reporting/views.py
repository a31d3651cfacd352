"""Three-plane overlays of a CT with reference and prediction contours (matplotlib, Agg only).

Every picture is drawn in the patient-standard display orientation, whatever the file's axis
order: the volume is first reoriented (permutations and flips only, through the affine) to RAS, then

* axial (seen from the feet): patient right on the image left, anterior at the top;
* sagittal (seen from the patient's left): anterior on the image left, superior at the top;
* coronal (seen from the front): patient right on the image left, superior at the top.

Pixels are drawn at their physical size (the voxel spacing), so anisotropic voxels keep the
anatomy's true proportions. The CT is shown in a soft-tissue window (W400/L40: -160..240 HU). The
reference is drawn with solid contours, the prediction with dashed contours, one colour per label.
An oblique affine is shown along its closest axes (the small rotation is not resampled).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._fileio import atomic_path
from ..errors import InputError
from ..io.image import Image, spacing_from_affine
from ..io.orientation import Reorientation
from .focus import focus_voxel, lesion_labels

__all__ = [
    "OverlayStyle",
    "Plane",
    "PLANES",
    "lesion_labels",
    "focus_voxel",
    "extract_planes",
    "render_plane",
    "case_montage",
    "montage_from_files",
    "png_bytes",
    "save_png",
    "thumbnail",
]

#: Planes of a montage, left to right.
PLANES = ("axial", "sagittal", "coronal")
_EDGE_LETTERS = {"axial": "RLAP", "sagittal": "APSI", "coronal": "RLSI"}  # left, right, top, bottom


@dataclass(frozen=True)
class OverlayStyle:
    """How overlays look.

    Attributes:
        window: CT display window in HU (low, high); W400/L40 by default.
        ref_colours: contour colours of the reference, one per foreground label in value order.
        pred_colours: contour colours of the prediction, likewise (drawn dashed).
        linewidth: contour width in points (1 point = 1.39 pixels at the 100 dpi used here).
        panel_px: size in pixels of the longest side over the three panels (one mm scale for all).
        background: figure colour around the panels.
    """

    window: tuple[float, float] = (-160.0, 240.0)
    ref_colours: tuple[str, ...] = ("#00e000", "#ffe000", "#00c8ff", "#ff9600", "#b4ff64")
    pred_colours: tuple[str, ...] = ("#ff2020", "#ff30ff", "#3060ff", "#ff8080", "#c080ff")
    linewidth: float = 1.5
    panel_px: int = 380
    background: str = "#111111"


@dataclass(frozen=True)
class Plane:
    """One displayed slice.

    Attributes:
        name: ``"axial"``, ``"sagittal"`` or ``"coronal"``.
        ct: HU slice (H, W) in display orientation, or None when no CT is given.
        ref, pred: integer label slices (H, W) or None.
        pixel_mm: (height, width) of one pixel in mm.
        index: slice index along the plane's normal in the RAS-reoriented volume.
        position_mm: world coordinate (RAS mm) of the slice along its normal axis.
    """

    name: str
    ct: np.ndarray | None
    ref: np.ndarray | None
    pred: np.ndarray | None
    pixel_mm: tuple[float, float]
    index: int
    position_mm: float

    @property
    def shape(self) -> tuple[int, int]:
        arr = next(a for a in (self.ct, self.ref, self.pred) if a is not None)
        return int(arr.shape[0]), int(arr.shape[1])

    @property
    def extent_mm(self) -> tuple[float, float]:
        """(height, width) of the slice in mm."""
        h, w = self.shape
        return h * self.pixel_mm[0], w * self.pixel_mm[1]


def _display(slice2d: np.ndarray | None) -> np.ndarray | None:
    """(u, v) slice of an RAS volume -> (rows = v reversed, columns = u reversed)."""
    return None if slice2d is None else np.ascontiguousarray(slice2d.T[::-1, ::-1])


def _check_grids(images: Sequence[tuple[str, Image | None]]) -> Image:
    present = [(role, im) for role, im in images if im is not None]
    if not present:
        raise InputError("overlay: give at least one of the CT, the reference or the prediction")
    first_role, first = present[0]
    for role, im in present[1:]:
        if not first.same_grid(im, atol_mm=0.01):
            raise InputError(
                f"overlay: the {role} ({im.meta.get('path', 'array')}) is not on the grid of the {first_role} "
                f"({first.meta.get('path', 'array')}): shapes {im.shape} vs {first.shape}; "
                "resample it onto the CT grid (nearest neighbour for labels) first"
            )
    return first


def extract_planes(
    ct: Image | None,
    ref: Image | None,
    pred: Image | None,
    labels: Mapping[int, str],
    centre: Sequence[int] | None = None,
) -> list[Plane]:
    """The three display planes (axial, sagittal, coronal) through one point.

    Args:
        ct: CT in HU, or None (contours on a dark background).
        ref, pred: label maps on the same grid as ``ct`` (1e-2 mm tolerance), or None.
        labels: ``{value: name}``; lesion-like names pick the focus (see :func:`focus_voxel`).
        centre: (i, j, k) voxel of the RAS-reoriented volume where the planes cross; default
            from :func:`focus_voxel` on the stored arrays.

    Raises:
        InputError: nothing given, or the images are not on one grid.
    """
    grid = _check_grids([("CT", ct), ("reference", ref), ("prediction", pred)])
    to_ras = Reorientation(grid.affine, grid.shape, "RAS")  # views, not copies: only 3 slices are read
    arrays = {key: (to_ras.view(im.array) if im is not None else None) for key, im in (("ct", ct), ("ref", ref), ("pred", pred))}
    si, sj, sk = spacing_from_affine(to_ras.target_affine)
    if centre is None:  # found in the stored (contiguous) arrays, then mapped to the RAS grid
        found = focus_voxel(ref.array if ref is not None else None, pred.array if pred is not None else None, lesion_labels(labels), grid.shape)
        centre = np.round(np.linalg.solve(to_ras.target_affine, grid.affine @ np.array([*found, 1.0]))[:3]).astype(int)
    i, j, k = (int(np.clip(c, 0, n - 1)) for c, n in zip(centre, to_ras.target_shape))
    world = to_ras.target_affine[:3, :3] @ np.array([i, j, k], dtype=np.float64) + to_ras.target_affine[:3, 3]
    cut = {
        "axial": ((slice(None), slice(None), k), (sj, si), k, world[2]),
        "sagittal": ((i, slice(None), slice(None)), (sk, sj), i, world[0]),
        "coronal": ((slice(None), j, slice(None)), (sk, si), j, world[1]),
    }
    planes = []
    for name in PLANES:
        index, pixel, n, pos = cut[name]
        s = {key: (arr[index] if arr is not None else None) for key, arr in arrays.items()}
        planes.append(Plane(name, _display(s["ct"]), _display(s["ref"]), _display(s["pred"]), pixel, n, float(pos)))
    return planes


# ----------------------------------------------------------------------------- drawing


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colour(colours: Sequence[str], order: int) -> str:
    return colours[order % len(colours)]


def _draw_contours(ax: Any, arr: np.ndarray, pixel: tuple[float, float], labels: Mapping[int, str], colours: Sequence[str], style: str, lw: float) -> None:
    values = [v for v in sorted(labels) if v > 0]
    lesions = set(lesion_labels(labels))
    h, w = arr.shape
    ys = (np.arange(-1, h + 1) + 0.5) * pixel[0]
    xs = (np.arange(-1, w + 1) + 0.5) * pixel[1]
    for order, value in sorted(enumerate(values), key=lambda item: item[1] in lesions):  # lesions on top
        mask = arr == value
        if not mask.any():
            continue
        padded = np.pad(mask, 1).astype(np.float32)  # closes contours at the slice edge
        ax.contour(xs, ys, padded, levels=[0.5], colors=[_colour(colours, order)], linewidths=lw, linestyles=style, zorder=3 + (value in lesions))


def _draw_plane(ax: Any, plane: Plane, labels: Mapping[int, str], style: OverlayStyle, annotate: bool) -> None:
    height, width = plane.extent_mm
    ax.set_axis_off()
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    if plane.ct is not None:
        ax.imshow(plane.ct, cmap="gray", vmin=style.window[0], vmax=style.window[1], extent=(0, width, height, 0), interpolation="bilinear", aspect="auto")
    else:
        ax.set_facecolor("#303030")
    if plane.ref is not None:
        _draw_contours(ax, plane.ref, plane.pixel_mm, labels, style.ref_colours, "solid", style.linewidth)
    if plane.pred is not None:
        _draw_contours(ax, plane.pred, plane.pixel_mm, labels, style.pred_colours, "dashed", style.linewidth)
    if annotate:
        left, right, top, bottom = _EDGE_LETTERS[plane.name]
        from matplotlib import patheffects

        outline = [patheffects.withStroke(linewidth=2, foreground="black")]  # readable on bone too
        kw: dict[str, Any] = {"color": "#ffd27f", "fontsize": 8, "transform": ax.transAxes, "fontweight": "bold", "path_effects": outline}
        ax.text(0.01, 0.5, left, ha="left", va="center", **kw)
        ax.text(0.99, 0.5, right, ha="right", va="center", **kw)
        ax.text(0.5, 0.99, top, ha="center", va="top", **kw)
        ax.text(0.5, 0.01, bottom, ha="center", va="bottom", **kw)


def _to_rgb(fig: Any) -> np.ndarray:
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


def render_plane(plane: Plane, labels: Mapping[int, str], style: OverlayStyle | None = None, *, px_per_mm: float | None = None) -> np.ndarray:
    """One plane as an RGB array (H, W, 3) uint8, pixel-exact in mm: pixel (r, c) covers
    ``[r / px_per_mm, (r + 1) / px_per_mm)`` mm from the top and likewise from the left.

    ``px_per_mm`` defaults to ``style.panel_px`` over the plane's longest side in mm.
    """
    style = style or OverlayStyle()
    height, width = plane.extent_mm
    scale = px_per_mm or style.panel_px / max(height, width)
    plt = _pyplot()
    fig = plt.figure(figsize=(width * scale / 100, height * scale / 100), dpi=100, facecolor=style.background)
    ax = fig.add_axes((0, 0, 1, 1))
    _draw_plane(ax, plane, labels, style, annotate=False)
    try:
        return _to_rgb(fig)
    finally:
        plt.close(fig)


def _legend_handles(labels: Mapping[int, str], style: OverlayStyle, with_ref: bool, with_pred: bool) -> list[Any]:
    from matplotlib.lines import Line2D

    values = [v for v in sorted(labels) if v > 0]
    handles = []
    for role, colours, ls, present in (("reference", style.ref_colours, "-", with_ref), ("prediction", style.pred_colours, "--", with_pred)):
        if present:
            handles += [Line2D([], [], color=_colour(colours, o), ls=ls, lw=style.linewidth, label=f"{role}: {labels[v]}") for o, v in enumerate(values)]
    return handles


def case_montage(
    ct: Image | None,
    ref: Image | None,
    pred: Image | None,
    labels: Mapping[int, str],
    *,
    title: str = "",
    style: OverlayStyle | None = None,
    centre: Sequence[int] | None = None,
) -> np.ndarray:
    """Axial, sagittal and coronal overlays side by side on one mm scale, with a legend.

    Returns an RGB array (H, W, 3) uint8. Arguments as in :func:`extract_planes`.
    """
    style = style or OverlayStyle()
    planes = extract_planes(ct, ref, pred, labels, centre)
    scale = style.panel_px / max(max(p.extent_mm) for p in planes)  # px per mm, shared
    sizes = [(p.extent_mm[0] * scale, p.extent_mm[1] * scale) for p in planes]
    gap, top, bottom = 8.0, 36.0 if title else 22.0, 40.0
    fig_w = sum(w for _, w in sizes) + gap * (len(planes) + 1)
    fig_h = max(h for h, _ in sizes) + top + bottom
    plt = _pyplot()
    fig = plt.figure(figsize=(fig_w / 100, fig_h / 100), dpi=100, facecolor=style.background)
    x = gap
    for plane, (h, w) in zip(planes, sizes):
        ax = fig.add_axes((x / fig_w, (fig_h - top - h) / fig_h, w / fig_w, h / fig_h))
        _draw_plane(ax, plane, labels, style, annotate=True)
        axis = {"axial": "z", "sagittal": "x", "coronal": "y"}[plane.name]
        fig.text((x + w / 2) / fig_w, 1 - (top - 18) / fig_h, f"{plane.name}  {axis} = {plane.position_mm:.1f} mm", ha="center", va="top", color="white", fontsize=9)
        x += w + gap
    if title:
        fig.text(gap / fig_w, 1 - 3 / fig_h, title, ha="left", va="top", color="#cccccc", fontsize=9)
    handles = _legend_handles(labels, style, ref is not None, pred is not None)
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), frameon=False, fontsize=7.5, labelcolor="white", handlelength=2.6, borderaxespad=0.2)
    try:
        return _to_rgb(fig)
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- output


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an RGB (H, W, 3) uint8 array as PNG."""
    from matplotlib import image as mpimg

    buffer = io.BytesIO()
    mpimg.imsave(buffer, rgb, format="png", pil_kwargs={"compress_level": 3})  # faster than 6, as small
    return buffer.getvalue()


def save_png(rgb: np.ndarray, path: str | Path) -> Path:
    """Write an RGB (H, W, 3) uint8 array as a PNG file (atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(png_bytes(rgb))
    return path


def thumbnail(rgb: np.ndarray, max_width: int = 260) -> np.ndarray:
    """Shrink an RGB array by an integer factor (box average) to at most ``max_width`` pixels wide."""
    factor = max(1, int(np.ceil(rgb.shape[1] / max_width)))
    if factor == 1:
        return rgb
    h, w = (rgb.shape[0] // factor) * factor, (rgb.shape[1] // factor) * factor
    blocks = rgb[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).astype(np.float32)
    return np.round(blocks.mean(axis=(1, 3))).astype(np.uint8)


def montage_from_files(
    ct_path: str | Path | None,
    ref_path: str | Path | None,
    pred_path: str | Path | None,
    labels: Mapping[int, str],
    out_png: str | Path | None = None,
    *,
    title: str = "",
    style: OverlayStyle | None = None,
) -> np.ndarray:
    """Read NIfTI files (any may be None), draw :func:`case_montage`, optionally save it as PNG.

    Raises:
        InputError: a file is missing or unreadable, or the files are not on one grid.
    """
    from ..io.nifti import read_nifti

    ct = read_nifti(ct_path) if ct_path is not None else None
    ref = read_nifti(ref_path, label=True) if ref_path is not None else None
    pred = read_nifti(pred_path, label=True) if pred_path is not None else None
    rgb = case_montage(ct, ref, pred, labels, title=title, style=style)
    if out_png is not None:
        save_png(rgb, out_png)
    return rgb
