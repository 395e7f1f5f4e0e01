"""Segment-LIME over frequency bands (paper 001, "Interpretable mechanisms"; DESIGN.md).

"This technique divides the input signal into segments of equal length, with each segment's
response considered as a feature": each channel's spectrum is cut into K equal bands, and each
(channel, band) is one interpretable feature. Captum's :class:`~captum.attr.Lime` does the rest as
the paper describes: perturbed samples switch features off (to the zero baseline), are weighted by
an exponential kernel on the cosine distance to the original, and a weighted linear model is fit to
the predictions; its coefficients are the contributions (positive: raises the predicted FFI).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from captum._utils.models.linear_model import SkLearnLinearRegression
from captum.attr import Lime
from captum.attr._core.lime import get_exp_kernel_similarity_function
from torch import nn

from railwatch.config import LimeConfig
from railwatch.vibration.model import MAX_FFI


def band_of_bin(bins: int, bands: int) -> np.ndarray:
    """Band index (0..bands-1) of each spectrum bin: K segments of ``bins // bands`` bins, the last takes the rest.

    With 101 bins of 5 Hz (0-500 Hz) and 25 bands, band 5 holds 100, 105, 110 and 115 Hz.
    """
    if bins < bands:
        raise ValueError(f"{bins} spectrum bins cannot make {bands} bands")
    return np.minimum(np.arange(bins) // (bins // bands), bands - 1)


def band_feature_mask(channels: int, bins: int, bands: int) -> torch.Tensor:
    """``(1, channels, bins)`` feature ids for captum: ``channel * bands + band``."""
    ids = np.arange(channels)[:, None] * bands + band_of_bin(bins, bands)[None, :]
    return torch.from_numpy(ids).long().unsqueeze(0)


def band_edges(freqs: np.ndarray, bands: int) -> np.ndarray:
    """``(bands, 2)`` lowest and highest bin frequency (Hz) of each band."""
    index = band_of_bin(len(freqs), bands)
    return np.array([[freqs[index == b].min(), freqs[index == b].max()] for b in range(bands)])


@dataclass
class BandContributions:
    """LIME coefficients ``(events, channels, bands)`` (FFI units) and the bands' frequency edges."""

    values: np.ndarray
    edges: np.ndarray

    def share(self, low_hz: float, high_hz: float) -> np.ndarray:
        """Per event, the fraction of total |contribution| in bands lying within [low_hz, high_hz]."""
        inside = (self.edges[:, 0] >= low_hz - 1e-9) & (self.edges[:, 1] <= high_hz + 1e-9)
        magnitude = np.abs(self.values)
        return magnitude[:, :, inside].sum(axis=(1, 2)) / np.maximum(magnitude.sum(axis=(1, 2)), 1e-12)


def explain_bands(net: nn.Module, spectra: np.ndarray, freqs: np.ndarray, cfg: LimeConfig | None = None) -> BandContributions:
    """Segment-LIME contributions of every (channel, band) to each event's predicted FFI.

    ``net`` maps ``(B, channels, bins)`` to FFI/3 (an :class:`FFIRegressor`, or any such module);
    contributions are scaled to FFI units. Deterministic for ``cfg.seed``.
    """
    cfg = cfg or LimeConfig()
    net = net.eval().cpu()
    channels, bins = spectra.shape[1:]
    mask = band_feature_mask(channels, bins, cfg.bands)
    lime = Lime(
        lambda x: net(x) * MAX_FFI,
        interpretable_model=SkLearnLinearRegression(),
        similarity_func=get_exp_kernel_similarity_function("cosine", cfg.kernel_width),
    )
    out = np.zeros((len(spectra), channels, cfg.bands), dtype=np.float32)
    with torch.no_grad():
        for i, event in enumerate(spectra):
            torch.manual_seed(cfg.seed + i)
            coefs = lime.attribute(
                torch.from_numpy(np.ascontiguousarray(event[None])), baselines=0.0, feature_mask=mask,
                n_samples=cfg.samples, perturbations_per_eval=min(cfg.samples, 200), return_input_shape=False,
            )  # fmt: skip
            out[i] = coefs.reshape(channels, cfg.bands).numpy()
    return BandContributions(out, band_edges(freqs, cfg.bands))
