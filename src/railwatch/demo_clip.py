"""``railwatch demo``, the video half: a generated cab-view clip through the whole intrusion pipeline.

A clip with people and animals walking onto the track is rendered with its truth, then run
through :func:`railwatch.intrusion.pipeline.run_pipeline` with the packaged segmenter and
detector (segment, fit rails, detect, track, range, grade, raise events), and the levels the
pipeline gave are scored against the levels of the renderer's truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from railwatch.cli_support import console
from railwatch.config import RailwatchConfig
from railwatch.data.scene_clips import random_clip_spec, write_clip
from railwatch.intrusion.clip_eval import level_agreement
from railwatch.intrusion.pipeline import run_pipeline

CLIP_SEED = 4
CLIP_FRAMES = 30
CLIP_FPS = 10.0
TRAIN_SPEED_MPS = 8.0
DEMO_DETECTOR_SETTINGS = {"input_height": 512, "input_width": 1024, "conf_threshold": 0.1}


def run_clip_demo(out: Path, config: RailwatchConfig | None = None, seed: int = CLIP_SEED, frames: int = CLIP_FRAMES) -> dict[str, Any]:
    """Render the demo clip to ``out/input``, run the pipeline into ``out/run``, score it.

    Returns:
        The pipeline's summary with ``agreement`` (:func:`~railwatch.intrusion.clip_eval.level_agreement`
        within 50 m) added.
    """
    from railwatch.intrusion.det_cli import load_detector
    from railwatch.intrusion.far_field import with_far_field
    from railwatch.intrusion.seg_cli import load_segmenter

    config = config or RailwatchConfig()
    spec = random_clip_spec(seed, frames, CLIP_FPS, train_speed_mps=TRAIN_SPEED_MPS, weathers=("clear", "overcast"))
    truth = write_clip(out / "input", spec, progress=False)
    cfg = config.intrusion.model_copy(update={"camera": spec.scene.camera})
    cfg = cfg.model_copy(
        update={
            "tracking": cfg.tracking.model_copy(update={"train_speed_mps": TRAIN_SPEED_MPS}),
            # the whole frame (the detector trained at 320x640 sees far objects 1.6x larger), and
            # low-score boxes for ByteTrack to keep existing tracks alive with
            "det_infer": cfg.det_infer.model_copy(update=DEMO_DETECTOR_SETTINGS),
        }
    )
    summary = run_pipeline(
        out / "input" / "frames", out / "run", load_segmenter(None), with_far_field(load_detector(None, cfg.det_infer), cfg), cfg,
        fps=CLIP_FPS, progress=False, video=True,
    )  # fmt: skip
    agreement = level_agreement(out / "run" / "tracks.jsonl", truth, max_distance_m=50.0)
    summary["agreement"] = {k: agreement[k] for k in ("object_frames", "agree", "fraction")}
    _print_summary(summary, out)
    return summary


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    table = Table(title=f"Generated clip through the pipeline ({summary['frames']} frames)")
    table.add_column("")
    table.add_column("value", justify="right")
    agreement = summary["agreement"]
    table.add_row("objects tracked", str(summary["objects_tracked"]))
    table.add_row("events raised", ", ".join(f"{k}: {v}" for k, v in summary["events_per_level"].items() if v) or "none")
    table.add_row(
        "levels as in truth, within 50 m",
        f"{agreement['agree']} / {agreement['object_frames']} object-frames ({100 * agreement['fraction']:.0f}%)",
    )
    table.add_row("frames per second", f"{summary['processed_fps']:.1f}")
    console.print(table)
    console.print(f"wrote {out / 'run' / 'annotated.mp4'}, events.jsonl, tracks.jsonl, summary.json")
