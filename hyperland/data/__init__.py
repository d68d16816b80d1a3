"""Landmark datasets: every loader returns :class:`Sample` lists (image path, points, visible, meta).

See docs/datasets.md for each format, its preprocessing and how missing or bad entries are reported.
"""

from .aflw import aflw_m_protocol, read_aflw_train
from .base import Box, Sample, centroid_box, landmark_names, load_sample, load_samples
from .celeba_mafl import celeba_pretrain_images, mafl_protocol, read_mafl
from .checks import check_in_image, check_landmark_count, draw
from .cub import cub_protocol, read_cub
from .dlc import read_dlc, write_dlc_predictions
from .generic import read_csv, read_json, read_keypoints, write_csv
from .mtfl import PROTOCOLS, mtfl_protocol, read_mtfl
from .registry import DATASETS, DatasetSpec, dataset_protocol
from .w300 import read_pts, read_w300

__all__ = [
    "DATASETS",
    "PROTOCOLS",
    "Box",
    "DatasetSpec",
    "Sample",
    "aflw_m_protocol",
    "celeba_pretrain_images",
    "centroid_box",
    "check_in_image",
    "check_landmark_count",
    "cub_protocol",
    "dataset_protocol",
    "draw",
    "landmark_names",
    "load_sample",
    "load_samples",
    "mafl_protocol",
    "mtfl_protocol",
    "read_aflw_train",
    "read_csv",
    "read_cub",
    "read_dlc",
    "read_json",
    "read_keypoints",
    "read_mafl",
    "read_mtfl",
    "read_pts",
    "read_w300",
    "write_csv",
    "write_dlc_predictions",
]
