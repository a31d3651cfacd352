"""ctseg: segmentation of organs and tumours in 3D CT."""

from __future__ import annotations

__version__ = "0.1.0"
