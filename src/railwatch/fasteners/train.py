"""``fasteners train``: fit an anomaly detector on normal crops, calibrate its scores, save both (paper 000).

Training sees normal crops only. The checkpoint kept is the one with the best validation AUC
when the validation crops include anomalies (the paper's "early stopping control", section
3.1.1), otherwise the one with the lowest reconstruction error on normal validation crops. Its
score statistics (Eq. 10's ``mu``, ``sigma``; the best-F1 threshold) come from the same
validation crops and are stored in the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from railwatch.checkpoint import save_checkpoint
from railwatch.config import FastenerTrainConfig
from railwatch.errors import InputError
from railwatch.fasteners.data import CropDataset, CropSet, CropSplits, read_crop_folder, split_crop_folder
from railwatch.fasteners.lightning import FastenerGANTask
from railwatch.fasteners.mnist import MNIST_ANOMALY_KINDS, mnist_protocol
from railwatch.fasteners.scoring import BASELINE_SCORES, SCORE_SOURCES, ScoreStats, calibrate, raw_scores
from railwatch.nn.device import module_device
from railwatch.training import KeepBest, fit, make_trainer

TASK = "fastener-anomaly"


@dataclass(frozen=True)
class FastenerFit:
    """One trained detector: its checkpoint, best validation metrics, score statistics and logs."""

    checkpoint: Path
    metrics: dict[str, float]
    stats: ScoreStats
    log_dir: Path


def model_settings(cfg: FastenerTrainConfig) -> dict[str, Any]:
    """What a checkpoint needs to rebuild the network and score with it."""
    return {"model": cfg.model, "arch": cfg.arch.model_dump(mode="json"), "score": cfg.score}


def chosen_source(cfg: FastenerTrainConfig, metrics: dict[str, float]) -> str:
    """The score a trained detector uses: a baseline's own (GANomaly's latent distance, MemAE's
    reconstruction error), the configured one, or for ``auto`` the KD-GAN score with the best
    validation AUC (Eq. 10's discriminator without anomalies)."""
    if cfg.model in BASELINE_SCORES:
        return BASELINE_SCORES[cfg.model]
    if cfg.score != "auto":
        return cfg.score
    aucs = {source: metrics.get(f"val/auc_{source}", -1.0) for source in SCORE_SOURCES}
    best = max(aucs, key=aucs.get)
    return best if aucs[best] >= 0 else "discriminator"


@torch.no_grad()
def score_crops(net: torch.nn.Module, crops: CropSet, source: str, batch_size: int = 64) -> np.ndarray:
    """Raw anomaly scores of every crop (network in eval mode, on its current device)."""
    net.eval()
    device = module_device(net)
    loader = DataLoader(CropDataset(crops), batch_size)
    return np.concatenate([raw_scores(net, x.to(device), source).float().cpu().numpy() for x, _ in loader])


def _check_sets(train: CropSet, val: CropSet, size: int) -> None:
    if not len(train):
        raise InputError("no training crops")
    if train.has_anomalies:
        raise InputError("training crops must all be normal: the detector learns normal fasteners only")
    if int(np.sum(val.labels == 0)) < 2:
        raise InputError("the validation crops need at least two normal crops to set mu and sigma (Eq. 10)")
    if train.images.shape[1:] != (size, size):
        raise InputError(f"crops are {train.images.shape[1:]} px, the model expects {size} x {size}")


def fit_fasteners(
    train: CropSet, val: CropSet, cfg: FastenerTrainConfig, out: str | Path, meta: dict[str, Any] | None = None, progress: bool = True
) -> FastenerFit:
    """Train ``cfg.model`` on the normal crops ``train``; validate, calibrate on ``val``; write ``out/best.pt``."""
    _check_sets(train, val, cfg.arch.image_size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    train_set = CropDataset(train, augment=cfg.augment, seed=cfg.seed)
    train_loader = DataLoader(
        train_set, cfg.batch_size, shuffle=True, num_workers=cfg.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed), drop_last=len(train_set) > cfg.batch_size,
    )  # fmt: skip
    val_loader = DataLoader(CropDataset(val), 64, num_workers=cfg.num_workers)
    task = FastenerGANTask(cfg.model_dump(mode="json"))
    best = KeepBest("val/auc" if val.has_anomalies else "val/neg_recon_mse")
    # each optimiser step counts as a trainer step
    trainer_cfg = cfg.model_copy(update={"max_steps": task.updates_per_batch() * cfg.steps, "val_every_steps": min(cfg.val_every_steps or cfg.steps, cfg.steps)})
    trainer = make_trainer(trainer_cfg, out, best, train_loader, progress)
    fit(trainer, task, best, train_loader, val_loader, cfg.resume)

    net = task.net.cpu()
    net.load_state_dict(best.weights)
    source = chosen_source(cfg, best.meta["metrics"])
    val_raw = score_crops(net, val, source)
    stats = calibrate(val_raw[val.labels == 0], cfg.k, source, val_raw, val.labels)
    meta = {**(meta or {}), "train_crops": len(train), "val_crops": len(val), "seed": cfg.seed, **best.meta}
    settings = {**model_settings(cfg), "stats": stats.to_dict()}
    path = save_checkpoint(out / "best.pt", best.weights, TASK, settings, meta)
    return FastenerFit(path, best.best_metrics, stats, Path(trainer.logger.log_dir))


def load_splits(
    data: str | Path | None = None, mnist: str | Path | None = None, seed: int = 0, val_fraction: float = 0.3, test_fraction: float = 0.1
) -> tuple[CropSplits, dict[str, Any]]:
    """The training, validation and test crops of a crop folder (``data``) or of the MNIST protocol (``mnist``).

    Returns the splits and how they were made (kept in the checkpoint, so ``eval --split test``
    can make the same test set again).
    """
    if (data is None) == (mnist is None):
        raise InputError("give either a crop folder (--data) or the MNIST folder (--mnist)")
    if mnist is not None:
        meta = {"protocol": "mnist", "data": str(Path(mnist).resolve()), "split_seed": seed, "anomalies": list(MNIST_ANOMALY_KINDS)}
        return mnist_protocol(mnist, seed=seed), meta
    crops = read_crop_folder(data)
    splits = split_crop_folder(crops, seed, val_fraction, test_fraction)
    meta = {"protocol": "folder", "data": str(Path(data).resolve()), "split_seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction}
    return splits, meta


def splits_from_meta(meta: dict[str, Any]) -> CropSplits:
    """The splits a checkpoint was trained with, made again from its recorded data and seed."""
    if meta.get("protocol") == "mnist":
        # checkpoints from before the made anomalies of Figure 7 were trained on zeros alone
        return mnist_protocol(meta["data"], seed=meta["split_seed"], anomalies=meta.get("anomalies", ("digit",)))
    if meta.get("protocol") == "folder":
        return split_crop_folder(read_crop_folder(meta["data"]), meta["split_seed"], meta["val_fraction"], meta["test_fraction"])
    raise InputError("the checkpoint does not record its data split; give --split all")


def train_fasteners(
    out: str | Path, cfg: FastenerTrainConfig, data: str | Path | None = None, mnist: str | Path | None = None, progress: bool = True
) -> FastenerFit:
    """Split ``data`` (or the MNIST protocol) with ``cfg.seed``, train on the normal training crops, calibrate on validation."""
    splits, meta = load_splits(data, mnist, cfg.seed)
    return fit_fasteners(splits.train, splits.val, cfg, out, meta, progress)
