"""What a service job does for each module: run it on the submitted input and turn its results into events.

Each runner takes the job's input (a path inside the service's data folder), a folder for the
pictures it makes, and the job's settings, and returns the events (dicts in the
:class:`~railwatch.service.store.EventStore` layout) and a summary. Pictures are stored relative
to the data folder, so the service can serve them and the report can embed them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from railwatch.errors import InputError

LEVELS = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5}
"""Risk levels of paper 003 as numbers: 1 (I, most severe) to 5 (V, log only)."""


@dataclass
class ServiceModels:
    """Model files the service scores with; the intrusion pipeline falls back to railwatch's packaged ones."""

    fasteners: Path | None = None
    surface: Path | None = None
    vibration: Path | None = None
    camera: Path | None = None  # camera YAML for intrusion videos


@dataclass
class JobContext:
    """Where a job reads and writes: the data folder, its input, its picture folder, its place on the line."""

    data_dir: Path
    input_path: Path
    out_dir: Path
    models: ServiceModels
    options: dict[str, Any] = field(default_factory=dict)
    line_id: str | None = None
    chainage_km: float | None = None

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.data_dir.resolve()).as_posix()

    def model(self, module: str) -> Path:
        path = getattr(self.models, module)
        if path is None:
            raise InputError(f"no {module} model configured: start the service with --{module}-model FILE")
        return path

    def base(self) -> dict[str, Any]:
        return {"line_id": self.line_id, "source": self.input_path.name}


Runner = Callable[[JobContext], tuple[list[dict[str, Any]], dict[str, Any]]]


def run_fasteners(job: JobContext) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score a crop or a folder of crops; one event per crop, anomalous ones with a Grad-CAM heatmap."""
    from railwatch.fasteners.data import read_crops
    from railwatch.fasteners.explain import write_heatmaps
    from railwatch.fasteners.infer import FastenerDetector

    detector = FastenerDetector.from_checkpoint(job.model("fasteners"))
    crops = read_crops(job.input_path, detector.image_size)
    verdicts = detector.judge(crops, job.options.get("rule", "sigma"))
    flagged = [i for i, v in enumerate(verdicts) if v.anomalous]
    names = [Path(crops.sources[i]).stem for i in flagged]
    pictures = write_heatmaps(detector, crops.images[flagged], names, job.out_dir) if flagged else []
    picture_of = dict(zip(flagged, pictures))
    events = []
    for i, v in enumerate(verdicts):
        picture = picture_of.get(i)
        events.append({
            **job.base(), "key": f"crop:{Path(v.source).name}", "kind": "fastener_verdict", "chainage_km": job.chainage_km,
            "level": int(v.anomalous), "score": float(v.score), "label": "anomalous" if v.anomalous else "normal",
            "details": v.to_dict(), "picture": None if picture is None else job.relative(Path(picture)),
        })  # fmt: skip
    return events, {"crops": len(verdicts), "anomalous": len(flagged), "model": detector.model}


def run_surface(job: JobContext) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Segment a full-length rail image; one event per defect, with the image's overlay."""
    from PIL import Image

    from railwatch.imageio import write_image
    from railwatch.surface.infer import SurfaceSegmenter, overlay, segment_file

    segmenter = SurfaceSegmenter.load(job.model("surface"))
    image, result = segment_file(segmenter, job.input_path, job.options.get("threshold", 0.5), job.options.get("min_area", 4))
    picture = write_image(overlay(image, result), job.out_dir / f"{job.input_path.stem}_overlay.png")
    write_image(Image.fromarray(result.mask.astype("uint8") * 255), job.out_dir / f"{job.input_path.stem}_mask.png")
    mm_per_px = float(job.options.get("mm_per_px", 1.0))
    events = []
    for n, d in enumerate(result.defects):
        chainage = None if job.chainage_km is None else job.chainage_km + d.row_start * mm_per_px / 1e6
        events.append({
            **job.base(), "key": f"defect:{n}", "kind": "surface_defect", "chainage_km": chainage, "level": 1,
            "score": float(d.mean_probability), "label": f"defect {d.length_px} px long", "details": d.to_dict(),
            "picture": job.relative(picture),
        })  # fmt: skip
    return events, {"defects": len(result.defects), "defect_pixels": int(result.mask.sum()), "model": segmenter.name}


def run_vibration(job: JobContext) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Stream a DAS recording through the monitor; one event per impact with its FFI."""
    from railwatch.vibration.dasio import iter_chunks, read_das
    from railwatch.vibration.infer import load_predictor
    from railwatch.vibration.monitor import MonitorSummary, monitor

    predictor = load_predictor(job.model("vibration"))
    record = read_das(job.input_path)
    settings = predictor.monitor_settings()
    summary = MonitorSummary(job.input_path.name)
    found = list(monitor(iter_chunks(record, chunk_s=settings.chunk_s), predictor.predict_spectra, settings, summary, job.input_path.name))
    start = None if record.start is None else record.start.astype("datetime64[us]").item().replace(tzinfo=timezone.utc)
    events = []
    for e in found:
        chainage = None if job.chainage_km is None else job.chainage_km + e.distance_m / 1000.0
        events.append({
            **job.base(), "key": f"impact:{e.channel}:{e.time_s:.4f}", "kind": "das_section", "chainage_km": chainage,
            "time": start + timedelta(seconds=e.time_s) if start else None, "level": e.level, "score": float(e.ffi),
            "label": f"FFI {e.ffi:.2f} (section {e.section})", "details": e.to_dict(),
        })  # fmt: skip
    return events, summary.to_dict()


def run_intrusion(job: JobContext) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the intrusion pipeline on a video; one event per level change of a tracked object."""
    from railwatch.camera import load_camera
    from railwatch.config import RailwatchConfig
    from railwatch.intrusion.det_cli import load_detector
    from railwatch.intrusion.far_field import with_far_field
    from railwatch.intrusion.pipeline import run_pipeline
    from railwatch.intrusion.seg_cli import load_segmenter

    if job.models.camera is None:
        raise InputError("no camera configured: start the service with --camera camera.yaml")
    cfg = RailwatchConfig().intrusion
    cfg = cfg.model_copy(update={"camera": load_camera(job.models.camera)})
    speed = job.options.get("train_speed_mps")
    if speed is not None:
        cfg = cfg.model_copy(update={"tracking": cfg.tracking.model_copy(update={"train_speed_mps": float(speed)})})
    detector = with_far_field(load_detector(None, cfg.det_infer), cfg)
    summary = run_pipeline(job.input_path, job.out_dir, load_segmenter(None), detector, cfg, progress=False)
    events = []
    frames = job.out_dir / "frames"
    for line in (job.out_dir / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        picture = frames / f"{e['frame']:06d}.png"
        events.append({
            **job.base(), "key": f"track:{e['track_id']}:frame:{e['frame']}", "kind": "intrusion_alert",
            "chainage_km": job.chainage_km, "level": LEVELS[e["level"]], "score": float(e["z"]),
            "label": f"{e['class']} level {e['level']}: {e['action']}", "details": e,
            "picture": job.relative(picture) if picture.is_file() else None,
        })  # fmt: skip
    return events, {k: summary[k] for k in ("frames", "events", "events_per_level") if k in summary}


RUNNERS: dict[str, Runner] = {"fasteners": run_fasteners, "surface": run_surface, "vibration": run_vibration, "intrusion": run_intrusion}
