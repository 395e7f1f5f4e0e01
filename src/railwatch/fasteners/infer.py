"""Load a trained fastener detector and judge crops with it (paper 000, section 2.3, Eq. 10)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from railwatch.checkpoint import load_checkpoint
from railwatch.config import FastenerModelConfig, FastenerTrainConfig
from railwatch.errors import InputError
from railwatch.fasteners.data import CropSet
from railwatch.fasteners.scoring import ScoreStats, ScoringPath, build_detector
from railwatch.fasteners.train import TASK, score_crops
from railwatch.nn.device import module_device

Rule = Literal["sigma", "f1"]


@dataclass(frozen=True)
class CropVerdict:
    """One crop judged: its raw score, Eq. 10's ``A``, and whether it is over the threshold."""

    source: str
    raw: float
    score: float
    anomalous: bool
    truth: str

    def to_dict(self) -> dict:
        return asdict(self)


class FastenerDetector:
    """A trained detector with its score statistics, as saved by ``fasteners train``."""

    def __init__(self, net: nn.Module, model: str, arch: FastenerModelConfig, stats: ScoreStats) -> None:
        self.net, self.model, self.arch, self.stats = net.eval(), model, arch, stats

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> FastenerDetector:
        """Read ``path`` (``weights_only=True``) and rebuild the network.

        Raises:
            InputError: missing, unreadable, another task's checkpoint, or weights that do not fit.
        """
        payload = load_checkpoint(path, TASK)
        settings = payload["model"]
        cfg = FastenerTrainConfig(model=settings["model"], arch=settings["arch"])
        net = build_detector(cfg)
        try:
            net.load_state_dict(payload["state_dict"])
        except RuntimeError as err:
            raise InputError(f"{path}: weights do not fit a {cfg.model} network ({str(err).splitlines()[0]})") from None
        return cls(net, cfg.model, cfg.arch, ScoreStats.from_dict(settings["stats"]))

    @property
    def image_size(self) -> int:
        return self.arch.image_size

    def raw_scores(self, crops: CropSet) -> np.ndarray:
        """Raw anomaly scores of ``crops`` (larger is more anomalous)."""
        if len(crops) and crops.images.shape[1:] != (self.image_size, self.image_size):
            raise InputError(f"crops are {crops.images.shape[1:]} px; this detector takes {self.image_size} x {self.image_size}")
        return score_crops(self.net, crops, self.stats.source)

    def judge(self, crops: CropSet, rule: Rule = "sigma") -> list[CropVerdict]:
        """Score every crop and compare it with the ``rule``'s threshold (``mu + k sigma`` or best-F1)."""
        raw = self.raw_scores(crops)
        threshold = self.stats.decision_threshold(rule)
        scores = self.stats.normalise(raw)
        return [
            CropVerdict(src, float(r), float(a), bool(r > threshold), kind)
            for src, r, a, kind in zip(crops.sources, raw, scores, crops.kinds)
        ]

    def scoring_path(self) -> ScoringPath:
        """Crops -> ``(A, raw)`` as one module (for ONNX export)."""
        return ScoringPath(self.net, self.stats.source, self.stats.mu, self.stats.sigma).eval()

    @torch.no_grad()
    def reconstruct(self, crops: CropSet) -> np.ndarray:
        """The student's (GANomaly, MemAE: the decoder's) reconstructions as ``(N, S, S)`` uint8."""
        x = torch.from_numpy(crops.images).to(module_device(self.net)).float().div(255).unsqueeze(1)
        out = self.net.reconstruct(x)
        return (out.squeeze(1).clamp(0, 1) * 255).round().byte().cpu().numpy()
