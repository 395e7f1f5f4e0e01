"""The service part of ``railwatch demo``: the four modules' jobs through the service's pool into a store, and the report.

The inputs are what the other demo parts made: unseen fastener crops and the KD-GAN, a generated
rail-surface strip and the surface FCN, a simulated DAS recording with hammer blows and the
transfer FFI model, and the generated cab clip with the packaged segmenter and detector. Each is
submitted as a job, exactly as ``POST /api/jobs`` does, to a store in ``out`` (SQLite), and a
self-contained HTML report of the four runs is written. ``railwatch serve --data out`` shows
the same events on the dashboard.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from railwatch.cli_support import console
from railwatch.service.jobs import JobPool
from railwatch.service.report import write_report
from railwatch.service.runners import ServiceModels
from railwatch.service.store import EventStore, default_url

LINE = "DEMO-1"
CHAINAGE_KM = {"fasteners": 3.2, "surface": 5.0, "vibration": 7.0, "intrusion": 9.4}
"""Where along the demo line each input was taken."""


def _das_recording(path: Path, seed: int) -> Path:
    """A 6 s DAS recording (200 channels of 2 m) with three simulated hammer blows, written by DASCore."""
    import dascore

    from railwatch.vibration.simulate import simulate_hammer_tests
    from railwatch.vibration.stream import SimulatedFibre

    blows = simulate_hammer_tests(repeats=1, seed=seed)
    fibre = SimulatedFibre(duration_s=6.0, length_m=400.0, dx=2.0, chunk_s=6.0, noise_std=0.05, hum_amplitude=0.02, seed=seed)
    for k, (event, channel) in enumerate(zip((0, 3, 5), (30, 90, 150))):  # C1, C4, C6: FFI 0, 2, 3
        fibre.plant(1.0 + 1.5 * k, channel, blows.das[event] / np.abs(blows.das[event]).max() * 20.0)
    data = next(fibre.chunks()).data
    times = dascore.to_datetime64("2026-11-21T08:00:00") + np.arange(data.shape[0]) * np.timedelta64(500, "us")
    coords = {"time": times, "distance": 2.0 * np.arange(data.shape[1])}
    dascore.Patch(data=data, coords=coords, dims=("time", "distance")).io.write(path, "dasdae")
    return path


def _upload(data: Path, source: Path, name: str) -> str:
    """Copy a demo input into the data folder's uploads, as the API does; its path relative to the data folder."""
    target = data / "uploads" / name
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return target.relative_to(data).as_posix()


def run_service_demo(out: Path, demo: Path, seed: int = 7) -> dict[str, Any]:
    """Submit the four modules' demo inputs as jobs, store their events in ``out``, write ``out/reports/report.html``."""
    data = out.resolve()
    data.mkdir(parents=True, exist_ok=True)
    models = ServiceModels(
        fasteners=demo / "fasteners" / "model" / "best.pt", surface=demo / "surface" / "model" / "best.pt",
        vibration=demo / "vibration" / "transfer" / "best.pt", camera=demo / "clip" / "input" / "camera.yaml",
    )  # fmt: skip
    strips = sorted((demo / "surface" / "data").glob("*/Rail surface images/*.jpg"))
    inputs = {
        "fasteners": _upload(data, demo / "fasteners" / "shown", "fasteners"),
        "surface": _upload(data, strips[-1], f"surface/{strips[-1].name}"),
        "vibration": _upload(data, _das_recording(demo / "vibration" / "fibre.h5", seed), "vibration/fibre.h5"),
        "intrusion": _upload(data, demo / "clip" / "input" / "frames", "intrusion/frames"),
    }
    store = EventStore(default_url(data))
    pool = JobPool(store, data, models, workers=2)
    options = {"fasteners": {"rule": "f1"}, "intrusion": {"train_speed_mps": 8.0}}  # f1: the demo's small KD-GAN flags at its best-F1 threshold
    jobs = {m: pool.submit(m, path, options.get(m, {}), LINE, CHAINAGE_KM[m]) for m, path in inputs.items()}
    pool.wait()
    pool.shutdown()
    finished = {m: store.get_job(j) for m, j in jobs.items()}
    failed = {m: j["error"] for m, j in finished.items() if j["status"] != "done"}
    if failed:
        raise RuntimeError(f"demo jobs failed: {failed}")
    runs = [j["run_id"] for j in finished.values()]
    report = write_report(store, data, runs, data / "reports" / "report.html")
    counts = {m: store.count_events(run_id=j["run_id"]) for m, j in finished.items()}
    store.close()
    console.print(
        f"[bold]service[/]: 4 jobs stored {sum(counts.values())} events in {default_url(data)} ("
        + ", ".join(f"{m} {n}" for m, n in counts.items())
        + f"); report: {report}"
    )
    console.print(f"  dashboard on the same data: railwatch serve --data {out} , then open http://127.0.0.1:8000/")
    return {"events": counts, "runs": runs, "report": str(report.relative_to(data.parent)) if report.is_relative_to(data.parent) else str(report)}
