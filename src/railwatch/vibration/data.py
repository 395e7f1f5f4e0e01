"""Hammer-test events as model inputs: per-event spectra of one accelerometer and the six DAS points.

"For the acceleration signals, the input to the model consisted of the spectral data of the
acceleration responses in three directions measured by one accelerometer. For the DAS signals,
the data from the six SPs closest to the impact zone were used" (paper 001, "Model implementation").
The data set is "randomly divided into training, validation, and test datasets in a ratio of 7:1:2
... randomly partitioned five times".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from railwatch.errors import InputError
from railwatch.vibration.spectra import event_spectra, frequency_grid

if TYPE_CHECKING:
    from railwatch.vibration.simulate import HammerDataset


@dataclass
class SpectraSet:
    """Model inputs of hammer-test events: ``accel`` (N, 3, bins) or ``None``, ``das`` (N, 6, bins), FFI."""

    das: np.ndarray
    accel: np.ndarray | None
    ffi: np.ndarray
    condition: np.ndarray
    freqs: np.ndarray

    def __len__(self) -> int:
        return len(self.ffi)

    def subset(self, index: np.ndarray) -> SpectraSet:
        accel = None if self.accel is None else self.accel[index]
        return SpectraSet(self.das[index], accel, self.ffi[index], self.condition[index], self.freqs)

    def inputs(self, modality: str) -> np.ndarray:
        """The spectra one modality's model reads (``transfer`` models read DAS)."""
        if modality == "accel":
            if self.accel is None:
                raise InputError("the data set holds no accelerometer records; only --modality das can train on it")
            return self.accel
        return self.das


def modality_records(dataset: HammerDataset, reads: str, accelerometer: int = 2, source: str = "data") -> np.ndarray:
    """The records one model reads: the three axes of accelerometer ``accelerometer`` ``(events, 3, samples)``, or the DAS points."""
    if reads == "das":
        return dataset.das
    if dataset.accel is None or not dataset.accel.size:
        raise InputError(f"{source}: holds no accelerometer records")
    if not 0 <= accelerometer < dataset.accel.shape[1]:
        raise InputError(f"{source}: no accelerometer {accelerometer}; it holds {dataset.accel.shape[1]} (0-based)")
    return dataset.accel[:, accelerometer]


def spectra_set(dataset: HammerDataset, accelerometer: int = 2, window_s: float = 0.2, max_freq: float = 500.0, source: str = "data") -> SpectraSet:
    """Spectra of every event of a :class:`~railwatch.vibration.simulate.HammerDataset`, peak-normalised per event."""

    def spectra(reads: str) -> np.ndarray:
        records = modality_records(dataset, reads, accelerometer, source)
        return event_spectra(records, dataset.fs, window_s, max_freq, source=f"{source}: {reads}")

    accel = spectra("accel") if dataset.accel is not None and dataset.accel.size else None
    return SpectraSet(spectra("das"), accel, np.asarray(dataset.ffi, np.int64), np.asarray(dataset.condition, np.int64), frequency_grid(window_s, max_freq))


def random_split(n: int, proportions: tuple[float, float, float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a random train/validation/test split of ``n`` events in ``proportions`` (7:1:2)."""
    weights = np.asarray(proportions, dtype=np.float64)
    counts = np.floor(weights / weights.sum() * n).astype(int)
    counts[0] += n - counts.sum()
    if min(counts) < 1:
        raise InputError(f"{n} events are too few for a {':'.join(f'{p:g}' for p in proportions)} split")
    order = np.random.default_rng(seed).permutation(n)
    return order[: counts[0]], order[counts[0] : counts[0] + counts[1]], order[counts[0] + counts[1] :]


def numbered_split(n: int, proportions: tuple[float, float, float], index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random split number ``index`` (0, 1, ...) of ``n`` events: the same events for every model trained on it."""
    return random_split(n, proportions, seed=1000 + index)


class SpectraDataset(Dataset):
    """``(spectra, FFI/3)`` of one modality, or ``(accel, das, FFI/3)`` pairs for transfer pre-training."""

    def __init__(self, data: SpectraSet, modality: str, paired: bool = False) -> None:
        self.target = torch.from_numpy(data.ffi.astype(np.float32) / 3.0)
        self.paired = paired
        self.das = torch.from_numpy(data.das)
        self.x = torch.from_numpy(data.inputs("accel" if paired else modality))

    def __len__(self) -> int:
        return len(self.target)

    def __getitem__(self, i: int):
        if self.paired:
            return self.x[i], self.das[i], self.target[i]
        return self.x[i], self.target[i]
