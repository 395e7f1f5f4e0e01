"""A trained FFI regressor ready to score: from a checkpoint to FFI per event."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import ValidationError

from railwatch.checkpoint import load_checkpoint
from railwatch.config import MonitorSettings, VibrationModelConfig
from railwatch.errors import InputError
from railwatch.vibration.data import modality_records
from railwatch.vibration.model import MAX_FFI, FFIRegressor
from railwatch.vibration.spectra import event_spectra, frequency_grid, normalise_peak
from railwatch.vibration.train import TASK, predict_scaled
from railwatch.yamlfile import first_validation_error

if TYPE_CHECKING:
    from railwatch.vibration.simulate import HammerDataset


@dataclass
class VibrationPredictor:
    """A regressor with the input settings it was trained with (modality, window, band, channels)."""

    net: FFIRegressor
    modality: str
    window_s: float
    max_freq: float
    accelerometer: int
    path: Path

    @property
    def channels(self) -> int:
        return self.net.in_channels

    @property
    def freqs(self) -> np.ndarray:
        return frequency_grid(self.window_s, self.max_freq)

    @property
    def reads(self) -> str:
        """The records the model reads: ``accel`` or ``das`` (transfer models read DAS)."""
        return "accel" if self.modality == "accel" else "das"

    def check_spectra(self, spectra: np.ndarray, source: str = "spectra") -> None:
        want = (self.channels, self.net.bins)
        if spectra.ndim != 3 or spectra.shape[1:] != want:
            raise InputError(f"{source}: spectra of shape {spectra.shape}, the model reads (events, {want[0]}, {want[1]})")

    def predict_spectra(self, spectra: np.ndarray) -> np.ndarray:
        """FFI (0..3, continuous) for ``(events, channels, bins)`` magnitude spectra (peak-normalised here)."""
        self.check_spectra(spectra)
        return predict_scaled(self.net, normalise_peak(spectra)) * MAX_FFI

    def dataset_spectra(self, dataset: HammerDataset, source: str = "data") -> np.ndarray:
        """The model's input spectra of every event of a hammer-test data set (peak-normalised)."""
        records = modality_records(dataset, self.reads, self.accelerometer, source)
        spectra = event_spectra(records, dataset.fs, self.window_s, self.max_freq, source=f"{source}: {self.reads}")
        self.check_spectra(spectra, source)
        return spectra

    def predict_dataset(self, dataset: HammerDataset, source: str = "data") -> np.ndarray:
        """FFI (0..3, continuous) of every event of a hammer-test data set."""
        return self.predict_spectra(self.dataset_spectra(dataset, source))

    def monitor_settings(self, base: MonitorSettings | None = None) -> MonitorSettings:
        """``base`` (or the defaults) with this model's window, band and sensing points, for the DAS monitor."""
        model = {"window_s": self.window_s, "max_freq": self.max_freq, "points": self.channels}
        try:
            return MonitorSettings.model_validate((base or MonitorSettings()).model_dump() | model)
        except ValidationError as err:
            where, what = first_validation_error(err)
            raise InputError(f"{self.path}: the model's window does not fit the monitor settings: {where}: {what}") from None


def load_predictor(path: str | Path) -> VibrationPredictor:
    """Rebuild a regressor from ``railwatch vibration train``'s checkpoint (``weights_only=True``)."""
    payload = load_checkpoint(path, TASK)
    s = payload["model"]
    net = FFIRegressor(int(s["in_channels"]), int(s["bins"]), VibrationModelConfig(**s["arch"]))
    net.load_state_dict(payload["state_dict"])
    net.eval()
    return VibrationPredictor(net, s["modality"], float(s["window_s"]), float(s["max_freq"]), int(s["accelerometer"]), Path(path))
