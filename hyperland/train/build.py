"""What one run is built from: the backbone config, the MoCo + dense model (optionally initialised from another
model: adaptation), the queue length, the optimiser and the learning-rate schedule. The loop that uses them
is :mod:`hyperland.train.trainer`."""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from ..backbone import create_backbone
from ..config import ModelConfig
from ..errors import TrainConfigError
from .config import TrainConfig
from .dense import DenseProjection
from .moco import DenseTerm, MoCo, build_encoder

logger = logging.getLogger(__name__)


def backbone_config(config: TrainConfig) -> ModelConfig:
    init = {} if config.zero_init_last else {"zero_init_last": False}
    return ModelConfig(architecture=config.architecture, out_indices=config.out_indices, resize=config.resize,
                       border=config.border, mean=config.mean, std=config.std, recipe=config.recipe,
                       timm_kwargs=init)


def queue_size(config: TrainConfig, n_images: int) -> int:
    """The MoCo queue length: ``config.queue_size``, or when 0, min(4096, 10% of the images) rounded down to a
    multiple of the batch (at least one batch). A queue over 10% of the data holds an image's own older key
    among its negatives for a noticeable share of queries; that is warned about."""
    if config.queue_size:
        if config.moco_weight > 0 and config.queue_size > 0.1 * n_images:
            logger.warning("queue_size=%d is %.0f%% of the %d training images: many queries meet an older key of "
                           "their own image among the negatives. Use --queue-size 0 (auto, <= 10%%).",
                           config.queue_size, 100 * config.queue_size / n_images, n_images)
        return config.queue_size
    size = min(4096, n_images // 10)
    return max(config.batch_size, size - size % config.batch_size)


def build_moco(config: TrainConfig, n_images: int | None = None) -> MoCo:
    backbone = create_backbone(backbone_config(config), seed=config.seed).train()
    encoder = build_encoder(backbone, feature_dim=config.feature_dim, hidden_dim=config.hidden_dim)
    dense = None
    if config.dense_weight > 0:
        info: Any = backbone.feature_info  # timm's FeatureInfo
        positions = tuple(list(info.out_indices).index(i) for i in config.dense_layers)
        channels = sum(int(info.channels()[p]) for p in positions)
        torch.manual_seed(config.seed)
        dense = DenseTerm(DenseProjection(channels, config.dense_dim), positions=positions,
                          weight=config.dense_weight, points=config.dense_points,
                          temperature=config.dense_temperature, other_images=config.dense_other_images)
    if config.init:
        _initialise(backbone, dense, config, config.init)
    size = queue_size(config, n_images if n_images is not None else 10 * max(config.queue_size, 4096))
    return MoCo(encoder, queue_size=size, momentum=config.key_momentum, temperature=config.temperature,
                groups=config.shuffle_groups, seed=config.seed, moco_weight=config.moco_weight, dense=dense)


def _initialise(backbone: torch.nn.Module, dense: DenseTerm | None, config: TrainConfig, init: str) -> None:
    """Adaptation: copy the backbone (and, when the layers agree, the learned projection) of ``init``
    (``config.init``)."""
    from ..backbone import backbone_state, load_state
    from ..loading import load

    src = load(init)
    if src.config.architecture != config.architecture or tuple(src.config.out_indices) != tuple(config.out_indices):
        raise TrainConfigError(f"--init {config.init}: it is a {src.config.architecture} with feature indices "
                               f"{src.config.out_indices}; this run trains a {config.architecture} with "
                               f"{config.out_indices}. Pass --architecture {src.config.architecture} or another "
                               "--init.")
    load_state(backbone, backbone_state(src.backbone), source=str(config.init))
    if dense is not None and src.projection is not None \
            and tuple(src.projection_layers or ()) == tuple(config.dense_layers) \
            and src.projection.out_channels == dense.projection.proj.out_channels:
        dense.projection.proj.load_state_dict(src.projection.state_dict())
    logger.info("Initialised from %s (fingerprint %s).", config.init, src.fingerprint)


def build_optimizer(config: TrainConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.sgd_momentum, weight_decay=config.weight_decay)


def lr_factor(config: TrainConfig, step: int, total: int, steps_per_epoch: int) -> float:
    warm = config.warmup_epochs * steps_per_epoch
    if warm and step < warm:
        return (step + 1) / warm
    if config.schedule == "constant":
        return 1.0
    progress = (step - warm) / max(1.0, total - warm)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


__all__ = ["backbone_config", "build_moco", "build_optimizer", "lr_factor", "queue_size"]
