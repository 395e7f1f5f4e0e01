"""The paper's figures for an FFI model: condition spectra (Figs. 7-10) and LIME bands (Figs. 12-15, 17-18)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from railwatch.vibration.lime import BandContributions

POSITIVE, NEGATIVE = "#d62728", "#2ca02c"  # the paper's colours: red raises the FFI, green lowers it


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def channel_names(reads: str, channels: int) -> list[str]:
    """``SP-A``.. for DAS sensing points, ``x, y, z`` for an accelerometer's axes."""
    if reads == "das":
        return [f"SP-{chr(ord('A') + i)}" for i in range(channels)]
    return ["x (longitudinal)", "y (lateral)", "z (vertical)"][:channels]


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def lime_bars_figure(contrib: BandContributions, ffi: Sequence[int], names: Sequence[str], path: str | Path, top: int = 12) -> Path:
    """One panel per event: its ``top`` (channel, band) features ordered by |contribution|, red up, green down."""
    plt = _pyplot()
    n = len(ffi)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 4.2), squeeze=False)
    for ax, values, level in zip(axes[0], contrib.values, ffi):
        flat = values.ravel()
        order = np.argsort(-np.abs(flat))[:top][::-1]
        labels = [f"{names[i // values.shape[1]]} {contrib.edges[i % values.shape[1], 0]:.0f}-{contrib.edges[i % values.shape[1], 1]:.0f} Hz" for i in order]
        ax.barh(range(len(order)), flat[order], color=[POSITIVE if flat[i] > 0 else NEGATIVE for i in order])
        ax.set_yticks(range(len(order)), labels, fontsize=7)
        ax.axvline(0, color="k", lw=0.6)
        ax.set_title(f"FFI = {level}", fontsize=10)
        ax.set_xlabel("contribution to FFI")
    fig.tight_layout()
    return _save(fig, Path(path))


def lime_spectra_figure(
    spectra: np.ndarray, contrib: BandContributions, freqs: np.ndarray, ffi: Sequence[int], names: Sequence[str], path: str | Path
) -> Path:
    """Per event, each channel's spectrum (stacked) with its bands shaded by contribution (red up, green down)."""
    plt = _pyplot()
    n = len(ffi)
    fig, axes = plt.subplots(1, n, figsize=(3.8 * n, 1.0 + 0.75 * spectra.shape[1]), squeeze=False, sharey=True)
    step = freqs[1] - freqs[0]
    for ax, event, values, level in zip(axes[0], spectra, contrib.values, ffi):
        scale = np.abs(values).max() or 1.0
        for c, (spectrum, row) in enumerate(zip(event, values)):
            base = len(event) - 1 - c
            for b, v in enumerate(row):
                low, high = contrib.edges[b, 0] - step / 2, contrib.edges[b, 1] + step / 2
                ax.fill_between([low, high], base, base + 1, color=POSITIVE if v > 0 else NEGATIVE, alpha=0.6 * abs(v) / scale, lw=0)
            ax.plot(freqs, base + 0.9 * spectrum / max(spectrum.max(), 1e-12), color="k", lw=0.7)
        ax.set_yticks(np.arange(len(event)) + 0.5, list(names)[::-1], fontsize=7)
        ax.set_xlabel("frequency (Hz)")
        ax.set_title(f"FFI = {level}", fontsize=10)
        ax.set_xlim(freqs[0], freqs[-1])
    fig.tight_layout()
    return _save(fig, Path(path))


def condition_spectra_figure(spectra: np.ndarray, ffi: np.ndarray, freqs: np.ndarray, names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """Mean spectrum per FFI for each channel (the paper's Figs. 7-10)."""
    plt = _pyplot()
    channels = spectra.shape[1]
    fig, axes = plt.subplots(1, channels, figsize=(3.2 * channels, 2.8), squeeze=False, sharey=True)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, int(ffi.max()) + 1))
    for c, ax in enumerate(axes[0]):
        for level in np.unique(ffi):
            ax.plot(freqs, spectra[ffi == level, c].mean(axis=0), color=colours[level], lw=1, label=f"FFI {level}")
        ax.set_title(names[c], fontsize=9)
        ax.set_xlabel("frequency (Hz)")
    axes[0, 0].set_ylabel("normalised |X(f)|")
    axes[0, -1].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))
