"""Anomaly scores, their normal statistics and thresholds, and the detection metrics (paper 000, Eq. 10, 18-20).

The raw score of a crop is what the detector measures (for KD-GAN: the discriminator's "fake"
logit on the student's reconstruction, ``-D(G_s(E(I)))``, or how far the reconstruction is from
the crop, or how far the student is from the teacher; see :func:`raw_scores`); Eq. 10 turns it
into ``A = sigmoid((raw - mu) / sigma)`` with ``mu``, ``sigma`` from normal validation crops, and a
crop is anomalous when ``raw > mu + k sigma`` (equivalently ``A > sigmoid(k)``). When the
validation set has labelled anomalies, the threshold that maximises F1 there is kept as well.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.functional.classification import binary_auroc

from railwatch.config import FastenerTrainConfig
from railwatch.errors import InputError
from railwatch.fasteners.fanogan import FAnoGAN
from railwatch.fasteners.ganomaly import GANomaly
from railwatch.fasteners.memae import MemAE
from railwatch.fasteners.model import KDGAN, KDGANOutput

ScoreSource = Literal["discriminator", "reconstruction", "ssim", "distillation", "latent", "izif"]
SCORE_SOURCES: tuple[str, ...] = ("discriminator", "reconstruction", "ssim", "distillation")

SSIM_SIGMA = 1.5
"""Standard deviation of SSIM's Gaussian window in pixels (Wang et al. 2004; 11 taps)."""
SSIM_REGION = 16
"""Side of the square regions whose mean dissimilarity the ``ssim`` score takes the largest of."""

BASELINE_SCORES: dict[str, str] = {"ganomaly": "latent", "memae": "reconstruction", "f-anogan": "izif"}
"""The one score of each baseline, as its own paper defines it (KD-GAN has the four of :data:`SCORE_SOURCES`)."""


def build_detector(cfg: FastenerTrainConfig) -> nn.Module:
    """The network ``cfg.model`` with ``cfg.arch``, randomly initialised."""
    if cfg.model == "ganomaly":
        return GANomaly(cfg.arch.image_size)
    if cfg.model == "memae":
        return MemAE(cfg.arch.image_size)
    if cfg.model == "f-anogan":
        return FAnoGAN(cfg.arch.image_size)
    return KDGAN(cfg.arch)


def reconstruction_error(reconstruction: Tensor, x: Tensor) -> Tensor:
    """``(N,)`` mean squared difference between crops and their reconstructions."""
    return (reconstruction.float() - x.float()).pow(2).flatten(1).mean(1)


def _gaussian_window(sigma: float = SSIM_SIGMA) -> Tensor:
    radius = int(3.5 * sigma + 0.5)  # torchmetrics' kernel size for a given sigma: 11 taps at 1.5
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float64) / sigma) ** 2)
    taps /= taps.sum()
    return torch.outer(taps, taps).float()[None, None]


_SSIM_WINDOW = _gaussian_window()


def ssim_map(a: Tensor, b: Tensor) -> Tensor:
    """Per-pixel SSIM (Wang et al. 2004, Eq. 13) of grey images ``(N, 1, H, W)`` with values in ``[0, 1]``.

    Local means, variances and covariance under a Gaussian window (sigma 1.5, 11 taps), reflect
    padding, ``C1 = 0.01^2``, ``C2 = 0.03^2``: the map torchmetrics'
    ``structural_similarity_index_measure(..., return_full_image=True)`` returns (a test checks
    that). Written out because torchmetrics builds its window inside the call, which the ONNX
    exporter cannot trace as the constant kernel of a convolution, and the scoring path exports.
    """
    window = _SSIM_WINDOW.to(a.device, torch.float32)
    pad = window.shape[-1] // 2
    a, b = (F.pad(t.float(), (pad, pad, pad, pad), mode="reflect") for t in (a, b))
    n = a.shape[0]
    # float32 even under mixed precision: the variances are differences of nearly equal moments
    with torch.autocast(a.device.type, enabled=False):
        moments = F.conv2d(torch.cat([a, b, a * a, b * b, a * b]), window)
    mu_a, mu_b, aa, bb, ab = moments.split(n)
    var_a, var_b = (aa - mu_a**2).clamp_min(0), (bb - mu_b**2).clamp_min(0)
    cov = ab - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    return (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def structural_dissimilarity(reconstruction: Tensor, x: Tensor, region: int = SSIM_REGION) -> Tensor:
    """``(N,)`` the largest mean ``1 - SSIM`` over ``region x region`` squares (half-overlapping) of the crop.

    Bergmann et al. (2019) score autoencoders by SSIM instead of the squared error: it compares
    local structure whatever the brightness and contrast, so a stroke or part that is missing
    counts as much as extra ink, where a squared error grows with the ink drawn (a crop with less
    ink comes back with less error). Taking the worst region keeps a small defect from being
    averaged away over the crop.
    """
    dissimilarity = 1 - ssim_map(reconstruction, x)
    return F.avg_pool2d(dissimilarity, region, region // 2).flatten(1).amax(1)


def distillation_discrepancy(out: KDGANOutput) -> Tensor:
    """``(N,)`` Eq. 13 per crop: each generator level's mean squared teacher-student difference, summed."""
    return sum((t.float() - s.float()).pow(2).flatten(1).mean(1) for t, s in zip(out.teacher_features, out.student_features))


def raw_scores(net: nn.Module, x: Tensor, source: ScoreSource = "discriminator") -> Tensor:
    """``(N,)`` raw anomaly scores of crops ``x`` ``(N, 1, S, S)`` in ``[0, 1]``; larger is more anomalous.

    KD-GAN: ``-D(G_s(E(I)))`` (Eq. 10's discriminator output as a "fake" logit), the student's
    mean squared reconstruction error, its structural dissimilarity to the crop
    (:func:`structural_dissimilarity`), or the distillation discrepancy of Eq. 13 between the
    teacher's and the student's generator features (each level's mean square, summed).
    GANomaly: its latent distance (``latent``), whatever ``source`` says; MemAE: its squared
    reconstruction error (``reconstruction``), likewise; f-AnoGAN: its izi_f residual (``izif``).
    """
    if isinstance(net, (GANomaly, FAnoGAN)):
        return net.anomaly_score(x)
    if isinstance(net, MemAE):
        return reconstruction_error(net.reconstruct(x), x)
    if source == "distillation":
        return distillation_discrepancy(net(x))
    reconstruction = net.reconstruct(x)
    if source == "reconstruction":
        return reconstruction_error(reconstruction, x)
    if source == "ssim":
        return structural_dissimilarity(reconstruction, x)
    return -net.discriminator(reconstruction).float()


def kdgan_scores(net: KDGAN, x: Tensor) -> dict[str, Tensor]:
    """Every KD-GAN raw score of :func:`raw_scores` from one forward pass (for validation)."""
    out = net(x)
    return {
        "discriminator": -net.discriminator(out.student).float(),
        "reconstruction": reconstruction_error(out.student, x),
        "ssim": structural_dissimilarity(out.student, x),
        "distillation": distillation_discrepancy(out),
    }


class ScoringPath(nn.Module):
    """Crops -> ``(A, raw)``: Eq. 10 with the normal statistics built in, the module exported to ONNX."""

    def __init__(self, net: nn.Module, source: ScoreSource, mu: float, sigma: float) -> None:
        super().__init__()
        self.net, self.source = net, source
        self.register_buffer("mu", torch.tensor(float(mu)))
        self.register_buffer("sigma", torch.tensor(float(sigma)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raw = raw_scores(self.net, x, self.source)
        return torch.sigmoid((raw - self.mu) / self.sigma), raw


@dataclass(frozen=True)
class ScoreStats:
    """Normal statistics and thresholds of one trained detector; saved with its checkpoint.

    Attributes:
        source: What the raw score measures (see :func:`raw_scores`).
        mu: Mean raw score of the normal validation crops (Eq. 10).
        sigma: Their standard deviation (floored at 1e-6).
        k: The threshold is ``mu + k sigma`` (section 2.3).
        f1_threshold: Raw threshold with the best F1 on labelled validation crops, if there were any.
    """

    source: str
    mu: float
    sigma: float
    k: float
    f1_threshold: float | None = None

    @property
    def threshold(self) -> float:
        """``mu + k sigma`` on raw scores."""
        return self.mu + self.k * self.sigma

    def decision_threshold(self, rule: Literal["sigma", "f1"] = "sigma") -> float:
        """The raw threshold of ``rule``: ``mu + k sigma``, or the best-F1 one (when known)."""
        if rule == "f1":
            if self.f1_threshold is None:
                raise InputError("no best-F1 threshold: the validation crops had no anomalies; use the mu + k sigma rule")
            return self.f1_threshold
        return self.threshold

    def normalise(self, raw: np.ndarray) -> np.ndarray:
        """Eq. 10: ``A = sigmoid((raw - mu) / sigma)``."""
        return 1.0 / (1.0 + np.exp(-(np.asarray(raw, dtype=np.float64) - self.mu) / self.sigma))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ScoreStats:
        return cls(**data)


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The raw threshold (``score > t`` is anomalous) with the highest F1; midway between neighbouring scores."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(bool)
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    f1 = 2 * tp / (tp + fp + y.sum())  # flagging the top i+1 scores
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # only cut between distinct scores
    i = last[np.argmax(f1[last])]
    return float((s[i] + s[i + 1]) / 2) if i + 1 < len(s) else float(s[i] - 1e-6)


def calibrate(
    normal_raw: np.ndarray, k: float, source: str, val_raw: np.ndarray | None = None, val_labels: np.ndarray | None = None
) -> ScoreStats:
    """``mu``, ``sigma`` from normal validation scores; the best-F1 threshold when labelled anomalies are given."""
    normal_raw = np.asarray(normal_raw, dtype=np.float64)
    if normal_raw.size < 2:
        raise InputError("need at least two normal validation crops to estimate mu and sigma (Eq. 10)")
    f1_t = None
    if val_raw is not None and val_labels is not None and np.any(val_labels == 1) and np.any(val_labels == 0):
        f1_t = best_f1_threshold(np.asarray(val_raw, dtype=np.float64), np.asarray(val_labels))
    return ScoreStats(source, float(normal_raw.mean()), max(float(normal_raw.std()), 1e-6), float(k), f1_t)


@dataclass(frozen=True)
class DetectionScores:
    """Eq. 18-20 and AUC on one labelled set, at one threshold."""

    auc: float
    acc: float
    precision: float
    recall: float
    f1: float
    threshold: float
    normal: int
    anomalous: int

    def to_dict(self) -> dict:
        return asdict(self)


def detection_scores(scores: np.ndarray, labels: np.ndarray, threshold: float) -> DetectionScores:
    """AUC (threshold-free) and ACC, precision, recall, F1 of ``score > threshold`` (anomaly is positive)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if not (np.any(labels == 1) and np.any(labels == 0)):
        raise InputError("scoring needs both normal and anomalous crops")
    auc = float(binary_auroc(torch.from_numpy(scores), torch.from_numpy(labels)))
    pred = scores > threshold
    truth = labels == 1
    tp, fp = int(np.sum(pred & truth)), int(np.sum(pred & ~truth))
    fn, tn = int(np.sum(~pred & truth)), int(np.sum(~pred & ~truth))
    return DetectionScores(
        auc=auc,
        acc=(tp + tn) / len(labels),
        precision=tp / max(1, tp + fp),
        recall=tp / max(1, tp + fn),
        f1=2 * tp / max(1, 2 * tp + fp + fn),
        threshold=float(threshold),
        normal=int(np.sum(~truth)),
        anomalous=int(np.sum(truth)),
    )
