"""Tissue classes of the phantom and their CT numbers (HU) for one case.

The phantom is first drawn as a uint8 volume of tissue classes; :func:`sample_tissues` then gives each
class a mean HU and the amplitudes of two smooth texture fields (low and mid frequency). The contrast
phase of the case moves vessels and organ enhancement together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["T", "TissueTable", "sample_tissues", "organ_classes", "N_CLASSES"]


class T:
    """Tissue class ids (uint8)."""

    AIR = 0
    TABLE = 1
    TABLE_FOAM = 2
    SKIN = 3
    FAT = 4
    MUSCLE = 5
    VFAT = 6
    LUNG = 7
    HEART = 8
    BLOOD = 9
    BONE = 10
    CORTEX = 11
    DISC = 12
    CANAL = 13
    CARTILAGE = 14
    AORTA = 15
    IVC = 16
    PORTAL = 17
    HEP_VEIN = 18
    LIVER = 19
    SPLEEN = 20
    KID_CORTEX = 21
    KID_MEDULLA = 22
    KID_SINUS = 23
    KID_PELVIS = 24
    BOWEL_WALL = 25
    BOWEL_FLUID = 26
    GAS = 27
    STOOL = 28
    STOMACH_WALL = 29
    STOMACH_CONTENT = 30
    GALLBLADDER = 31
    PANCREAS = 32
    PANC_FAT = 33
    PANC_DUCT = 34
    ARTERY = 35
    TUMOUR_A = 36
    TUMOUR_A_CORE = 37
    TUMOUR_B = 38
    TUMOUR_B_CORE = 39
    LIVER_PORTAL = 40
    MARROW = 41


N_CLASSES = 42
TUMOUR_CLASSES = (T.TUMOUR_A, T.TUMOUR_A_CORE, T.TUMOUR_B, T.TUMOUR_B_CORE)


def organ_classes(task: str) -> tuple[int, ...]:
    """The tissue classes that make up label 1 (the organ, tumours excluded) of ``task``."""
    if task == "liver":
        return (T.LIVER, T.HEP_VEIN, T.LIVER_PORTAL)
    return (T.PANCREAS, T.PANC_FAT, T.PANC_DUCT)


@dataclass
class TissueTable:
    """Per-class mean HU and texture amplitudes (HU per unit of the texture fields)."""

    base: np.ndarray  # (N_CLASSES,) float32
    amp_low: np.ndarray  # (N_CLASSES,) float32, low-frequency texture (~25 mm)
    amp_mid: np.ndarray  # (N_CLASSES,) float32, mid-frequency texture (~6 mm)
    phase: float  # 0 = late arterial, 1 = portal venous
    noise_sigma: float  # HU, final image noise


def _enhancing(put: Callable[..., None], rng: np.random.Generator, phase: float, dose: float, fat: float) -> None:
    """Vessels and parenchyma: arterial phase (0) bright aorta and cortex, portal (1) bright veins."""
    j = lambda s: float(rng.normal(0.0, s))  # noqa: E731 - small per-case jitter
    aorta = float(np.clip((150.0 + 150.0 * (1.0 - phase)) * dose, 150.0, 320.0))
    portal = (115.0 + 70.0 * phase) * dose
    put(T.AORTA, aorta, 6)
    put(T.ARTERY, aorta * rng.uniform(0.8, 0.95), 6)
    put(T.BLOOD, 0.5 * (aorta + portal), 8)
    put(T.PORTAL, portal, 6)
    put(T.IVC, (70.0 + 70.0 * phase) * dose + j(8), 8)
    put(T.HEP_VEIN, (45.0 + 110.0 * phase) * dose, 5)
    put(T.LIVER_PORTAL, portal * rng.uniform(0.85, 1.0), 5)

    # Healthy liver is homogeneous at the scale of centimetres: ROIs in different segments differ
    # by a few HU, so its ~30 mm texture is 2-4 HU (at 4-8 HU, 3-5 cm patches 15-20 HU darker than
    # the organ's mean looked like the faint tumours and were labelled healthy).
    put(T.LIVER, (52.0 + 16.0 * phase) * dose + j(4), rng.uniform(2, 4), 3)
    put(T.SPLEEN, (50.0 + 14.0 * phase) * dose + j(4), rng.uniform(4, 8), 3)
    put(T.PANCREAS, (58.0 - 12.0 * phase) * dose + j(5), rng.uniform(4, 7), 5)
    put(T.PANC_FAT, fat * rng.uniform(0.25, 0.5), 8, 10)
    put(T.PANC_DUCT, rng.uniform(5, 20), 2)
    put(T.KID_CORTEX, (150.0 + 50.0 * (1.0 - phase)) * dose * rng.uniform(0.9, 1.05), 6)
    put(T.KID_MEDULLA, (75.0 + 90.0 * phase) * dose, 8)
    put(T.KID_SINUS, fat + 25, 10, 8)
    put(T.KID_PELVIS, rng.uniform(0, 15), 3)
    put(T.BOWEL_WALL, (45.0 + 20.0 * phase) * dose + j(5), 6, 4)
    put(T.BOWEL_FLUID, rng.uniform(0, 25), 5, 3)
    put(T.GAS, rng.uniform(-1000, -960), 5, 10)
    put(T.STOOL, rng.uniform(-150, -40), 30, 70)
    put(T.STOMACH_WALL, (50.0 + 18.0 * phase) * dose + j(5), 5)
    put(T.STOMACH_CONTENT, rng.uniform(0, 30), 6, 6)
    put(T.GALLBLADDER, rng.uniform(0, 18), 2)


def sample_tissues(rng: np.random.Generator) -> TissueTable:
    """Draw the CT numbers of every tissue class for one case (contrast phase, dose, noise)."""
    base = np.zeros(N_CLASSES, dtype=np.float32)
    low = np.zeros(N_CLASSES, dtype=np.float32)
    mid = np.zeros(N_CLASSES, dtype=np.float32)
    phase = float(rng.uniform(0.0, 1.0))
    dose = float(rng.uniform(0.8, 1.15))
    j = lambda s: float(rng.normal(0.0, s))  # noqa: E731 - small per-case jitter

    def put(cls: int, hu: float, a_low: float = 0.0, a_mid: float = 0.0) -> None:
        base[cls], low[cls], mid[cls] = hu, a_low, a_mid

    fat = rng.uniform(-112.0, -92.0)
    put(T.AIR, -1000.0)
    put(T.TABLE, rng.uniform(150, 350), 0, 20)
    put(T.TABLE_FOAM, rng.uniform(-900, -800), 0, 10)
    put(T.SKIN, 25 + j(5), 3)
    put(T.FAT, fat, 6, 4)
    put(T.VFAT, fat + rng.uniform(-5, 12), 8, 6)
    put(T.MUSCLE, rng.uniform(42, 56), 4, 3)
    put(T.LUNG, rng.uniform(-880, -820), 20, 25)
    put(T.HEART, 45 + j(4), 4)
    put(T.BONE, rng.uniform(190, 290), 25, 35)
    put(T.MARROW, rng.uniform(120, 220), 20, 30)
    put(T.CORTEX, rng.uniform(620, 820), 40, 40)
    put(T.DISC, rng.uniform(70, 100), 5)
    put(T.CANAL, rng.uniform(15, 30), 3)
    put(T.CARTILAGE, rng.uniform(100, 220), 20, 30)

    _enhancing(put, rng, phase, dose, fat)
    offset = j(3)  # scanner calibration
    base[1:] += offset
    return TissueTable(base, low, mid, phase, float(rng.uniform(8.0, 20.0)))
