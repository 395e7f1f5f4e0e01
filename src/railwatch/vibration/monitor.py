"""The streaming monitor: impacts on a long fibre, found by STA/LTA, scored for loose fasteners.

A DAS stream arrives chunk by chunk. On every channel at once (no loop over channels), the
short-term over long-term average of the signal energy (STA/LTA) flags the onset of an impact.
An event takes the strongest trigger within a fibre section's length of the first one and
claims that stretch of fibre for ``min_gap_s``; its ``points`` (6) adjacent channels are paper
001's sensing points SP-A..SP-F (each DAS channel is already "an aggregated response over a
certain segment of the optical fiber"), and "the first 0.2 s" of their free vibration from the
onset gives the magnitude spectra the FFI model reads. The events of a
chunk are scored in one batch.

Detection works on blocks of half the STA length: one pass sums each block's samples and squared
samples, and the STA/LTA of the energy about the LTA window's mean (so a DC offset does not
mask an event) is computed on those sums. The running sums over the last STA + LTA and the samples
of the last window are all the monitor keeps between chunks: memory is one chunk plus that, however
long the stream.
An onset is decided once its window has fully arrived, in exactly one chunk: events cut by the end
of a chunk are completed with the next one, and those whose window runs past the end of the
stream are counted as skipped.

Written by hand: STA/LTA triggers in the seismology libraries (ObsPy's, for one) run over one
whole trace at a time; this one carries its state from chunk to chunk over every channel at once.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from railwatch.config import MonitorSettings
from railwatch.errors import InputError
from railwatch.imageio import write_text
from railwatch.vibration.dasio import Chunk
from railwatch.vibration.spectra import free_vibration_window, magnitude_spectrum, normalise_peak

STA_BLOCKS = 2
"""The STA spans this many energy blocks; onsets are found to a block, then refined to a sample."""

MAX_LEVEL = 3
"""Highest fastener failure level (three loose clips in the paper's field test)."""

MIN_STA_SAMPLES = 8
"""Fewest samples in the STA: a shorter one lets plain noise pass the trigger (at 200 Hz a 10 ms STA
is 2 samples, and their mean energy exceeds 8 times the average once in 3000 samples)."""


def sta_block(sta_s: float, fs: float) -> int:
    """Samples per energy block: half the STA, which holds at least :data:`MIN_STA_SAMPLES`."""
    return max(1, int(round(max(sta_s * fs, MIN_STA_SAMPLES) / STA_BLOCKS)))


@dataclass(frozen=True)
class MonitorEvent:
    """One impact: where, when, how strong its trigger, and the FFI the model gives it."""

    time_s: float
    channel: int
    distance_m: float
    section: int
    ratio: float
    ffi: float
    level: int
    source: str = ""

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(
            time_s=round(self.time_s, 6), distance_m=round(self.distance_m, 3), ratio=round(self.ratio, 3), ffi=round(self.ffi, 4)
        )
        return out


@dataclass
class MonitorSummary:
    """What a monitor run went through: chunks, seconds of stream, time spent, events.

    ``wall_s`` is the monitor's own time (detection, spectra, scoring); ``source_s`` is the time
    spent waiting for chunks (reading or generating them). ``real_time_factor`` > 1 means the
    monitor keeps up with a live stream.
    """

    source: str = "stream"
    chunks: int = 0
    data_s: float = 0.0
    wall_s: float = 0.0
    source_s: float = 0.0
    events: int = 0
    skipped: int = 0
    channels: int = 0
    fs_hz: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def real_time_factor(self) -> float:
        """Seconds of stream per second of monitor time."""
        return self.data_s / self.wall_s if self.wall_s > 0 else math.inf

    def to_dict(self) -> dict:
        rtf = self.real_time_factor
        return {
            "source": self.source,
            "chunks": self.chunks,
            "data_s": round(self.data_s, 6),
            "wall_s": round(self.wall_s, 4),
            "source_s": round(self.source_s, 4),
            "real_time_factor": round(rtf, 2) if math.isfinite(rtf) else None,
            "events": self.events,
            "skipped": self.skipped,
            "channels": self.channels,
            "fs_hz": round(self.fs_hz, 6),
            "notes": list(self.notes),
        }


def block_sums(rows: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums of the samples and of their squares over blocks of ``block`` rows, per channel."""
    x = rows.reshape(-1, block, rows.shape[1])
    return x.sum(axis=1, dtype=np.float64), np.einsum("ijk,ijk->ik", x, x).astype(np.float64)


class _StaLta:
    """STA/LTA on block sums, carrying the running sums of the last STA + LTA from chunk to chunk."""

    def __init__(self, fs: float, settings: MonitorSettings, channels: int):
        self.block = sta_block(settings.sta_s, fs)
        self.n_lta = max(1, int(round(settings.lta_s * fs / self.block)))
        self.span = STA_BLOCKS + self.n_lta
        self.blocks = 0  # blocks pushed so far
        # running sums of x and x^2 at the last span block boundaries (fewer at the start), from an arbitrary base
        self.c1 = np.zeros((1, channels))
        self.c2 = np.zeros((1, channels))

    def _running(self, history: np.ndarray, sums: np.ndarray) -> np.ndarray:
        out = np.empty((history.shape[0] + sums.shape[0],) + history.shape[1:])
        out[: history.shape[0]] = history
        np.cumsum(sums, axis=0, out=out[history.shape[0] :])
        out[history.shape[0] :] += history[-1]
        return out

    def push(self, s1: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ratio, LTA (energy per sample about its mean) and LTA mean of the new blocks.

        The ratio is 0 for blocks without a full LTA before their STA (the first sta_s + lta_s).
        """
        h, m = self.c1.shape[0], s1.shape[0]
        c1, c2 = self._running(self.c1, s1), self._running(self.c2, s2)
        ratio = np.zeros(s1.shape, np.float32)
        lta = np.zeros(s1.shape, np.float32)
        mean = np.zeros(s1.shape, np.float32)
        first = max(0, self.span - h)  # first new block with a full LTA before its STA
        if first < m:
            # row h + k of c ends new block k; its STA starts STA_BLOCKS rows before, its LTA span rows before
            a, b, c = (slice(h + first - k, h + m - k) for k in (0, STA_BLOCKS, self.span))
            n_sta, n_lta = STA_BLOCKS * self.block, self.n_lta * self.block
            mu = c1[b] - c1[c]
            mu /= n_lta
            var = c2[b] - c2[c]
            var /= n_lta
            floor = var * 1e-5  # against float rounding on channels that barely move about a large offset
            floor += np.finfo(np.float32).tiny
            var -= mu * mu
            np.maximum(var, floor, out=var)
            sta = c2[a] - c2[b]
            cross = c1[a] - c1[b]
            cross *= mu
            sta -= 2 * cross
            sta /= n_sta
            sta += mu * mu
            np.divide(sta, var, out=ratio[first:], casting="unsafe")
            lta[first:], mean[first:] = var, mu
        keep = min(self.span, h + m)
        self.c1, self.c2 = c1[-keep:] - c1[-keep], c2[-keep:] - c2[-keep]  # rebased, so sums stay small
        self.blocks += m
        return ratio, lta, mean


@dataclass
class _Pending:
    """Blocks whose onsets are not decided yet: from block ``first`` on."""

    first: int
    ratio: np.ndarray
    lta: np.ndarray
    mean: np.ndarray
    above_before: np.ndarray  # trigger state of block first - 1, per channel


class _Stream:
    """The monitor's state for one stream: the STA/LTA, undecided blocks, the last samples.

    Events open in time order: the earliest rising edge of the trigger not claimed by an earlier
    event opens one, whose channel is the strongest edge within ``section_m`` of it in the STA
    that follows. A block is decided once the window of every channel it can pick has arrived,
    so chunk boundaries never change what is found.
    """

    def __init__(self, first: Chunk, settings: MonitorSettings, source: str):
        self.settings, self.source = settings, source
        self.fs, self.channels = first.fs, first.data.shape[1]
        self.dx, self.distance0 = first.dx, first.distance0
        if self.channels < settings.points:
            raise InputError(f"{source}: {self.channels} channels, the monitor needs {settings.points} adjacent sensing points")
        self.n_win = int(round(settings.window_s * self.fs))
        if self.n_win < 4:
            raise InputError(f"{source}: a {settings.window_s} s window at {self.fs:g} Hz holds only {self.n_win} samples")
        self.sta_lta = _StaLta(self.fs, settings, self.channels)
        self.block = self.sta_lta.block
        self.keep = self.n_win + (2 * STA_BLOCKS + 1) * self.block  # rows back to any undecided onset
        self.gap = max(int(round(settings.min_gap_s * self.fs)), (STA_BLOCKS + 1) * self.block)
        self.tail = np.zeros((0, self.channels), np.float32)
        self.seen = 0
        self.t_base = first.t0_s + first.carry / first.fs
        empty = np.zeros((0, self.channels), np.float32)
        self.pending = _Pending(0, empty, empty, empty, np.zeros(self.channels, bool))
        # opening sample and position of the events that may still claim later triggers
        self.recent_onset = np.zeros(0, np.int64)
        self.recent_where = np.zeros(0)

    def distance(self, channel: int | np.ndarray) -> np.ndarray:
        return self.distance0 + np.asarray(channel) * (self.dx if self.dx is not None else 1.0)

    def rows(self, new: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Samples ``r0:r1`` (from the stream start) of channels ``c0:c1``, from the kept tail and ``new``."""
        t0 = self.seen - self.tail.shape[0]
        parts = []
        if r0 < self.seen:
            parts.append(self.tail[r0 - t0 : min(r1, self.seen) - t0, c0:c1])
        if r1 > self.seen:
            parts.append(new[max(r0, self.seen) - self.seen : r1 - self.seen, c0:c1])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _check(self, chunk: Chunk) -> np.ndarray:
        new = chunk.new
        if chunk.fs != self.fs or new.ndim != 2 or new.shape[1] != self.channels:
            raise InputError(
                f"{self.source}: a chunk of shape {new.shape} at {chunk.fs:g} Hz does not continue "
                f"a {self.channels}-channel stream at {self.fs:g} Hz"
            )
        expected, got = self.t_base + self.seen / self.fs, chunk.t0_s + chunk.carry / chunk.fs
        if abs(got - expected) > 0.5 / self.fs:
            raise InputError(f"{self.source}: a chunk's new samples start at {got:.6f} s, the stream is at {expected:.6f} s")
        return new

    def _new_blocks(self, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Block sums of the blocks completed by ``new`` (with the rows left over from the last chunk)."""
        b = self.block
        left = self.seen - self.sta_lta.blocks * b
        m = (left + new.shape[0]) // b
        if m == 0:
            return np.zeros((0, self.channels)), np.zeros((0, self.channels))
        parts = []
        if left:
            parts.append(block_sums(np.concatenate([self.tail[self.tail.shape[0] - left :], new[: b - left]]), b))
        start = (b - left) % b
        parts.append(block_sums(new[start : start + (m - (1 if left else 0)) * b], b))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _candidates(self, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rising edges of the trigger in the first ``count`` pending blocks: block, channel, peak ratio.

        The peak is the largest ratio over the STA's blocks from the edge on (as far as they arrived).
        """
        p = self.pending
        above = p.ratio[:count] >= self.settings.trigger
        rising = above & ~np.concatenate([p.above_before[None], above[:-1]])
        rows, channels = np.nonzero(rising)
        look = np.minimum(rows[None] + np.arange(STA_BLOCKS + 1)[:, None], p.ratio.shape[0] - 1)
        peak = p.ratio[look, channels[None]].max(axis=0) if rows.size else np.zeros(0, np.float32)
        return rows + p.first, channels, peak

    def _claimed(self, where: float, onset: int) -> bool:
        """Whether an event opened within ``min_gap_s`` before ``onset`` and ``section_m`` of ``where``."""
        near = (onset - self.recent_onset < self.gap) & (np.abs(where - self.recent_where) < self.settings.section_m)
        return bool(near.any())

    def _open(self, opening: int) -> list[tuple[int, int, float]]:
        """Events opened by edges in the first ``opening`` pending blocks: (block, channel, ratio) of each."""
        blocks, channels, peak = self._candidates(opening + STA_BLOCKS)
        where = self.distance(channels)
        opened = []
        for i in np.lexsort((-peak, blocks)):  # earliest first, the strongest of a block first
            block = int(blocks[i])
            if block >= self.pending.first + opening:
                break
            if self._claimed(where[i], block * self.block):
                continue
            near = (np.abs(where - where[i]) < self.settings.section_m) & (blocks >= block) & (blocks <= block + STA_BLOCKS)
            group = np.flatnonzero(near)
            best = group[np.argmax(peak[group])]
            self.recent_onset = np.append(self.recent_onset, block * self.block)
            self.recent_where = np.append(self.recent_where, where[best])
            opened.append((int(blocks[best]), int(channels[best]), float(peak[best])))
        return opened

    def _onset(self, new: np.ndarray, block: int, channel: int) -> int:
        """First sample of the block's STA window whose energy about the LTA mean reaches the trigger."""
        i = block - self.pending.first
        lta, mean = float(self.pending.lta[i, channel]), float(self.pending.mean[i, channel])
        r0 = (block - STA_BLOCKS + 1) * self.block
        x = self.rows(new, r0, (block + 1) * self.block, channel, channel + 1)[:, 0].astype(np.float64)
        return r0 + int(np.argmax((x - mean) ** 2 >= self.settings.trigger * lta))

    def _decide(
        self, new: np.ndarray, opening: int, end: int, score: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[list[MonitorEvent], int]:
        """Open, cut and score the events of the first ``opening`` pending blocks, then drop those blocks.

        Returns the events and how many were skipped because their window runs past ``end``.
        """
        s = self.settings
        spectra, found, skipped = [], [], 0
        for block, channel, peak in self._open(opening):
            onset = self._onset(new, block, channel)
            if onset + self.n_win > end:
                skipped += 1
                continue
            first = min(max(channel - (s.points - 1) // 2, 0), self.channels - s.points)
            segment = self.rows(new, onset, onset + self.n_win, first, first + s.points).T
            window = free_vibration_window(
                segment, self.fs, s.window_s, start=0, source=f"{self.source} at {onset / self.fs:.3f} s"
            )
            # bins labelled on the nominal 1/window_s grid, so every stream gives the model the same bins
            spectra.append(magnitude_spectrum(window, self.n_win / s.window_s, s.max_freq))
            found.append((onset, channel, int(np.floor(self.distance(channel) / s.section_m)), peak))
        p = self.pending
        if opening:
            p.above_before = p.ratio[opening - 1] >= s.trigger
            p.ratio, p.lta, p.mean, p.first = p.ratio[opening:], p.lta[opening:], p.mean[opening:], p.first + opening
        if not found:
            return [], skipped
        ffi = np.asarray(score(normalise_peak(np.stack(spectra))), dtype=np.float64).reshape(-1)
        if ffi.size != len(found):
            raise InputError(f"{self.source}: the scorer gave {ffi.size} values for {len(found)} events")
        events = [
            MonitorEvent(
                time_s=self.t_base + onset / self.fs,
                channel=channel,
                distance_m=float(self.distance(channel)),
                section=section,
                ratio=peak,
                ffi=float(f),
                level=int(np.clip(np.rint(f), 0, MAX_LEVEL)),
                source=self.source,
            )
            for (onset, channel, section, peak), f in zip(found, ffi)
        ]
        return sorted(events, key=lambda e: (e.time_s, e.channel)), skipped

    def feed(self, chunk: Chunk, score: Callable[[np.ndarray], np.ndarray]) -> list[MonitorEvent]:
        """The events this chunk decides, scored in one batch."""
        new = self._check(chunk)
        ratio, lta, mean = self.sta_lta.push(*self._new_blocks(new))
        p = self.pending
        p.ratio, p.lta, p.mean = (np.concatenate(pair) for pair in ((p.ratio, ratio), (p.lta, lta), (p.mean, mean)))
        end = self.seen + new.shape[0]
        # decide the blocks whose event windows have all arrived, whichever channel of the following STA is picked
        decided = min(max((end - self.n_win) // self.block - STA_BLOCKS, p.first), self.sta_lta.blocks) - p.first
        keep = self.recent_onset > p.first * self.block - self.gap
        self.recent_onset, self.recent_where = self.recent_onset[keep], self.recent_where[keep]
        events, _ = self._decide(new, decided, end, score)
        older = max(0, self.keep - new.shape[0])  # rows of the old tail still among the last `keep`
        self.tail = np.concatenate([self.tail[self.tail.shape[0] - older :], new[-self.keep :]])
        self.seen = end
        return events

    def finish(self, score: Callable[[np.ndarray], np.ndarray]) -> tuple[list[MonitorEvent], int]:
        """The events still undecided at the end of the stream, and how many of them run past it."""
        return self._decide(self.tail[:0], self.pending.ratio.shape[0], self.seen, score)


def _notes(settings: MonitorSettings, fs: float) -> list[str]:
    notes = []
    sta = STA_BLOCKS * sta_block(settings.sta_s, fs)
    if sta > round(settings.sta_s * fs):
        notes.append(f"sampled at {fs:g} Hz: the STA spans {sta} samples ({sta / fs:g} s), not sta_s = {settings.sta_s:g} s")
    if fs < 2 * settings.max_freq:
        notes.append(f"sampled at {fs:g} Hz: spectrum bins above {fs / 2:g} Hz (Nyquist) are zero")
    return notes


def monitor(
    chunks: Iterable[Chunk],
    score: Callable[[np.ndarray], np.ndarray],
    settings: MonitorSettings | None = None,
    summary: MonitorSummary | None = None,
    source: str = "stream",
) -> Iterator[MonitorEvent]:
    """Find, cut and score the impacts of one stream, chunk by chunk.

    Args:
        chunks: The stream in order; rows a chunk carries from the previous one are skipped.
        score: FFI per event from ``(events, points, bins)`` peak-normalised magnitude spectra,
            ``bins == len(frequency_grid(window_s, max_freq))``; called once per chunk with events.
        settings: Detection settings (defaults: :class:`MonitorSettings`).
        summary: Filled in as the stream goes (chunks, seconds, time, events, skipped, notes).
        source: Name of the stream, for events and messages.

    Yields:
        Each event once, in the order chunks decide them.
    """
    settings = settings or MonitorSettings()
    summary = summary if summary is not None else MonitorSummary(source)
    stream = None
    it = iter(chunks)
    while True:
        tic = time.perf_counter()
        chunk = next(it, None)
        summary.source_s += time.perf_counter() - tic
        if chunk is None:
            break
        tic = time.perf_counter()
        if stream is None:
            stream = _Stream(chunk, settings, source)
            summary.channels, summary.fs_hz = stream.channels, stream.fs
            summary.notes += _notes(settings, stream.fs)
        events = stream.feed(chunk, score)
        summary.chunks += 1
        summary.data_s += chunk.new.shape[0] / chunk.fs
        summary.events += len(events)
        summary.wall_s += time.perf_counter() - tic
        del chunk  # let the source free it before making the next one
        yield from events
    if stream is None:
        return
    tic = time.perf_counter()
    events, skipped = stream.finish(score)
    summary.events += len(events)
    summary.skipped += skipped
    summary.wall_s += time.perf_counter() - tic
    yield from events
    warm_up = settings.sta_s + settings.lta_s + settings.window_s
    if summary.data_s < warm_up:
        summary.notes.append(
            f"{summary.data_s:g} s of data: under sta_s + lta_s + window_s = {warm_up:g} s, too short for an event window"
        )


def write_events(events: Iterable[MonitorEvent], path: str | Path) -> int:
    """Write events as JSON lines, atomically (a temporary file renamed into place); returns how many."""
    lines = [json.dumps(e.to_dict()) for e in events]
    write_text("".join(line + "\n" for line in lines), path)
    return len(lines)
