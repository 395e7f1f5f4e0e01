"""``surface train``: fit a defect segmenter on tiles and keep it with its normalisation (paper 002, section 2)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from railwatch.checkpoint import save_checkpoint
from railwatch.config import SurfaceTrainConfig
from railwatch.surface.data import (
    Normalisation,
    SurfaceTiles,
    TileDataset,
    find_pairs,
    holdout_split,
    load_tiles,
)
from railwatch.surface.lightning import SurfaceSegmentationTask
from railwatch.surface.models import load_backbone_weights
from railwatch.training import SaveBest, fit, make_trainer

TASK = "surface-seg"


def model_settings(cfg: SurfaceTrainConfig, tiles: SurfaceTiles, norm: Normalisation) -> dict[str, Any]:
    """What a checkpoint needs to rebuild the network and prepare its input the same way."""
    return {
        "name": cfg.model_name,
        "tile_height": int(tiles.images.shape[1]),
        "tile_width": int(tiles.images.shape[2]),
        "mask_threshold": cfg.mask_threshold,
        "normalisation": norm.to_dict(),
    }


@dataclass(frozen=True)
class SurfaceFit:
    """One trained network: its checkpoint, validation scores (best and last) and step time."""

    checkpoint: Path
    metrics: dict[str, float]
    last_metrics: dict[str, float]
    step_ms: float
    log_dir: Path


def fit_surface(
    tiles: SurfaceTiles,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    cfg: SurfaceTrainConfig,
    out: str | Path,
    meta: dict[str, Any] | None = None,
    progress: bool = True,
) -> SurfaceFit:
    """Train ``cfg.model_name`` on ``tiles[train_idx]``, validate on ``tiles[val_idx]``, save ``out/best.pt``.

    The normalisation comes from the training tiles only (section 2.1.3) and is stored in the
    checkpoint; ``best.pt`` is the model with the best validation IoU of the defect class.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    train_tiles, val_tiles = tiles.subset(train_idx), tiles.subset(val_idx)
    norm = Normalisation.fit(train_tiles.images)
    train_set = TileDataset(train_tiles, norm, flips=cfg.flips, seed=cfg.seed)
    train_loader = DataLoader(
        train_set, cfg.batch_size, shuffle=True, num_workers=cfg.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed), drop_last=len(train_set) > cfg.batch_size,
    )  # fmt: skip
    val_loader = DataLoader(TileDataset(val_tiles, norm), cfg.batch_size, num_workers=cfg.num_workers)
    task = SurfaceSegmentationTask(cfg.model_dump(mode="json"))
    if cfg.backbone_weights:
        load_backbone_weights(task.net, cfg.model_name, cfg.backbone_weights)
    settings = model_settings(cfg, tiles, norm)
    meta = {**(meta or {}), "train_tiles": len(train_tiles), "val_tiles": len(val_tiles), "seed": cfg.seed}

    def save(module: L.LightningModule, progress_meta: dict[str, Any]) -> None:
        save_checkpoint(out / "best.pt", module.net.state_dict(), TASK, settings, {**meta, **progress_meta})

    best = SaveBest("val/iou", save)
    trainer = make_trainer(cfg, out, best, train_loader, progress)
    fit(trainer, task, best, train_loader, val_loader, cfg.resume)
    return SurfaceFit(out / "best.pt", best.best_metrics, task.last_val, task.mean_step_ms(), Path(trainer.logger.log_dir))


def train_surface(data: str | Path, out: str | Path, cfg: SurfaceTrainConfig, progress: bool = True) -> SurfaceFit:
    """Read ``data`` (RSDDs or images/ + masks/), hold out ``cfg.val_fraction`` of the tiles, train.

    The held-out tiles are the test set of paper 002 (section 2.1.2: 90/10); the split's seed and
    fraction are recorded so ``surface eval --split test`` scores the same tiles.
    """
    tiles = load_tiles(find_pairs(data, cfg.rail_type), cfg.tile_height, cfg.mask_threshold)
    train_idx, val_idx = holdout_split(len(tiles), cfg.val_fraction, cfg.seed)
    meta = {"data": str(Path(data).resolve()), "rail_type": cfg.rail_type, "val_fraction": cfg.val_fraction}
    return fit_surface(tiles, train_idx, val_idx, cfg, out, meta, progress)
