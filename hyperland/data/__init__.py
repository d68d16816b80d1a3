"""Landmark datasets: every loader returns :class:`Sample` lists (image path, points, visible, meta)."""

from .base import Box, Sample, centroid_box, load_sample, load_samples
from .mtfl import PROTOCOLS, mtfl_protocol, read_mtfl

__all__ = ["PROTOCOLS", "Box", "Sample", "centroid_box", "load_sample", "load_samples", "mtfl_protocol", "read_mtfl"]
