"""The hammer-test data set as one HDF5 file.

Layout: arrays ``accel`` (events, sensors, 3 axes x/y/z, samples; optional, absent in DAS-only
files), ``das`` (events, sensing points, samples), ``ffi`` and ``condition`` (events,); attributes
``fs`` (Hz), ``site`` and ``settings`` (the simulator's settings as a JSON string). Files are
written to a temporary file in the same folder and renamed into place, so a reader never sees a
half-written file; reading checks every array and names the file in a one-line error.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from railwatch.errors import InputError
from railwatch.vibration.simulate import HammerDataset

REQUIRED = ("das", "ffi", "condition")


def _check_finite(array: np.ndarray, name: str, source: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), array.shape))
        raise InputError(f"{source}: {name} holds NaN or infinity (first at index {index})")


def _check(dataset: HammerDataset, source: str) -> None:
    """Shapes that agree and finite records, or a one-line :class:`InputError` naming ``source``."""
    das, ffi, condition = dataset.das, dataset.ffi, dataset.condition
    if das.ndim != 3:
        raise InputError(f"{source}: das must be (events, sensing points, samples), got shape {das.shape}")
    events, samples = das.shape[0], das.shape[-1]
    if ffi.shape != (events,) or condition.shape != (events,):
        raise InputError(f"{source}: ffi {ffi.shape} and condition {condition.shape} must be ({events},) like das {das.shape}")
    accel = dataset.accel
    if accel is not None and (accel.ndim != 4 or accel.shape[0] != events or accel.shape[2] != 3 or accel.shape[3] != samples):
        raise InputError(f"{source}: accel must be ({events}, sensors, 3, {samples}) to match das {das.shape}, got {accel.shape}")
    if not (np.isfinite(dataset.fs) and dataset.fs > 0):
        raise InputError(f"{source}: fs must be a positive sampling rate in Hz, got {dataset.fs}")
    if events and (ffi.min() < 0 or condition.min() < 1):
        raise InputError(f"{source}: ffi must be >= 0 and condition >= 1")
    _check_finite(das, "das", source)
    if accel is not None:
        _check_finite(accel, "accel", source)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_hammer_h5(path: str | Path, dataset: HammerDataset, settings: dict[str, Any] | None = None) -> Path:
    """Write ``dataset`` (and the ``settings`` that made it) to ``path`` atomically; return the path.

    Raises:
        InputError: the data set's arrays disagree in shape or hold NaN or infinity; nothing is written.
    """
    path = Path(path)
    _check(dataset, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; the result should be an ordinary file
        with h5py.File(temporary, "w") as f:
            if dataset.accel is not None:
                f.create_dataset("accel", data=np.asarray(dataset.accel, dtype=np.float32))
            f.create_dataset("das", data=np.asarray(dataset.das, dtype=np.float32))
            f.create_dataset("ffi", data=np.asarray(dataset.ffi, dtype=np.int64))
            f.create_dataset("condition", data=np.asarray(dataset.condition, dtype=np.int64))
            f.attrs["fs"] = float(dataset.fs)
            f.attrs["site"] = str(dataset.site)
            f.attrs["settings"] = json.dumps(settings or {})
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _array(f: h5py.File, name: str, source: str, dtype: type) -> np.ndarray:
    """Array ``name`` as ``dtype``; integers must be whole numbers."""
    try:
        values = np.asarray(f[name][()])
        if dtype is np.int64 and values.dtype.kind not in "iu":
            if values.dtype.kind != "f" or not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
                raise InputError(f"{source}: {name} must hold whole numbers, got dtype {values.dtype}")
        return values.astype(dtype)
    except (OSError, ValueError, TypeError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"{source}: array {name!r} cannot be read as numbers ({type(err).__name__})") from None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def read_hammer_h5(path: str | Path) -> HammerDataset:
    """The data set in ``path``, checked.

    Raises:
        InputError: the file is missing, not HDF5 (or corrupt), lacks ``das``, ``ffi``, ``condition``
            or the ``fs`` attribute, has arrays whose shapes disagree, or records with NaN or
            infinity. The message names the file.
    """
    source = str(path)
    if not Path(path).is_file():
        raise InputError(f"{source}: hammer-test file not found")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise InputError(f"{source}: not an HDF5 file, or a corrupt one") from None
    with f:
        missing = [name for name in REQUIRED if name not in f]
        if missing:
            raise InputError(
                f"{source}: missing array {missing[0]!r} (a hammer-test file holds {', '.join(REQUIRED)} and optionally accel)"
            )
        if "fs" not in f.attrs:
            raise InputError(f"{source}: missing the sampling rate (attribute 'fs')")
        try:
            fs = float(f.attrs["fs"])
        except (TypeError, ValueError):
            raise InputError(f"{source}: the sampling rate (attribute 'fs') is not a number") from None
        dataset = HammerDataset(
            accel=_array(f, "accel", source, np.float32) if "accel" in f else None,
            das=_array(f, "das", source, np.float32),
            ffi=_array(f, "ffi", source, np.int64),
            condition=_array(f, "condition", source, np.int64),
            fs=fs,
            site=_text(f.attrs.get("site", "unknown")),
        )
    _check(dataset, source)
    return dataset
