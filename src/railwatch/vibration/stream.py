"""A simulated long fibre: a DAS stream generated chunk by chunk, for throughput tests of the monitor.

Every channel carries white noise (the broadband ambient noise paper 001 finds much larger on DAS
than on accelerometers) and a 50 Hz hum (the strong ~50 Hz coupling peak of its DAS spectra),
the same on every channel so it costs one broadcast add. Events planted with :meth:`plant` are
added where they overlap a chunk. Only one chunk exists at a time: 10 km of 1 m channels at
2 kHz is 80 MB per second of stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from railwatch.errors import InputError
from railwatch.vibration.dasio import Chunk, chunk_count


@dataclass
class SimulatedFibre:
    """A ``length_m`` fibre of ``dx`` channels sampled at ``fs`` for ``duration_s``.

    Attributes:
        duration_s: Length of the stream, s.
        length_m: Fibre length, m.
        dx: Channel spacing, m.
        fs: Sampling rate, Hz.
        chunk_s: Seconds per chunk of :meth:`chunks`.
        noise_std: Standard deviation of the white noise.
        hum_amplitude: Amplitude of the common-mode hum.
        hum_hz: Frequency of the hum.
        seed: Seed of the noise; the same seed gives the same stream.
    """

    duration_s: float
    length_m: float = 10_000.0
    dx: float = 1.0
    fs: float = 2000.0
    chunk_s: float = 0.5
    noise_std: float = 1.0
    hum_amplitude: float = 0.5
    hum_hz: float = 50.0
    seed: int = 0
    _events: list[tuple[int, int, np.ndarray]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if min(self.duration_s, self.length_m, self.dx, self.fs, self.chunk_s) <= 0:
            raise InputError("SimulatedFibre: duration_s, length_m, dx, fs and chunk_s must be > 0")

    @property
    def n_channels(self) -> int:
        return int(round(self.length_m / self.dx))

    @property
    def n_time(self) -> int:
        return int(round(self.duration_s * self.fs))

    def plant(self, time_s: float, channel: int, waveforms: np.ndarray) -> None:
        """Add ``waveforms`` (``(points, samples)``) to channels ``channel..channel+points-1`` from ``time_s``.

        The part of an event past the end of the stream is dropped.
        """
        waveforms = np.asarray(waveforms, dtype=np.float32)
        if waveforms.ndim != 2 or waveforms.shape[1] == 0:
            raise InputError(f"plant: expected (points, samples) waveforms, got shape {waveforms.shape}")
        if not 0 <= channel <= self.n_channels - waveforms.shape[0]:
            raise InputError(
                f"plant: channels {channel}..{channel + waveforms.shape[0] - 1} "
                f"are not all on the {self.n_channels}-channel fibre"
            )
        start = int(round(time_s * self.fs))
        if not 0 <= start < self.n_time:
            raise InputError(f"plant: time {time_s} s is outside the {self.duration_s} s stream")
        self._events.append((start, channel, waveforms.T.copy()))

    def chunks(self) -> Iterator[Chunk]:
        """The stream in chunks of ``chunk_s`` (the last one shorter), generated on demand."""
        rng = np.random.default_rng(self.seed)
        step = max(1, int(round(self.chunk_s * self.fs)))
        for k in range(chunk_count(self.n_time, self.fs, self.chunk_s)):
            begin = k * step
            end = min(begin + step, self.n_time)
            data = rng.standard_normal((end - begin, self.n_channels), dtype=np.float32)
            data *= np.float32(self.noise_std)
            t = np.arange(begin, end) / self.fs
            data += (self.hum_amplitude * np.sin(2 * np.pi * self.hum_hz * t)).astype(np.float32)[:, None]
            for start, channel, wave in self._events:
                lo, hi = max(start, begin), min(start + wave.shape[0], end)
                if lo < hi:
                    data[lo - begin : hi - begin, channel : channel + wave.shape[1]] += wave[lo - start : hi - start]
            yield Chunk(data, begin / self.fs, self.fs, self.dx, 0.0)
            del data  # one chunk alive at a time, once the consumer lets go of it
