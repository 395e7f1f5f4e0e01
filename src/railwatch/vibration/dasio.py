"""Real DAS recordings through DASCore: read a file, describe it, draw it, cut it into chunks.

DASCore parses the vendor formats (AP Sensing, Silixa, Febus, Terra15, ProdML, TDMS, Neubrex...);
railwatch only puts time first, converts to float32 and turns every failure into a one-line
:class:`~railwatch.errors.InputError` that names the file. Each channel of a DAS file is already
what paper 001 calls a sensing point: "an aggregated response over a certain segment of the
optical fiber" (section "Experimental setup"), so the monitor takes adjacent channels as SP-A..SP-F.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from railwatch.errors import InputError
from railwatch.vibration.spectra import check_finite

NOT_DAS_FILES = ("readme", "license", "licence")
"""Files of a folder that :func:`das_files` leaves out (by name, before the suffix; any case)."""


@dataclass(frozen=True)
class DasRecord:
    """One DAS recording, time first.

    Attributes:
        data: ``(time, channel)`` float32 samples.
        fs: Sampling rate in Hz.
        dx: Channel spacing in m; ``None`` when the file numbers channels instead of giving distances.
        distance: Position of each channel along the fibre in m (channel numbers when ``dx`` is ``None``).
        start: Time of the first sample, ``None`` when the file has none.
        data_type: What the samples measure (``strain_rate``, ``velocity``...), ``""`` if unknown.
        units: Units of the samples, ``""`` if unknown.
        format: DASCore's name and version of the file format, e.g. ``"APSensing 10"``.
        path: The file.
        dims: The file's own axis order, e.g. ``("distance", "time")``.
        dead_channels: Channels that hold no finite sample at all in the file (an interrogator's
            dead or masked channels, e.g. one of febus_2.h5's); they read as zeros here.
    """

    data: np.ndarray
    fs: float
    dx: float | None
    distance: np.ndarray
    start: np.datetime64 | None
    data_type: str
    units: str
    format: str
    path: Path
    dims: tuple[str, str] = ("time", "distance")
    dead_channels: tuple[int, ...] = ()

    @property
    def n_time(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.data.shape[1])

    @property
    def duration_s(self) -> float:
        """Samples times the sampling interval."""
        return self.n_time / self.fs


def _unknown_format(path: Path) -> str:
    from dascore.io.core import FiberIO

    known = len(FiberIO.manager.known_formats)
    return f"{path}: DASCore cannot read it: its format is none of the {known} DAS formats DASCore knows"


def _seconds(step) -> float:
    """A time step as seconds, whether DASCore gives a ``timedelta64`` or a number."""
    if isinstance(step, np.timedelta64):
        return float(step / np.timedelta64(1, "ns")) * 1e-9
    return float(step)


def _sampling_rate(coord, path: Path) -> float:
    """1 / the time step; from the sample times when the coordinate has no regular step."""
    step = coord.step
    if step is None or (isinstance(step, np.timedelta64) and np.isnat(step)):
        values = np.asarray(coord.values)
        step = np.median(np.diff(values)) if values.size > 1 else None
    dt = None if step is None else _seconds(step)
    if dt is None or not np.isfinite(dt) or dt <= 0:
        raise InputError(f"{path}: its time axis has no positive sampling interval")
    return 1.0 / dt


def _quantity(units) -> str:
    from dascore.units import get_quantity_str

    return (get_quantity_str(units) or "") if units is not None else ""


def read_das(path: str | Path) -> DasRecord:
    """The first patch of a DAS file as a :class:`DasRecord` (the shared files all hold one patch).

    Raises:
        InputError: the file is missing or a folder, DASCore cannot read it, it is not a
            2-D (time, distance|channel) record, it holds no samples, or NaN or infinity in a
            channel that has finite samples too (whole non-finite channels are dead: zeroed, listed).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a DAS file")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    import dascore
    from dascore.exceptions import UnknownFiberFormatError

    try:
        name, version = dascore.get_format(path)
        spool = dascore.read(path, file_format=name, file_version=version)
    except UnknownFiberFormatError:
        raise InputError(_unknown_format(path)) from None
    except Exception as err:  # a vendor parser failing on a damaged file: report it on one line
        first_line = (str(err).splitlines() or [""])[0]
        raise InputError(f"{path}: DASCore cannot read it ({type(err).__name__}: {first_line})") from err
    if len(spool) == 0:
        raise InputError(f"{path}: DASCore finds no data in it")
    patch = spool[0]
    dims = tuple(patch.dims)
    if len(dims) != 2 or "time" not in dims:
        raise InputError(f"{path}: expected a (time, distance) record, DASCore gives dims {dims}")
    space = dims[1 - dims.index("time")]
    data = np.asarray(patch.data, dtype=np.float32)
    if data.size == 0:
        raise InputError(f"{path}: the record holds no samples (shape {data.shape})")
    if dims[0] != "time":
        data = np.ascontiguousarray(data.T)
    dead = np.flatnonzero(~np.isfinite(data).any(axis=0))
    if dead.size == data.shape[1]:
        raise InputError(f"{path}: every channel holds only NaN or infinity")
    if dead.size:
        data = data.copy()  # DASCore's own array may be read-only
        data[:, dead] = 0.0
    check_finite(data, str(path))
    time = patch.get_coord("time")
    start = np.asarray(time.min())
    space_coord = patch.get_coord(space)
    distance = np.asarray(space_coord.values, dtype=np.float64)
    dx = abs(float(np.median(np.diff(distance)))) if space == "distance" and distance.size > 1 else None
    return DasRecord(
        data=data,
        fs=_sampling_rate(time, path),
        dx=dx,
        distance=distance,
        start=start.astype("datetime64[ns]") if np.issubdtype(start.dtype, np.datetime64) else None,
        data_type=str(patch.attrs.data_type or ""),
        units=_quantity(patch.attrs.data_units),
        format=f"{name} {version}",
        path=path,
        dims=(dims[0], dims[1]),
        dead_channels=tuple(int(c) for c in dead),
    )


def describe(record: DasRecord) -> dict:
    """What a record holds, JSON-able: format, axes, rate, spacing, extent, what it measures.

    ``shape`` is ``[time samples, channels]`` whatever the file's ``dims`` order.
    """
    spacing_units = "m" if record.dx is not None else "channel"
    return {
        "file": str(record.path),
        "format": record.format,
        "dims": list(record.dims),
        "shape": [record.n_time, record.n_channels],
        "fs_hz": round(record.fs, 6),
        "dt_s": 1.0 / record.fs,
        "channel_spacing_m": None if record.dx is None else round(record.dx, 6),
        "n_channels": record.n_channels,
        "duration_s": round(record.duration_s, 6),
        "start": None if record.start is None else str(record.start),
        "data_type": record.data_type,
        "units": record.units,
        "distance": [float(record.distance.min()), float(record.distance.max())],
        "distance_units": spacing_units,
        "dead_channels": list(record.dead_channels),
    }


def waterfall_figure(record: DasRecord, out_png: str | Path, clip_percentile: float = 99.0) -> Path:
    """Draw the record as a waterfall (distance across, time down) to ``out_png``.

    The colour scale is symmetric about zero and clipped at the ``clip_percentile`` of |data|, so a
    few strong samples do not wash the rest out. Records larger than 2000 px a side are thinned by
    taking every k-th sample or channel.
    """
    if not 0 < clip_percentile <= 100:
        raise InputError(f"clip_percentile {clip_percentile}: expected a percentile in (0, 100]")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    step_t = max(1, record.n_time // 2000)
    step_x = max(1, record.n_channels // 2000)
    image = record.data[::step_t, ::step_x]
    clip = float(np.percentile(np.abs(image), clip_percentile)) or 1.0
    extent = (float(record.distance[0]), float(record.distance[-1]), record.duration_s, 0.0)
    fig, ax = plt.subplots(figsize=(8, 5))
    shown = ax.imshow(image, aspect="auto", cmap="seismic", vmin=-clip, vmax=clip, extent=extent, interpolation="nearest")
    ax.set_xlabel("distance along the fibre (m)" if record.dx is not None else "channel")
    ax.set_ylabel("time from the first sample (s)")
    spacing = f"{record.dx:.3g} m channels" if record.dx is not None else "no channel spacing"
    ax.set_title(f"{record.path.name}: {record.fs:.6g} Hz, {spacing}")
    label = " ".join(part for part in (record.data_type, f"({record.units})" if record.units else "") if part)
    fig.colorbar(shown, ax=ax, label=f"{label or 'amplitude'} (clipped at p{clip_percentile:g} of |data|)")
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out


def das_files(folder: str | Path) -> list[Path]:
    """The files of ``folder`` that may be DAS recordings: not hidden, not README or LICENSE; sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.stem.lower() not in NOT_DAS_FILES
    )


def scan_folder(folder: str | Path) -> list[tuple[Path, DasRecord | str]]:
    """Read every file of :func:`das_files`: its record, or the one-line reason it cannot be read."""
    found: list[tuple[Path, DasRecord | str]] = []
    for path in das_files(folder):
        try:
            found.append((path, read_das(path)))
        except InputError as err:
            found.append((path, str(err)))
    return found


@dataclass(frozen=True)
class Chunk:
    """A piece of a DAS stream, time first.

    Attributes:
        data: ``(time, channel)`` float32 samples.
        t0_s: Time of ``data[0]`` from the start of the stream, s.
        fs: Sampling rate in Hz.
        dx: Channel spacing in m, ``None`` when channels are only numbered.
        distance0: Position of channel 0 (m, or its channel number when ``dx`` is ``None``).
        carry: Leading rows that repeat the end of the previous chunk (0 for the first chunk).
    """

    data: np.ndarray
    t0_s: float
    fs: float
    dx: float | None
    distance0: float
    carry: int = 0

    @property
    def new(self) -> np.ndarray:
        """The rows not seen in an earlier chunk."""
        return self.data[self.carry :]


def chunk_count(n_time: int, fs: float, chunk_s: float) -> int:
    """How many chunks :func:`iter_chunks` cuts ``n_time`` samples into."""
    step = max(1, int(round(chunk_s * fs)))
    return -(-n_time // step)


def iter_chunks(
    source: DasRecord | np.ndarray,
    fs: float | None = None,
    chunk_s: float = 0.5,
    carry_s: float = 0.0,
    dx: float | None = None,
    distance0: float = 0.0,
) -> Iterator[Chunk]:
    """Cut a record (or a ``(time, channel)`` array sampled at ``fs``) into chunks of ``chunk_s`` new seconds.

    Each chunk after the first starts with ``carry_s`` of the previous chunk's tail (``Chunk.carry``
    rows), for consumers that want each chunk to stand alone; the monitor keeps its own history
    and skips carried rows, so it works with any carry. Chunks are views of the record (no copy)
    unless the array is not float32, when each chunk alone is converted.
    """
    if isinstance(source, DasRecord):
        if fs is not None and abs(fs - source.fs) > 1e-9 * source.fs:
            raise InputError(f"{source.path}: sampled at {source.fs:g} Hz, not at the fs={fs:g} passed")
        data, fs, dx, distance0 = source.data, source.fs, source.dx, float(source.distance[0])
    else:
        data = np.asarray(source)
        if data.ndim != 2:
            raise InputError(f"expected a (time, channel) array, got shape {data.shape}")
        if fs is None:
            raise InputError("iter_chunks: an array needs its sampling rate fs")
    if fs <= 0 or chunk_s <= 0 or carry_s < 0:
        raise InputError(f"iter_chunks: fs {fs}, chunk_s {chunk_s} must be > 0 and carry_s {carry_s} >= 0")
    step = max(1, int(round(chunk_s * fs)))
    carry = int(round(carry_s * fs))
    for begin in range(0, data.shape[0], step):
        lead = min(carry, begin)
        block = data[begin - lead : begin + step]
        yield Chunk(np.asarray(block, dtype=np.float32), (begin - lead) / fs, float(fs), dx, distance0, lead)
