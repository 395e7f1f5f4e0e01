"""Segment-LIME over frequency bands: band layout, a planted informative band recovered, shares, figures."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from railwatch.config import LimeConfig
from railwatch.vibration.lime import band_edges, band_feature_mask, band_of_bin, explain_bands

FREQS = np.arange(101) * 5.0


def test_bands_are_equal_segments_and_the_last_takes_the_rest():
    index = band_of_bin(101, 25)
    assert np.bincount(index).tolist() == [4] * 24 + [5]
    assert band_edges(FREQS, 25)[5].tolist() == [100.0, 115.0]
    mask = band_feature_mask(2, 101, 25)
    assert mask.shape == (1, 2, 101) and mask[0, 1, 20].item() == 25 + 5


class PlantedBand(nn.Module):
    """FFI/3 rises with channel 1's energy in bins 20-23 (100-115 Hz) and falls with channel 0's 250 Hz bin."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x[:, 1, 20:24].sum(1) - 0.5 * x[:, 0, 50:52].sum(1) - 1.0)


def test_lime_recovers_the_planted_band_and_its_sign():
    spectra = np.random.default_rng(0).random((3, 4, 101)).astype(np.float32) + 0.1
    contrib = explain_bands(PlantedBand(), spectra, FREQS, LimeConfig(samples=300))
    assert contrib.values.shape == (3, 4, 25)
    for event in contrib.values:
        ranked = np.argsort(-np.abs(event.ravel()))
        assert divmod(int(ranked[0]), 25) == (1, 5)  # channel 1, 100-115 Hz
        assert divmod(int(ranked[1]), 25) == (0, 12)  # channel 0, 240-255 Hz
        assert event[1, 5] > 0 > event[0, 12]
    assert np.all(contrib.share(100, 120) > 0.5)
    again = explain_bands(PlantedBand(), spectra, FREQS, LimeConfig(samples=300))
    np.testing.assert_array_equal(contrib.values, again.values)


def test_figures_are_written(tmp_path):
    from railwatch.vibration.figures import channel_names, condition_spectra_figure, lime_bars_figure, lime_spectra_figure

    spectra = np.random.default_rng(1).random((2, 6, 101)).astype(np.float32)
    contrib = explain_bands(PlantedBand(), spectra[:, :4], FREQS, LimeConfig(samples=50))
    names = channel_names("das", 4)
    assert names[0] == "SP-A"
    for path in (
        lime_bars_figure(contrib, [0, 3], names, tmp_path / "bars.png"),
        lime_spectra_figure(spectra[:, :4], contrib, FREQS, [0, 3], names, tmp_path / "spectra.png"),
        condition_spectra_figure(spectra, np.array([0, 1]), FREQS, channel_names("das", 6), tmp_path / "cond.png"),
    ):
        assert path.stat().st_size > 5000
