"""``train-det``: fit ST-YOLO or YOLOv8s on a YOLO-txt or Pascal-VOC data set, keep the best on validation mAP@0.5."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from railwatch.checkpoint import load_checkpoint, save_checkpoint
from railwatch.config import DetAugmentConfig, DetInferConfig, DetModelConfig, DetTrainConfig
from railwatch.errors import InputError
from railwatch.intrusion.det.data import DetectionDataset, collate_detections, read_detection_split
from railwatch.intrusion.det.lightning import DetectionTask
from railwatch.training import SaveBest, fit, make_trainer

TASK = "object-det"


def load_initial_weights(net: torch.nn.Module, path: str | Path, model_cfg: DetModelConfig) -> None:
    """Start ``net`` from a detector checkpoint of the same architecture and classes.

    Raises:
        InputError: the checkpoint is missing, unreadable, or of another architecture or class list.
    """
    payload = load_checkpoint(path, TASK)
    saved = DetModelConfig.model_validate(payload["model"])
    same = ("arch", "classes", "se", "msda", "msda_dilations", "msda_window", "reg_max")
    if any(getattr(saved, k) != getattr(model_cfg, k) for k in same):
        raise InputError(f"{path}: a {saved.arch} with other classes or settings than the model being trained")
    net.load_state_dict(payload["state_dict"])


@dataclass(frozen=True)
class TrainResult:
    """Where the best model went and how good it was on validation."""

    checkpoint: Path
    metrics: dict[str, float]
    log_dir: Path


def train_detector(
    data: str | Path,
    out: str | Path,
    model_cfg: DetModelConfig,
    train_cfg: DetTrainConfig,
    augment: DetAugmentConfig | None = None,
    infer_cfg: DetInferConfig | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train on the data set's ``train`` split, validate on ``val``, save ``out/best.pt``.

    Args:
        data: A YOLO data set (``data.yaml``, e.g. ``railwatch data synth scenes``) or Pascal VOC folder.
        out: Output folder: ``best.pt`` (weights_only-loadable) and CSV logs.
        model_cfg: Network settings (``arch`` picks ST-YOLO or YOLOv8s).
        train_cfg: Schedule, loss weights, seed, hardware.
        augment: Training augmentation (mosaic, flips, HSV, scale).
        infer_cfg: Thresholds for validation precision and recall.
        progress: Show Lightning's progress bar.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(train_cfg.seed, workers=True, verbose=False)
    size = (model_cfg.input_height, model_cfg.input_width)
    train_set = DetectionDataset(read_detection_split(Path(data), "train", model_cfg.classes), *size, augment or DetAugmentConfig(), seed=train_cfg.seed)
    val_set = DetectionDataset(read_detection_split(Path(data), "val", model_cfg.classes), *size, None)
    workers = train_cfg.num_workers
    generator = torch.Generator().manual_seed(train_cfg.seed)
    train_loader = DataLoader(
        train_set, train_cfg.batch_size, shuffle=True, num_workers=workers, generator=generator,
        drop_last=len(train_set) > train_cfg.batch_size, collate_fn=collate_detections,
    )  # fmt: skip
    val_loader = DataLoader(val_set, train_cfg.batch_size, num_workers=workers, collate_fn=collate_detections)
    infer_cfg = infer_cfg or DetInferConfig()
    task = DetectionTask(model_cfg.model_dump(mode="json"), train_cfg.model_dump(mode="json"), infer_cfg.model_dump(mode="json"))
    if train_cfg.init_weights:
        load_initial_weights(task.net, train_cfg.init_weights, model_cfg)
    meta = {"data": Path(data).resolve().name, "train_images": len(train_set), "seed": train_cfg.seed}

    def save(module: L.LightningModule, progress_meta: dict[str, Any]) -> None:
        save_checkpoint(out / "best.pt", module.inference_net.state_dict(), TASK, model_cfg.model_dump(mode="json"), {**meta, **progress_meta})

    best = SaveBest("val/map50", save)
    trainer = make_trainer(train_cfg, out, best, train_loader, progress)
    fit(trainer, task, best, train_loader, val_loader, train_cfg.resume)
    return TrainResult(out / "best.pt", best.best_metrics, Path(trainer.logger.log_dir))
