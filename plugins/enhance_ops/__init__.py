"""Restoration and upscaling of digitised archive images: the chain, codecs, models and quality checks."""
from __future__ import annotations

__version__ = "0.1.0"
SOFTWARE = f"archive-enhance {__version__}"
