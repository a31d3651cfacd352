"""Synthetic contrast-enhanced abdominal CT with pancreas or liver labels: the embedded default data.

``generate_case(task, seed)`` returns one case (int16 HU :class:`~ctseg.io.image.Image`, uint8
:class:`~ctseg.io.image.LabelMap`); ``make_dataset(out_dir, ...)`` writes an MSD-layout dataset.

The phantom is built in millimetres (patient frame, RAS+): body wall, spine and ribs, lung bases,
liver with its veins, gallbladder, spleen, kidneys, stomach, duodenum, small bowel and colon,
aorta / IVC / portal system, pancreas with duct and fatty lobulation, and 0-2 tumours in the target
organ. Anatomy, contrast phase, noise, field of view, slice spacing, orientation and origin vary per
seed; the same arguments give bit-identical output.
"""

from __future__ import annotations

from .dataset import case_seed, make_dataset
from .generator import ORIENTATIONS, TASKS, generate_case

__all__ = ["generate_case", "make_dataset", "TASKS", "ORIENTATIONS", "case_seed"]
