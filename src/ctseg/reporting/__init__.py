"""Pictures and reports: three-plane overlays, box plots and a self-contained HTML page."""

from __future__ import annotations

from .html import ReportResult, build_report
from .views import OverlayStyle, case_montage, extract_planes, montage_from_files, render_plane

__all__ = ["OverlayStyle", "ReportResult", "build_report", "case_montage", "extract_planes", "montage_from_files", "render_plane"]
