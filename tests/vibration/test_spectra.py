"""The model input: the first 0.2 s after the impact, as a magnitude spectrum per channel."""

from __future__ import annotations

import numpy as np
import pytest

from railwatch.errors import InputError
from railwatch.vibration.data import spectra_set
from railwatch.vibration.simulate import simulate_hammer_tests
from railwatch.vibration.spectra import event_spectra, free_vibration_window, frequency_grid, magnitude_spectrum

FS = 2000.0


def ring(freq: float, samples: int = 1200, start: int = 100, fs: float = FS) -> np.ndarray:
    t = np.arange(samples - start) / fs
    out = np.zeros(samples)
    out[start:] = np.exp(-8 * t) * np.sin(2 * np.pi * freq * t)
    return out


def test_grid_is_five_hertz_to_500():
    grid = frequency_grid()
    assert grid[0] == 0 and grid[1] == 5.0 and grid[-1] == 500.0 and len(grid) == 101


def test_window_starts_at_the_impact_and_lasts_0_2_s():
    x = ring(265.0)[None]
    window = free_vibration_window(x, FS)
    assert window.shape == (1, 400)
    assert np.argmax(np.abs(window[0])) < 10  # the blow is at the start of the window


def test_spectrum_peaks_at_the_ringing_frequency_and_is_peak_normalised():
    records = np.stack([np.stack([ring(265.0), ring(112.0) * 0.3]), np.stack([ring(230.0) * 5, ring(102.0)])])
    spectra = event_spectra(records, FS)
    grid = frequency_grid()
    assert spectra.shape == (2, 2, 101) and spectra.dtype == np.float32
    assert grid[spectra[0, 0].argmax()] == 265 and grid[spectra[0, 1].argmax()] in (110, 115)
    assert grid[spectra[1, 0].argmax()] == 230 and grid[spectra[1, 1].argmax()] in (100, 105)
    assert spectra.reshape(2, -1).max(axis=1) == pytest.approx([1.0, 1.0])


def test_bins_above_nyquist_are_zero():
    fs = 600.0
    window = ring(120.0, samples=300, start=0, fs=fs)[None, :120]
    spectrum = magnitude_spectrum(window, fs)
    grid = frequency_grid()
    assert spectrum.shape == (1, 101) and np.all(spectrum[0, grid > fs / 2] == 0)
    assert grid[spectrum[0].argmax()] == 120


def test_nan_and_short_records_name_the_source():
    x = ring(100.0)[None, None].repeat(2, axis=0)
    x[1, 0, 500] = np.nan
    with pytest.raises(InputError, match=r"shot\.h5\[1\]: signal holds NaN or infinity \(first at index \(0, 500\)\)"):
        event_spectra(x, FS, source="shot.h5")
    late = np.zeros((1, 1, 500))
    late[0, 0, 300] = 1.0
    with pytest.raises(InputError, match=r"too short: 200 samples after the impact at sample 300, a 0.2 s window needs 400"):
        event_spectra(late, FS)


def test_spectra_of_simulated_tests_have_the_model_shapes():
    data = spectra_set(simulate_hammer_tests(repeats=1, seed=3))
    assert data.accel.shape == (6, 3, 101) and data.das.shape == (6, 6, 101)
    assert data.ffi.tolist() == [0, 1, 1, 2, 2, 3]
    assert data.inputs("transfer") is data.das
