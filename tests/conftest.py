"""Shared fixtures: tiny synthetic volumes with known geometry, and the shared real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def shared_file(relative: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason."""
    path = (SHARED_DATA / relative).resolve()
    if not path.exists():
        pytest.skip(f"../shared/data/{relative} not available")
    return path


def rotation_z(degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1.0]])


def make_affine(spacing, *, flips=(False, False, False), rotation=None, origin=(0.0, 0.0, 0.0), shape=None) -> np.ndarray:
    """Affine with the given spacing; ``flips`` reverse axes (LPS is flips (True, True, False))."""
    direction = np.eye(3) if rotation is None else rotation
    signs = np.array([-1.0 if f else 1.0 for f in flips])
    affine = np.eye(4)
    affine[:3, :3] = direction @ np.diag(np.asarray(spacing, float) * signs)
    affine[:3, 3] = origin
    if shape is not None:  # keep the volume centred on the origin whatever the flips
        centre = (np.asarray(shape) - 1) / 2.0
        affine[:3, 3] = np.asarray(origin) - affine[:3, :3] @ centre
    return affine


def world_grid(shape, affine) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3)
    return (idx @ affine[:3, :3].T + affine[:3, 3]).reshape(*shape, 3)


def phantom(shape, affine, *, center=(5.0, -8.0, 3.0), radii=(30.0, 20.0, 15.0)) -> tuple[np.ndarray, np.ndarray]:
    """An ellipsoid 'organ' (HU 60) inside an ellipsoid 'body' (HU -100) in air, defined in world mm.

    Returns (HU int16 image, uint8 mask of the organ) sampled at voxel centres.
    """
    xyz = world_grid(shape, affine)
    body = (((xyz - np.array([0.0, 0.0, 0.0])) / np.array([70.0, 60.0, 1e6])) ** 2).sum(-1) < 1
    organ = (((xyz - np.asarray(center)) / np.asarray(radii)) ** 2).sum(-1) < 1
    image = np.full(shape, -1000, np.int16)
    image[body] = -100
    image[organ] = 200
    return image, organ.astype(np.uint8)
