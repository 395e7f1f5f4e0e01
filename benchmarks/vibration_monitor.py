"""Throughput of ``railwatch.vibration.monitor`` on a simulated long fibre (issue: 10 km, 1 m channels, 2 kHz).

Simulated hammer tests (training site, DAS sensing points) are planted at random places and
times in a stream of white noise and 50 Hz hum, each scaled to 30 noise standard deviations at
its peak; the monitor streams it chunk by chunk and scores every event with a trained DAS model.
The real-time factor counts the monitor's own work (detection, windows, spectra, scoring), not
the generation of the simulated stream, which is reported beside it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from railwatch.vibration.infer import load_predictor
from railwatch.vibration.monitor import MonitorSummary, monitor
from railwatch.vibration.simulate import simulate_hammer_tests
from railwatch.vibration.stream import SimulatedFibre


def planted_fibre(seconds: float, length_m: float = 10_000.0, events: int = 8, seed: int = 0) -> tuple[SimulatedFibre, list[tuple[float, int, int]]]:
    """A fibre stream with ``events`` simulated hammer tests: (time s, first channel, true FFI) of each."""
    fibre = SimulatedFibre(duration_s=seconds, length_m=length_m, dx=1.0, fs=2000.0, chunk_s=0.5, seed=seed)
    hammer = simulate_hammer_tests(repeats=2, seed=seed + 7)
    rng = np.random.default_rng(seed)
    times = np.linspace(1.0, seconds - 0.8, events)  # after the monitor's warm-up, before the end
    planted = []
    for k, t in enumerate(times):
        i = int(rng.integers(len(hammer)))
        waves = hammer.das[i] / np.abs(hammer.das[i]).max() * 30.0
        channel = int(rng.integers(100, fibre.n_channels - 100))
        fibre.plant(float(t), channel, waves)
        planted.append((float(t), channel, int(hammer.ffi[i])))
    return fibre, planted


def monitor_throughput(checkpoint: Path, seconds: float, length_m: float = 10_000.0) -> dict[str, Any]:
    """Real-time factor of the monitor on ``seconds`` of a ``length_m`` fibre, and how many planted events it found."""
    predictor = load_predictor(checkpoint)
    fibre, planted = planted_fibre(seconds, length_m)
    summary = MonitorSummary("simulated fibre")
    settings = predictor.monitor_settings()
    started = time.perf_counter()
    events = list(monitor(fibre.chunks(), predictor.predict_spectra, settings, summary))
    total = time.perf_counter() - started
    found = sum(any(abs(e.time_s - t) < 0.1 and abs(e.channel - (c + 2.5)) <= 6 for e in events) for t, c, _ in planted)
    return {
        "length_km": length_m / 1000, "dx_m": fibre.dx, "fs_hz": fibre.fs, "seconds": seconds, "channels": fibre.n_channels,
        "wall_s": summary.wall_s, "generate_s": summary.source_s, "end_to_end_s": total,
        "real_time_factor": summary.real_time_factor, "planted": len(planted), "found": int(found), "events": len(events),
    }  # fmt: skip
