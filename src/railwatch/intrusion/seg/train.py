"""``train-seg``: fit a segmenter on a scene data set and keep the best model on validation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from railwatch.checkpoint import load_checkpoint, save_checkpoint
from railwatch.config import SegModelConfig, SegTrainConfig
from railwatch.errors import InputError
from railwatch.intrusion.seg.data import SceneSegmentation
from railwatch.intrusion.seg.lightning import SegmentationTask
from railwatch.training import SaveBest, fit, make_trainer

TASK = "track-seg"


def inference_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The network's weights without its training-only auxiliary heads (what a checkpoint keeps)."""
    return {k: v for k, v in net.state_dict().items() if not k.startswith("aux_heads.")}


def load_initial_weights(net: torch.nn.Module, path: str | Path, model_cfg: SegModelConfig) -> None:
    """Start ``net`` from a segmenter checkpoint of the same architecture (auxiliary heads stay new).

    Raises:
        InputError: the checkpoint is missing, unreadable, or of another architecture or class list.
    """
    payload = load_checkpoint(path, TASK)
    saved = SegModelConfig.model_validate(payload["model"])
    if (saved.arch, saved.classes, saved.head_channels, saved.upsample) != (
        model_cfg.arch, model_cfg.classes, model_cfg.head_channels, model_cfg.upsample
    ):
        raise InputError(f"{path}: a {saved.arch} with other classes or head settings than the model being trained")
    missing, unexpected = net.load_state_dict(payload["state_dict"], strict=False)
    if unexpected or any(not k.startswith("aux_heads.") for k in missing):
        raise InputError(f"{path}: weights do not fit the network being trained")


@dataclass(frozen=True)
class TrainResult:
    """Where the best model went and how good it was on validation."""

    checkpoint: Path
    metrics: dict[str, float]
    log_dir: Path


def train_segmenter(
    data: str | Path, out: str | Path, model_cfg: SegModelConfig, train_cfg: SegTrainConfig, progress: bool = True
) -> TrainResult:
    """Train on ``data/images/train``, validate on ``data/images/val``, save ``out/best.pt``.

    Args:
        data: Scene data set (``railwatch data synth scenes``).
        out: Output folder: ``best.pt`` (weights_only-loadable) and CSV logs.
        model_cfg: Network settings.
        train_cfg: Schedule, crops, seed, hardware.
        progress: Show Lightning's progress bar.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(train_cfg.seed, workers=True, verbose=False)
    size = (model_cfg.input_height, model_cfg.input_width)
    crop = (train_cfg.crop_height, train_cfg.crop_width) if train_cfg.crop_height and train_cfg.crop_width else None
    if crop and (crop[0] > size[0] or crop[1] > size[1]):
        crop = None
    focus = model_cfg.classes.index("rail") if "rail" in model_cfg.classes else None
    train_set = SceneSegmentation(
        data, "train", model_cfg.classes, size, crop, augment=True, seed=train_cfg.seed,
        focus_class=focus, focus_prob=train_cfg.rail_crop_prob,
    )  # fmt: skip
    val_set = SceneSegmentation(data, "val", model_cfg.classes, size)
    workers = train_cfg.num_workers
    generator = torch.Generator().manual_seed(train_cfg.seed)
    train_loader = DataLoader(
        train_set, train_cfg.batch_size, shuffle=True, num_workers=workers, generator=generator,
        drop_last=len(train_set) > train_cfg.batch_size,
    )  # fmt: skip
    val_loader = DataLoader(val_set, max(1, train_cfg.batch_size // 2), num_workers=workers)
    task = SegmentationTask(model_cfg.model_dump(mode="json"), train_cfg.model_dump(mode="json"))
    if train_cfg.init_weights:
        load_initial_weights(task.net, train_cfg.init_weights, model_cfg)
    meta = {"data": Path(data).resolve().name, "train_images": len(train_set), "seed": train_cfg.seed}

    def save(module: L.LightningModule, progress_meta: dict[str, Any]) -> None:
        state = inference_state(module.net)
        save_checkpoint(out / "best.pt", state, TASK, model_cfg.model_dump(mode="json"), {**meta, **progress_meta})

    best = SaveBest("val/miou", save)
    trainer = make_trainer(train_cfg, out, best, train_loader, progress)
    fit(trainer, task, best, train_loader, val_loader, train_cfg.resume)
    return TrainResult(out / "best.pt", best.best_metrics, Path(trainer.logger.log_dir))
