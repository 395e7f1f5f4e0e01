"""What every railwatch training run shares: best-on-validation checkpoints and the Lightning trainer."""

from __future__ import annotations

import logging
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from railwatch.errors import ConfigError, InputError

RESUME_FILE = "last.ckpt"
# settings that may differ between an interrupted run and its resumption without changing what it trains
_FREE_ON_RESUME = frozenset({"resume", "resume_every_s", "num_workers"})


class TrainerSettings(Protocol):
    """The hardware and schedule fields every ``*TrainConfig`` has."""

    epochs: int
    accelerator: str
    devices: str
    precision: str
    max_steps: int
    val_every_steps: int | None
    channels_last: bool
    resume_every_s: float


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

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_metrics": self.best_metrics, "validated_at_step": self.validated_at_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best, self.best_metrics = state_dict["best"], state_dict["best_metrics"]
        self.validated_at_step = state_dict["validated_at_step"]


class KeepBest(SaveBest):
    """:class:`SaveBest` that keeps the best network's weights (``module.net``) and their ``meta`` in memory.

    For runs that write their checkpoint only after training (calibration first); the weights
    travel in ``last.ckpt`` too, so a resumed run still has the best of its first part.
    """

    def __init__(self, monitor: str) -> None:
        super().__init__(monitor, self._keep)
        self.weights: dict[str, torch.Tensor] = {}
        self.meta: dict[str, Any] = {}

    def _keep(self, module: L.LightningModule, meta: dict[str, Any]) -> None:
        self.weights = {k: v.detach().cpu().clone() for k, v in module.net.state_dict().items()}
        self.meta = meta

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "weights": self.weights, "meta": self.meta}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.weights, self.meta = state_dict["weights"], state_dict["meta"]


class ResumePoint(Callback):
    """Keep ``last.ckpt``, the whole state of a training run, so that an interrupted run can go on.

    Lightning's checkpoint holds the weights, optimisers, schedules, loop counters and the
    callbacks' state (the best score so far). It leaves out the random generators, which this
    callback adds: the training loader's shuffling generator and the global torch (and CUDA),
    NumPy and Python ones. A resumed run therefore trains the model the run would have trained
    uninterrupted, bit for bit on the same machine.

    The file is written after an epoch's last batch, the first one ``every_s`` seconds after the
    last write, through a temporary file so that a crash while writing never leaves half of
    one; :func:`fit` removes it once training has ended. That is the point Lightning resumes
    from cleanly in step-limited runs too: it closes the epoch (running the validation that
    was due) and starts the next one from its first batch. (Written at an epoch's end instead,
    the state makes a step-limited run take one more batch of the finished epoch.) The global
    generators are set back again after the validation sanity check, which draws from them,
    if Lightning runs one on resuming.
    """

    def __init__(self, path: Path, generator: torch.Generator | None, every_s: float) -> None:
        self.path, self.generator, self.every_s = path, generator, every_s
        self._written = time.monotonic()
        self._restored: dict[str, Any] | None = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx + 1 < trainer.num_training_batches or time.monotonic() - self._written < self.every_s:
            return
        part = self.path.with_name(self.path.name + ".part")
        trainer.save_checkpoint(part, weights_only=False)
        os.replace(part, self.path)
        self._written = time.monotonic()

    def on_sanity_check_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._restored is not None:  # the sanity check has drawn from the global generators
            _set_global_rng_states(self._restored)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restored = None

    def state_dict(self) -> dict[str, Any]:
        state = _global_rng_states()
        if self.generator is not None:
            state["loader"] = self.generator.get_state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # before Lightning makes the next epoch's iterator, which draws from the loader's generator
        _set_global_rng_states(state_dict)
        if "loader" in state_dict and self.generator is not None:
            self.generator.set_state(state_dict["loader"])
        self._restored = state_dict


def _global_rng_states() -> dict[str, Any]:
    """The global torch, CUDA, NumPy and Python generators' states, in types ``weights_only`` loading accepts."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_global_rng_states(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ChannelsLast(Callback):
    """Put the model's 4-D weights in the channels-last layout before its optimisers are made.

    Convolutions then return channels-last activations too, and their backward passes run in
    that layout; only the first convolution converts its (NCHW) input.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        pl_module.to(memory_format=torch.channels_last)


def make_trainer(
    cfg: TrainerSettings, out: Path, best: SaveBest, train_loader: DataLoader, progress: bool = True, resumable: bool = True
) -> L.Trainer:
    """A Lightning trainer for ``cfg``: CSV logs under ``out/logs``, validation per epoch or every N steps.

    ``resumable`` keeps ``out/last.ckpt`` while training (:class:`ResumePoint`), so that
    :func:`fit` can go on from it; leave it off for a task that saves no hyper-parameters, whose
    ``last.ckpt`` could not be checked against the settings of the run resuming it.
    """
    devices: Any = int(cfg.devices) if cfg.devices.isdigit() else cfg.devices
    every = cfg.val_every_steps
    callbacks: list[Callback] = [best]
    if cfg.channels_last:
        callbacks.append(ChannelsLast())
    if resumable:
        callbacks.append(ResumePoint(out / RESUME_FILE, train_loader.generator, cfg.resume_every_s))
    trainer = L.Trainer(
        max_epochs=cfg.epochs,
        val_check_interval=every if every else 1.0,
        check_val_every_n_epoch=None if every else 1,
        max_steps=cfg.max_steps,
        accelerator=cfg.accelerator,
        devices=devices,
        precision=cfg.precision,
        deterministic="warn" if cfg.accelerator != "cpu" else True,
        callbacks=callbacks,
        logger=CSVLogger(out, name="logs"),
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=min(10, max(1, len(train_loader))),
    )
    if trainer.num_devices > 1:
        # each process would score only its share of the validation set and save its own "best"
        raise ConfigError(f"devices={cfg.devices!r} gives {trainer.num_devices} devices; railwatch trains on one (e.g. --devices 1)")
    # Deterministic mode also fills every new tensor with NaN, a trap for reads of uninitialised
    # memory that took 11% (surface FCN) to 19% (fastener KD-GAN) of a CPU training step; the
    # kernels stay deterministic without it
    torch.utils.deterministic.fill_uninitialized_memory = False
    return trainer


def fit(
    trainer: L.Trainer, task: L.LightningModule, best: SaveBest, train_loader: Any, val_loader: Any, resume: bool = False
) -> None:
    """Train, and validate once more if ``max_steps`` stopped training between validations.

    With ``resume``, training goes on from the ``last.ckpt`` an interrupted run left (see
    :func:`resume_checkpoint`), or starts from the beginning where there is none. Once
    training has ended, ``last.ckpt`` is removed: ``best.pt`` is what the run leaves.
    """
    point = next((c for c in trainer.callbacks if isinstance(c, ResumePoint)), None)
    if resume and point is None:
        raise ConfigError(
            "this training records no settings to check a resume against and cannot resume; train again without --resume"
        )
    ckpt = resume_checkpoint(point.path, task.hparams) if resume and point else None
    trainer.fit(task, train_loader, val_loader, ckpt_path=ckpt, weights_only=True)
    if best.validated_at_step != trainer.global_step:
        trainer.validate(task, val_loader, verbose=False)
    if point is not None:
        point.path.unlink(missing_ok=True)


def resume_checkpoint(path: Path, hparams: Mapping[str, Any]) -> Path | None:
    """``path`` if it holds a run to resume with the settings ``hparams``; ``None`` if there is no such file.

    Raises:
        InputError: ``path`` is not a readable checkpoint.
        ConfigError: it was written with other settings (those in ``_FREE_ON_RESUME`` aside),
            which would make the resumed run a different one.
    """
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises several kinds for a truncated or foreign file
        raise InputError(f"{path}: not a readable training checkpoint ({error}); delete it to train from the start") from None
    changed = changed_settings(saved.get("hyper_parameters", {}), dict(hparams))
    if changed:
        raise ConfigError(
            f"{path} was written with other settings ({'; '.join(changed[:3])}); resume with the same ones, or delete it"
        )
    return path


def changed_settings(saved: Mapping[str, Any], now: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key: saved -> now`` for every setting, at any depth, that differs (``_FREE_ON_RESUME`` aside)."""
    changed = []
    for key in sorted(set(saved) | set(now)):
        if key in _FREE_ON_RESUME:
            continue
        old, new = saved.get(key), now.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            changed += changed_settings(old, new, f"{prefix}{key}.")
        elif old != new:
            changed.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return changed


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
