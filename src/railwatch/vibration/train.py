"""Training runs of the FFI regressor: accelerometer-only, DAS-only, and cross-modal transfer (paper 001).

Transfer is two phases (Fig. 3): (a) pre-train E_a, E_d and H on paired events with
MSE + MSE + lambda ED; (b) keep E_d and H and fine-tune them on DAS alone. Each phase keeps the
weights of its best validation epoch ("the checkpoint with the lowest validation loss"), judged
by the MSE of the DAS prediction: pre-training's total loss is mostly lambda x ED, which in eval
mode (BatchNorm's running statistics) is lowest after the first epoch, before anything is learnt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from railwatch.checkpoint import save_checkpoint
from railwatch.config import VibrationTrainConfig
from railwatch.errors import InputError
from railwatch.training import KeepBest, fit, make_trainer
from railwatch.vibration.data import SpectraDataset, SpectraSet, numbered_split
from railwatch.vibration.lightning import FFITask
from railwatch.vibration.metrics import ffi_metrics
from railwatch.vibration.model import CrossModalModel, FFIRegressor

TASK = "vibration-ffi"


@dataclass
class VibrationFit:
    """A trained regressor: its checkpoint, best validation metrics, test metrics, and logs."""

    checkpoint: Path
    metrics: dict[str, float]
    test: dict[str, float] | None
    log_dir: Path


def model_settings(cfg: VibrationTrainConfig, channels: int, bins: int) -> dict[str, Any]:
    """What rebuilds a regressor and prepares its input: architecture, modality, window, band."""
    return {
        "arch": cfg.arch.model_dump(mode="json"),
        "modality": cfg.modality,
        "in_channels": channels,
        "bins": bins,
        "window_s": cfg.window_s,
        "max_freq": cfg.max_freq,
        "accelerometer": cfg.accelerometer,
    }


def _loader(data: SpectraSet, modality: str, cfg: VibrationTrainConfig, train: bool, paired: bool = False) -> DataLoader:
    dataset = SpectraDataset(data, modality, paired)
    if not train:
        return DataLoader(dataset, 256, num_workers=cfg.num_workers)
    return DataLoader(
        dataset, cfg.batch_size, shuffle=True, num_workers=cfg.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed), drop_last=len(dataset) > cfg.batch_size,
    )  # fmt: skip


def _phase(
    net: nn.Module, train: DataLoader, val: DataLoader, cfg: VibrationTrainConfig, epochs: int, monitor: str, out: Path, progress: bool
) -> tuple[dict[str, Any], Path]:
    """Train ``net`` for ``epochs``, validating each epoch; load its best weights back; return their metrics."""
    best = KeepBest(monitor)
    phase_cfg = cfg.model_copy(update={"epochs": epochs, "val_every_steps": None})
    task = FFITask(net, phase_cfg, epochs * len(train))
    # FFITask saves no hyper-parameters to check a last.ckpt against, and a run takes minutes
    trainer = make_trainer(phase_cfg, out, best, train, progress, resumable=False)
    fit(trainer, task, best, train, val, phase_cfg.resume)
    net.cpu().load_state_dict(best.weights)
    return best.meta, Path(trainer.logger.log_dir)


def predict_scaled(net: FFIRegressor, spectra: np.ndarray, batch: int = 256) -> np.ndarray:
    """FFI/3 predictions of ``net`` (eval mode, CPU) for ``(N, channels, bins)`` spectra."""
    net = net.eval().cpu()
    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(spectra[i : i + batch])).numpy() for i in range(0, len(spectra), batch)])


def fit_regressor(
    train: SpectraSet, val: SpectraSet, cfg: VibrationTrainConfig, out: str | Path, meta: dict[str, Any] | None = None, progress: bool = True
) -> tuple[FFIRegressor, VibrationFit]:
    """Train ``cfg.modality``'s regressor on ``train``, pick the best epoch on ``val``, write ``out/best.pt``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    bins = train.das.shape[-1]
    history: dict[str, Any] = {}
    if cfg.modality == "transfer":
        if train.accel is None:
            raise InputError("the data set holds no accelerometer records; transfer pre-training needs both, of the same events")
        pair = CrossModalModel(train.accel.shape[1], train.das.shape[1], bins, cfg.arch, cfg.ed_features)
        history["pretrain"], _ = _phase(
            pair, _loader(train, "das", cfg, True, paired=True), _loader(val, "das", cfg, False, paired=True),
            cfg, cfg.epochs, "val/neg_mse", out / "pretrain", progress,
        )  # fmt: skip
        net, epochs = pair.das_regressor(), cfg.finetune_epochs
        phase_cfg = cfg.model_copy(update={"lr": cfg.finetune_lr, "lr_min": min(cfg.lr_min, cfg.finetune_lr)})
    else:
        net, epochs, phase_cfg = FFIRegressor(train.inputs(cfg.modality).shape[1], bins, cfg.arch), cfg.epochs, cfg
    best_meta, log_dir = _phase(
        net, _loader(train, cfg.modality, cfg, True), _loader(val, cfg.modality, cfg, False), phase_cfg, epochs, "val/neg_mse", out, progress
    )
    settings = model_settings(cfg, net.in_channels, bins)
    meta = {**(meta or {}), "train_events": len(train), "val_events": len(val), "seed": cfg.seed, **best_meta, **history}
    path = save_checkpoint(out / "best.pt", net.state_dict(), TASK, settings, meta)
    return net, VibrationFit(path, best_meta["metrics"], None, log_dir)


def train_vibration(
    data: SpectraSet, cfg: VibrationTrainConfig, out: str | Path, split_index: int = 0, meta: dict[str, Any] | None = None, progress: bool = True
) -> VibrationFit:
    """Train on random split ``split_index`` (7:1:2) of ``data`` and measure the test part (paper's Tables 2-3)."""
    data.inputs("accel" if cfg.modality == "transfer" else cfg.modality)  # refuses a missing modality before any work
    train_idx, val_idx, test_idx = numbered_split(len(data), cfg.split, split_index)
    meta = {**(meta or {}), "split_index": split_index}
    net, result = fit_regressor(data.subset(train_idx), data.subset(val_idx), cfg, out, meta, progress)
    test = data.subset(test_idx)
    result.test = ffi_metrics(predict_scaled(net, test.inputs(cfg.modality)), test.ffi)
    return result
