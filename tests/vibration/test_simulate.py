"""The hammer-test simulator: rail modes, the paper's spectral peaks, sensors, sites, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from railwatch.errors import InputError
from railwatch.vibration.simulate import (
    CONDITIONS,
    PLANES,
    SITES,
    HammerConfig,
    condition_ffi,
    rail_modes,
    simulate_event,
    simulate_hammer_tests,
)
from railwatch.vibration.spectra import event_spectra, frequency_grid, impact_index, magnitude_spectrum

FREQS = frequency_grid()
NEAREST = 2  # accelerometer #3, nearest the hammer
X, Y, Z = 0, 1, 2


@pytest.fixture(scope="module")
def training():
    return simulate_hammer_tests(repeats=8, seed=3)


@pytest.fixture(scope="module")
def other():
    return simulate_hammer_tests(site="other", repeats=8, seed=3)


def mean_spectra(records: np.ndarray, dataset, condition: int) -> np.ndarray:
    """Condition-averaged spectra, ``(channels, bins)``."""
    return event_spectra(records[dataset.condition == condition], dataset.fs).mean(axis=0)


def accel_peak(dataset, condition: int, axis: int) -> float:
    return band_peak(mean_spectra(dataset.accel[:, NEAREST], dataset, condition)[axis])


def das_spectrum(dataset, condition: int) -> np.ndarray:
    """Spectrum averaged over the condition's events and the six sensing points."""
    return mean_spectra(dataset.das, dataset, condition).mean(axis=0)


def band(spectrum: np.ndarray, low: float, high: float) -> np.ndarray:
    return spectrum[(FREQS >= low) & (FREQS <= high)]


def band_peak(spectrum: np.ndarray, low: float = 0.0, high: float = 500.0) -> float:
    """Frequency of the largest bin between ``low`` and ``high`` Hz."""
    inside = (FREQS >= low) & (FREQS <= high)
    return float(FREQS[inside][np.argmax(spectrum[inside])])


def test_conditions_count_loose_clips():
    assert [condition_ffi(c) for c in CONDITIONS] == [0, 1, 1, 2, 2, 3]
    assert CONDITIONS[6] == ("a", "b", "c")
    with pytest.raises(InputError, match="unknown condition 7"):
        condition_ffi(7)


def test_tight_first_modes_match_the_paper():
    config = HammerConfig()
    vertical, lateral = rail_modes(config, 1, "vertical"), rail_modes(config, 1, "lateral")
    assert 255 < vertical[0] < 275 and 105 < lateral[0] < 120
    assert np.all(np.diff(vertical) >= 0) and vertical[-1] < 1.5 * config.fs / 2
    with pytest.raises(InputError, match="unknown plane"):
        rail_modes(config, 1, "longitudinal")


@pytest.mark.parametrize("plane", PLANES)
def test_every_loose_clip_lowers_the_first_mode(plane):
    config = HammerConfig()
    first = {c: rail_modes(config, c, plane)[0] for c in CONDITIONS}
    assert first[1] > first[2] > first[4] > first[6]
    assert first[1] > first[3] > first[4] and first[2] > first[5] > first[6]


def test_a_loose_factor_of_one_changes_nothing():
    config = HammerConfig(loose_factor_vertical=1.0, loose_factor_lateral=1.0)
    np.testing.assert_allclose(rail_modes(config, 6, "vertical"), rail_modes(config, 1, "vertical"))


def test_accelerometer_peaks_match_section_experimental_results(training):
    """265 / 112 Hz with every clip tight, 230 / 102 Hz with three loose clips, the others in between."""
    vertical = {c: accel_peak(training, c, Z) for c in CONDITIONS}
    lateral = {c: accel_peak(training, c, Y) for c in CONDITIONS}
    assert abs(vertical[1] - 265) <= 10 and abs(vertical[6] - 230) <= 12, vertical
    assert abs(lateral[1] - 112) <= 6 and abs(lateral[6] - 102) <= 6, lateral
    for peaks in (vertical, lateral):
        assert all(peaks[6] <= peaks[c] <= peaks[1] for c in (2, 3, 4, 5)), peaks
        by_ffi = [np.mean([peaks[c] for c in CONDITIONS if condition_ffi(c) == k]) for k in range(4)]
        assert np.all(np.diff(by_ffi) < 0), peaks


def test_shapes_dtypes_and_order(training):
    assert len(training) == 48
    assert training.accel.shape == (48, 5, 3, 1200) and training.accel.dtype == np.float32
    assert training.das.shape == (48, 6, 1200) and training.das.dtype == np.float32
    assert training.ffi.dtype == np.int64 and training.condition.dtype == np.int64
    np.testing.assert_array_equal(training.condition, np.repeat(np.arange(1, 7), 8))
    np.testing.assert_array_equal(training.ffi, np.repeat([0, 1, 1, 2, 2, 3], 8))
    assert training.fs == 2000.0 and training.site == "training"
    loose = training.subset(training.condition == 6)
    assert len(loose) == 8 and set(loose.ffi) == {3} and loose.accel.shape[0] == 8


def test_the_impact_is_where_the_spectra_look_for_it(training, other):
    """The window of ``event_spectra`` starts at the blow (in the pre-trigger), not at a noise burst."""
    for dataset in (training, other):
        for records in (dataset.accel, dataset.das):
            starts = np.array([impact_index(event) for event in records])
            assert starts.max() < 0.065 * dataset.fs, dataset.site


def test_a_seed_gives_the_same_events_and_another_seed_others():
    first = simulate_hammer_tests(repeats=2, seed=5, conditions=(1, 6))
    again = simulate_hammer_tests(repeats=2, seed=5, conditions=(1, 6))
    np.testing.assert_array_equal(first.accel, again.accel)
    np.testing.assert_array_equal(first.das, again.das)
    assert not np.allclose(simulate_hammer_tests(repeats=2, seed=6, conditions=(1, 6)).das, first.das)
    single = simulate_hammer_tests(repeats=1, seed=5, conditions=(6,))
    np.testing.assert_array_equal(single.das[0], first.das[2])


def test_das_coupling_peak_is_the_largest_and_moves_with_loose_clips_at_the_training_site(training):
    """The paper's strong ~50 Hz DAS peak; at the training site it follows the loose clips (a site artefact)."""
    peaks = {c: band_peak(das_spectrum(training, c)) for c in CONDITIONS}
    assert all(40 <= f <= 70 for f in peaks.values()), peaks
    assert 45 <= peaks[1] <= 55 and peaks[6] >= peaks[1] + 10, peaks


def test_das_lateral_peak_is_weak_and_vertical_band_buried(training):
    """A visible 100-110 Hz peak with three loose clips; the 230-265 Hz region no higher than the noise."""
    loose, tight = das_spectrum(training, 6), das_spectrum(training, 1)
    assert band(loose, 95, 110).max() > 2 * np.median(band(loose, 150, 300))
    assert band(loose, 95, 110).max() < band(loose, 40, 70).max()

    def prominence(spectrum: np.ndarray) -> float:  # the vertical mode's band over the 350-500 Hz level
        return float(band(spectrum, 220, 270).max() / np.median(band(spectrum, 350, 500)))

    assert prominence(tight) < 1.6
    assert prominence(mean_spectra(training.accel[:, NEAREST], training, 1)[Z]) > 2 * prominence(tight)


def test_das_is_much_noisier_than_the_accelerometers(training):
    """As the paper's Figure 6: after the response has decayed, DAS noise is far above the accelerometers'."""

    def noise_floor(records: np.ndarray) -> float:  # median spectrum of the last 0.2 s over the event's peak spectrum
        n = round(0.2 * training.fs)
        quiet = magnitude_spectrum(records[..., -n:], training.fs).reshape(len(records), -1)
        peak = event_spectra(records, training.fs, normalise=False).reshape(len(records), -1).max(axis=1)
        return float(np.mean(np.median(quiet, axis=1) / peak))

    assert noise_floor(training.das) > 20 * noise_floor(training.accel)

    def tail(records: np.ndarray) -> float:  # std of the last 0.1 s, relative to each event's peak
        peak = np.abs(records).reshape(len(records), -1).max(axis=1)
        return float(np.mean(records[..., -200:].reshape(len(records), -1).std(axis=1) / peak))

    assert tail(training.accel) == pytest.approx(SITES["training"].accel_noise, rel=0.3)
    assert tail(training.das) > 30 * tail(training.accel)


def test_the_other_site_differs(training, other):
    """Another coupling resonance (~70 Hz) that does not follow the clips, and stronger hum and noise."""
    assert other.site == "other"
    for dataset, hump in ((training, False), (other, True)):
        spectrum = das_spectrum(dataset, 1)
        at = {f: spectrum[FREQS == f][0] for f in (70, 90)}
        assert (at[70] > 1.3 * at[90]) == hump, dataset.site
    assert band_peak(das_spectrum(other, 1), 40, 70) == band_peak(das_spectrum(other, 6), 40, 70) == 50.0
    for condition in (1, 6):  # the rail is the same: the accelerometers see the same modes
        assert accel_peak(other, condition, Z) == accel_peak(training, condition, Z)


def test_settings_are_checked():
    with pytest.raises(ValidationError, match="damping"):
        HammerConfig(damping=(0.05, 0.02))
    with pytest.raises(ValidationError, match="accelerometer"):
        HammerConfig(accel_positions=(5.0,))
    site = SITES["training"].model_copy(update={"gauge_length": 4.0})
    with pytest.raises(InputError, match="runs off"):
        simulate_event(HammerConfig(), site, 1, np.random.default_rng(0))
    with pytest.raises(InputError, match="unknown site"):
        simulate_hammer_tests(site="nowhere", repeats=1)
