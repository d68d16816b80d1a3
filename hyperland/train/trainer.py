"""The MoCo training loop: one CPU process, one GPU or many processes under torchrun, same code path.

The caller (the CLI) joins the process group; here only :mod:`dist` helpers are used, the model is wrapped
in DDP from outside when there is more than one process, and rank 0 alone writes files.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .. import __version__
from ..errors import CheckpointError, DatasetError, TrainConfigError, optional_import
from . import dist
from .build import backbone_config, build_moco, build_optimizer, lr_factor
from .checkpoint import (
    CHECKPOINT_NAME,
    atomic_write_text,
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from .config import CONFIG_FILE, TrainConfig
from .data import DataSplit, resolve_data
from .faults import StopRequest, clean_for_resume, remove_new_run_dir
from .probe import Probe
from .views import ResumableSampler, TwoViewDataset, ViewAugment, derived_seed

logger = logging.getLogger(__name__)
METRICS_FILE = "metrics.jsonl"


class RunFinishedError(CheckpointError):
    """Resuming a run that already completed all its epochs."""


@dataclass
class TrainState:
    epoch: int = 0
    batch_in_epoch: int = 0  # optimiser steps done in ``epoch``
    step: int = 0
    finished: bool = False
    images_skipped: int = 0


def resolve_device(config: TrainConfig) -> torch.device:
    if config.device != "auto":
        return torch.device(config.device)
    if torch.cuda.is_available():
        return torch.device("cuda", dist.info().local_rank)
    return torch.device("cpu")


def resume_config(run_dir: Path, requested: TrainConfig | None = None, **runtime: Any) -> TrainConfig:
    """The config of the run in ``run_dir`` with runtime fields overridden; ``requested`` (a recipe plus flags
    given again on the command line) must agree with it on every field that defines the run."""
    saved = TrainConfig.from_file(run_dir / CONFIG_FILE) if (run_dir / CONFIG_FILE).is_file() else None
    if saved is None:
        raise CheckpointError(f"'{run_dir}' is not a run directory ({CONFIG_FILE} missing). Start a run with "
                              f"--out {run_dir}, or pass the directory of an existing run to --resume.")
    if requested is not None:
        diff = saved.differences(requested)
        if diff:
            shown = "; ".join(f"{k}: run has {a!r}, asked {b!r}" for k, a, b in
                              ((k, *v) for k, v in sorted(diff.items())))
            raise CheckpointError(f"Cannot resume '{run_dir}' (recipe {saved.recipe!r}) with a different config: "
                                  f"{shown}. Resume without --recipe/training flags, or start a new run with "
                                  "another --out.")
    return saved.override(**runtime) if runtime else saved


class Trainer:
    """Builds data, model and optimiser for ``config`` and trains into ``run_dir``."""

    def __init__(self, config: TrainConfig, run_dir: str | Path, *, resume: bool = False) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.info = dist.info()
        self.device = resolve_device(config)
        self.amp = config.precision == "bf16" or (config.precision == "auto" and self.device.type == "cuda")
        if config.batch_size % self.info.world_size:
            raise TrainConfigError(f"batch_size={config.batch_size} does not split over {self.info.world_size} "
                                   "processes. Use a multiple of the number of processes.")
        self.per_rank = config.batch_size // self.info.world_size
        self._check_run_dir(resume)
        torch.manual_seed(config.seed)
        np.random.seed(config.seed % 2**32)
        random.seed(config.seed)
        self.split: DataSplit = resolve_data(config, run_dir=self.run_dir)
        self.dataset = TwoViewDataset.from_config(self.split.train, config)
        self.sampler = ResumableSampler(self.dataset, num_replicas=self.info.world_size, rank=self.info.rank,
                                        batch_size=self.per_rank, seed=config.seed)
        self.steps_per_epoch = self.sampler.batches_per_epoch
        if self.steps_per_epoch < 1:
            raise DatasetError(f"{len(self.dataset)} training images make no full batch of {config.batch_size}. "
                               "Lower --batch-size or add images.")
        self.total_steps = config.epochs * self.steps_per_epoch
        if config.shuffle_groups == 1 and self.info.world_size == 1 and config.moco_weight > 0:
            logger.warning("shuffle_groups=1 on one process turns shuffle-BN off: queries and keys share BN "
                           "statistics, which lets MoCo cheat. Use --shuffle-groups 2 or more.")
        self.model = build_moco(config, len(self.dataset)).to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        params = [p for p in self.model.encoder_q.parameters() if p.requires_grad]
        if self.model.dense is not None:
            params += list(self.model.dense.parameters())
        self.optimizer = build_optimizer(config, params)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(config, s, self.total_steps, self.steps_per_epoch))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=False)  # bf16 needs no loss scaling
        self.state = TrainState()
        if resume:
            self._load()
        self.augment = ViewAugment(config)
        self.dense_grid = self._dense_grid() if config.dense_weight > 0 else None
        self.ddp: torch.nn.Module = self.model
        if self.info.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            unused = config.moco_weight == 0 or config.dense_weight == 0
            self.ddp = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=unused)
        if config.compile:
            self.model.encoder_q.compile()
            self.model.encoder_k.compile()
        self.timings = {"data": 0.0, "aug": 0.0, "model": 0.0}
        self.stopped_by: int | None = None  # the signal that stopped fit() early (a checkpoint was written)
        self._tb = _tensorboard(self.run_dir) if config.tensorboard and self.info.is_main else None

    def _dense_grid(self) -> int:
        """Side of the dense term's grid: the finest dense layer's map at the input size."""
        info: Any = self.model.encoder_q.backbone.feature_info  # timm's FeatureInfo
        red = dict(zip(info.out_indices, info.reduction()))
        return max(1, self.config.input_size // min(int(red[i]) for i in self.config.dense_layers))

    # ------------------------------------------------------------------ run directory
    def _check_run_dir(self, resume: bool) -> None:
        ckpt = self.run_dir / CHECKPOINT_NAME
        if not resume and ckpt.exists():
            raise CheckpointError(f"'{self.run_dir}' already holds a run ({CHECKPOINT_NAME}). Continue it with "
                                  f"`hyperland-train --resume {self.run_dir}`, or pass another --out.")
        if resume:
            resume_config(self.run_dir, self.config)  # raises before config.json is touched
        if self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / CONFIG_FILE, self.config.to_json())
        dist.barrier()

    def _load(self) -> None:
        ckpt = load_checkpoint(self.run_dir / CHECKPOINT_NAME)
        saved = TrainConfig.from_dict(ckpt["config"], source=str(self.run_dir / CHECKPOINT_NAME))
        diff = saved.differences(self.config)
        if diff:
            raise CheckpointError(f"Checkpoint in '{self.run_dir}' was written by another config ({sorted(diff)} "
                                  "differ). Start a new run with another --out.")
        state = TrainState(**ckpt["state"])
        if state.finished:
            raise RunFinishedError(
                f"The run in '{self.run_dir}' already finished ({state.epoch} epochs, {state.step} steps); nothing "
                f"to resume. Export it with `hyperland-train export {self.run_dir} --out DIR`, or start a new run "
                "with another --out to train again.")
        if ckpt.get("world_size", 1) != self.info.world_size:
            logger.warning("Resuming a run of %s processes on %s: the data order of the current epoch changes.",
                           ckpt.get("world_size"), self.info.world_size)
        self.model.load_state_dict(ckpt["model"], strict=True)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        restore_rng(ckpt["rng"])
        self.state = state
        if self.info.is_main:  # temp files of a kill mid-write; metrics.jsonl lines after the checkpoint's step
            clean_for_resume(self.run_dir, state.step, metrics_name=METRICS_FILE, names=(CHECKPOINT_NAME, CONFIG_FILE))
        logger.info("Resumed %s at epoch %d, batch %d (step %d).", self.run_dir, state.epoch,
                    state.batch_in_epoch, state.step)

    def save(self) -> None:
        if not self.info.is_main:
            return
        save_checkpoint(self.run_dir / CHECKPOINT_NAME, {
            "config": self.config.to_dict(), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "state": asdict(self.state), "rng": capture_rng(),
            "world_size": self.info.world_size, "steps_per_epoch": self.steps_per_epoch,
            "hyperland_version": __version__, "data": self.split.description,
        })

    def log(self, record: dict[str, Any]) -> None:
        if not self.info.is_main:
            return
        with open(self.run_dir / METRICS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
        if self._tb is not None:
            flat = {**{k: v for k, v in record.items() if isinstance(v, float)},
                    **{f"probe/{k}": v for k, v in record.get("probe", {}).items()}}
            for k, v in flat.items():
                self._tb.add_scalar(k, v, record["step"])
            self._tb.flush()

    # ------------------------------------------------------------------ training
    def _loader(self) -> DataLoader:
        c, s = self.config, self.state
        seed = derived_seed(c.seed, s.epoch, s.step, 3)
        return DataLoader(self.dataset, batch_size=self.per_rank, sampler=self.sampler, num_workers=c.num_workers,
                          drop_last=True, pin_memory=self.device.type == "cuda",
                          generator=torch.Generator().manual_seed(seed), worker_init_fn=_seed_worker,
                          persistent_workers=False, prefetch_factor=4 if c.num_workers else None)

    def _timed(self) -> bool:
        """CPU steps are all timed; on CUDA only every log_every-th step synchronises to split its time."""
        return self.device.type != "cuda" or (self.state.step + 1) % self.config.log_every == 0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def step(self, views: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One optimiser step on a uint8 batch (b, 2, 3, R, R) already on the device: (loss, statistics)."""
        c, s, r = self.config, self.state, self.info.rank
        timed = self._timed()
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(derived_seed(c.seed, s.step, r, 1))
        grid = self.dense_grid if c.dense_weight > 0 else None
        qa = self.augment(views[:, 0], generator=gen, grid=grid)
        ka = self.augment(views[:, 1], generator=gen, grid=grid)
        (q, src_q), (k, src_k) = _with_cells(qa), _with_cells(ka)
        if c.channels_last:
            q, k = q.contiguous(memory_format=torch.channels_last), k.contiguous(memory_format=torch.channels_last)
        if timed:
            self._sync()
        t1 = time.perf_counter()
        shuffle = torch.Generator().manual_seed(derived_seed(c.seed, s.step, 2))
        dense_gen = torch.Generator().manual_seed(derived_seed(c.seed, s.step, r, 4))
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.amp else nullcontext()
        with autocast:
            loss, stats = self.ddp(q, k, shuffle=shuffle, src_q=src_q, src_k=src_k, generator=dense_gen)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if timed:
            self._sync()
            self.timings["aug"] += t1 - t0
            self.timings["model"] += time.perf_counter() - t1
        return loss.detach(), stats

    def fit(self, *, on_step: Callable[[TrainState, float], None] | None = None) -> TrainState:
        c, s = self.config, self.state
        if s.finished or (c.max_steps is not None and s.step >= c.max_steps):
            return s
        bar = tqdm(total=self.total_steps * c.batch_size, initial=s.step * c.batch_size, unit="img",
                   unit_scale=True, desc=f"train {c.recipe or c.architecture}", dynamic_ncols=True,
                   disable=(None if c.progress is None else not c.progress) if self.info.is_main else True)
        sums: dict[str, Any] = {"n": 0}  # running sums stay on the device: no sync per step
        t_log = time.perf_counter()
        stop = StopRequest()  # SIGTERM / SIGINT: checkpoint after the current step, then return
        with bar, stop.installed():
            while s.epoch < c.epochs:
                self.sampler.set_epoch(s.epoch, skip_batches=s.batch_in_epoch)
                t_data = time.perf_counter()
                for views, substituted in self._loader():
                    views = views.to(self.device, non_blocking=True)
                    if self._timed():
                        self.timings["data"] += time.perf_counter() - t_data
                    loss, stats = self.step(views)
                    s.step += 1
                    s.batch_in_epoch += 1
                    s.images_skipped += int(substituted.sum())
                    for key, val in {"loss": loss, **stats}.items():
                        sums[key] = sums.get(key, 0) + val
                    sums["n"] += 1
                    bar.update(c.batch_size)
                    if on_step is not None:
                        on_step(s, float(loss))
                    if s.step % c.log_every == 0 or s.batch_in_epoch == self.steps_per_epoch:
                        t_log = self._log_interval(sums, t_log, bar)
                    if c.checkpoint_every_steps and s.step % c.checkpoint_every_steps == 0:
                        self.save()
                    if c.max_steps is not None and s.step >= c.max_steps and s.step < self.total_steps:
                        self.save()
                        logger.info("Paused at step %d (max_steps); resume with --resume %s", s.step, self.run_dir)
                        return s
                    if self._stop_requested(stop):
                        self.save()
                        return s
                    t_data = time.perf_counter()
                s.epoch += 1
                s.batch_in_epoch = 0
                if c.probe_every and s.epoch % c.probe_every == 0:
                    self._probe()
                if s.epoch < c.epochs and c.checkpoint_every and s.epoch % c.checkpoint_every == 0:
                    self.save()
        s.finished = True
        self.save()
        if self._tb is not None:
            self._tb.close()
        return s

    def _stop_requested(self, stop: StopRequest) -> bool:
        """Whether any process got a stop signal (all processes agree, so they stop at the same step)."""
        got = int(stop.signum is not None)
        if self.info.world_size > 1:
            got = dist.all_reduce_sum_int(got, device=self.device)
        if got and self.stopped_by is None:
            self.stopped_by = stop.signum or int(signal.SIGTERM)
        return bool(got)

    def _log_interval(self, sums: dict[str, Any], t_log: float, bar: tqdm) -> float:
        s, now = self.state, time.perf_counter()
        n = max(1, int(sums.pop("n")))
        means = {k: float(dist.all_reduce_mean(v.float() / n)) for k, v in sorted(sums.items())}
        skipped = dist.all_reduce_sum_int(s.images_skipped, device=self.device)
        ips = n * self.config.batch_size / max(now - t_log, 1e-9)
        total_t = sum(self.timings.values()) or 1.0
        self.log({"step": s.step, "epoch": s.epoch, **means,
                  "lr": self.optimizer.param_groups[0]["lr"], "images_per_s": ips, "images_skipped": skipped,
                  "time_share": {k: v / total_t for k, v in self.timings.items()}})
        bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()}, refresh=False)
        sums.clear()
        sums["n"] = 0
        return now

    def _probe(self) -> None:
        """Rank 0 only (the others wait at their next collective); logged as a metrics line (see probe.py)."""
        if not self.info.is_main:
            return
        if getattr(self, "prober", None) is None:
            self.prober = Probe(self.config, self.split, backbone_config(self.config), dense_grid=self.dense_grid)
        result = self.prober(self.model)
        if result is not None:
            logger.info("probe at epoch %d: %s", self.state.epoch,
                        ", ".join(f"{k} {v:.4g}" for k, v in result.items() if isinstance(v, float)))
            self.log({"step": self.state.step, "epoch": self.state.epoch, "probe": result})


def _with_cells(views: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(views, their cells' source coordinates or None) from a :class:`ViewAugment` result."""
    return views if isinstance(views, tuple) else (views, None)


def _tensorboard(run_dir: Path) -> Any:
    board = optional_import("torch.utils.tensorboard", needed_for="--tensorboard (drop it: metrics.jsonl is always "
                            "written)", name="tensorboard", extra="train", package="tensorboard")
    return board.SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def _seed_worker(worker_id: int) -> None:
    """Worker RNGs from the DataLoader's derived base seed (itself from seed, epoch and step)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def start(config: TrainConfig, run_dir: str | Path, *, resume: bool = False) -> Trainer:
    """``Trainer(...)``; a new run whose start fails (empty data, a bad option) leaves no run folder behind."""
    top = Path(run_dir).absolute()  # the outermost folder this start creates, if any
    while not top.parent.exists():
        top = top.parent
    created = not top.exists()
    try:
        return Trainer(config, run_dir, resume=resume)
    except BaseException:
        if created and dist.info().is_main:
            remove_new_run_dir(Path(run_dir).absolute(), keep={CONFIG_FILE, "tensorboard"}, up_to=top)
        raise


def train(config: TrainConfig, run_dir: str | Path, *, resume: bool = False) -> TrainState:
    """Train ``config`` into ``run_dir`` (resume=True continues the run there); returns the final state."""
    return start(config, run_dir, resume=resume).fit()


__all__ = ["METRICS_FILE", "RunFinishedError", "TrainState", "Trainer", "build_moco", "resume_config", "start",
           "train"]
