"""What every railwatch training run shares: best-on-validation checkpoints and the Lightning trainer."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger

from railwatch.errors import ConfigError


class TrainerSettings(Protocol):
    """The hardware and schedule fields every ``*TrainConfig`` has."""

    epochs: int
    accelerator: str
    devices: str
    precision: str
    max_steps: int
    val_every_steps: int | None
    channels_last: bool


class SaveBest(Callback):
    """Call ``save(module, meta)`` whenever validation ``monitor`` improves (best-on-validation).

    ``meta`` carries the epoch, step and every ``val/`` metric of that validation.
    """

    def __init__(self, monitor: str, save: Callable[[L.LightningModule, dict[str, Any]], None]) -> None:
        self.monitor, self.save = monitor, save
        self.best = -math.inf
        self.best_metrics: dict[str, float] = {}
        self.validated_at_step: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.validated_at_step = trainer.global_step
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        score = metrics.get(self.monitor, -math.inf)
        if score > self.best:
            self.best, self.best_metrics = score, metrics
            self.save(pl_module, {"epoch": trainer.current_epoch, "step": trainer.global_step, "metrics": metrics})


class ChannelsLast(Callback):
    """Put the model's 4-D weights in the channels-last layout before its optimisers are made.

    Convolutions then return channels-last activations too, and their backward passes run in
    that layout; only the first convolution converts its (NCHW) input.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        pl_module.to(memory_format=torch.channels_last)


def make_trainer(cfg: TrainerSettings, out: Path, best: SaveBest, steps_per_epoch: int, progress: bool = True) -> L.Trainer:
    """A Lightning trainer for ``cfg``: CSV logs under ``out/logs``, validation per epoch or every N steps."""
    devices: Any = int(cfg.devices) if cfg.devices.isdigit() else cfg.devices
    every = cfg.val_every_steps
    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        val_check_interval=every if every else 1.0,
        check_val_every_n_epoch=None if every else 1,
        max_steps=cfg.max_steps,
        accelerator=cfg.accelerator,
        devices=devices,
        precision=cfg.precision,
        deterministic="warn" if cfg.accelerator != "cpu" else True,
        callbacks=[best, ChannelsLast()] if cfg.channels_last else [best],
        logger=CSVLogger(out, name="logs"),
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=min(10, max(1, steps_per_epoch)),
    )
    if trainer.num_devices > 1:
        # each process would score only its share of the validation set and save its own "best"
        raise ConfigError(f"devices={cfg.devices!r} gives {trainer.num_devices} devices; railwatch trains on one (e.g. --devices 1)")
    # Deterministic mode also fills every new tensor with NaN, a trap for reads of uninitialised
    # memory that took 11% (surface FCN) to 19% (fastener KD-GAN) of a CPU training step; the
    # kernels stay deterministic without it
    torch.utils.deterministic.fill_uninitialized_memory = False
    return trainer


def fit(trainer: L.Trainer, task: L.LightningModule, best: SaveBest, train_loader: Any, val_loader: Any) -> None:
    """Train, and validate once more if ``max_steps`` stopped training between validations."""
    trainer.fit(task, train_loader, val_loader)
    if best.validated_at_step != trainer.global_step:
        trainer.validate(task, val_loader, verbose=False)


def cpu_precision() -> str:
    """``bf16-mixed`` where the CPU computes bfloat16 natively (AVX-512 BF16 or AMX), else ``32-true``."""
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "bf16-mixed" if native else "32-true"


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Keep Lightning's start-up notices and library warnings out of the demo's printout."""
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
