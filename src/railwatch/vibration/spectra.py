"""The model input of paper 001: the magnitude spectrum of the free vibration after an impact.

"The time period of rapid decay of the response ... was extracted for subsequent response
analysis, that is, the first 0.2 s" (section "Experimental results"), and "the frequency spectrum
sequence of the free vibration response is considered more suitable as the model input". The
window starts at the impact, found as the peak of the response energy summed over channels. Bins
are spaced 1/window (5 Hz for 0.2 s) whatever the sampling rate, so records at different rates
give the same grid; bins above a record's Nyquist frequency are zero and reported.
"""

from __future__ import annotations

import numpy as np

from railwatch.errors import InputError

WINDOW_S = 0.2
MAX_FREQ_HZ = 500.0


def frequency_grid(window_s: float = WINDOW_S, max_freq: float = MAX_FREQ_HZ) -> np.ndarray:
    """Bin centres in Hz, 0 to ``max_freq`` inclusive, spaced 1/``window_s``."""
    step = 1.0 / window_s
    return np.arange(int(np.floor(max_freq / step + 1e-9)) + 1) * step


def check_finite(signal: np.ndarray, source: str) -> None:
    """Raise a one-line :class:`InputError` naming ``source`` if the signal holds NaN or infinity."""
    bad = ~np.isfinite(signal)
    if bad.any():
        index = np.unravel_index(int(np.argmax(bad)), signal.shape)
        raise InputError(f"{source}: signal holds NaN or infinity (first at index {tuple(int(i) for i in index)})")


def impact_index(signal: np.ndarray) -> int:
    """Sample of the impact in a ``(channels, samples)`` record: the peak of the energy over channels."""
    energy = np.square(signal.reshape(-1, signal.shape[-1]).astype(np.float64)).sum(axis=0)
    return int(np.argmax(energy))


def free_vibration_window(
    signal: np.ndarray, fs: float, window_s: float = WINDOW_S, start: int | None = None, source: str = "signal"
) -> np.ndarray:
    """The ``window_s`` seconds from the impact (or ``start``) of a ``(..., samples)`` record."""
    check_finite(signal, source)
    n = int(round(window_s * fs))
    if n < 4:
        raise InputError(f"{source}: a {window_s} s window at {fs:g} Hz holds only {n} samples")
    start = impact_index(signal) if start is None else int(start)
    if start + n > signal.shape[-1]:
        raise InputError(
            f"{source}: too short: {signal.shape[-1] - start} samples after the impact at sample {start}, "
            f"a {window_s} s window needs {n} at {fs:g} Hz"
        )
    return signal[..., start : start + n]


def magnitude_spectrum(window: np.ndarray, fs: float, max_freq: float = MAX_FREQ_HZ) -> np.ndarray:
    """|rfft| of a ``(..., n)`` window on :func:`frequency_grid` (zero above Nyquist), scaled by 2/n."""
    n = window.shape[-1]
    grid = frequency_grid(n / fs, max_freq)
    mag = np.abs(np.fft.rfft(window - window.mean(axis=-1, keepdims=True), axis=-1)) * (2.0 / n)
    out = np.zeros(window.shape[:-1] + (grid.size,), dtype=np.float32)
    keep = min(grid.size, mag.shape[-1])
    out[..., :keep] = mag[..., :keep]
    return out


def normalise_peak(spectra: np.ndarray) -> np.ndarray:
    """Divide each event's ``(channels, bins)`` spectra by their largest value.

    The amplitude of a hammer response follows the blow, not the fasteners ("the amplitude of the
    time-domain response typically varies with the excitation source"), so only the shape is kept.
    """
    peak = spectra.reshape(spectra.shape[0], -1).max(axis=1).reshape((-1,) + (1,) * (spectra.ndim - 1))
    return (spectra / np.maximum(peak, 1e-30)).astype(np.float32)


def event_spectra(
    records: np.ndarray,
    fs: float,
    window_s: float = WINDOW_S,
    max_freq: float = MAX_FREQ_HZ,
    normalise: bool = True,
    source: str = "records",
) -> np.ndarray:
    """``(events, channels, bins)`` spectra of ``(events, ..., samples)`` records, one window per event.

    Extra axes between events and samples (an accelerometer's 3 axes, or 5 sensors x 3 axes) are
    flattened into channels. The impact is found per event across all its channels.
    """
    records = np.asarray(records)
    if records.ndim < 2:
        raise InputError(f"{source}: expected (events, channels, samples), got shape {records.shape}")
    flat = records.reshape(records.shape[0], -1, records.shape[-1])
    out = np.stack(
        [magnitude_spectrum(free_vibration_window(e, fs, window_s, source=f"{source}[{i}]"), fs, max_freq) for i, e in enumerate(flat)]
    )
    return normalise_peak(out) if normalise else out
