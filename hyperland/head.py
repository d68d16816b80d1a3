"""Compatibility import path: the head lives in :mod:`hyperland.heads` (``from hyperland.heads import
LandmarkHead``)."""

from .heads import METHODS, LandmarkHead

__all__ = ["METHODS", "LandmarkHead"]
