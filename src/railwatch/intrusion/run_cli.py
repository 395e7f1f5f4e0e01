"""``railwatch intrusion run``: the whole intrusion pipeline on a video or a folder of frames."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from railwatch.cli_support import ConfigOption, JsonOption, console, one_line_errors, print_json, settings
from railwatch.errors import InputError


def run(
    source: Annotated[Path, typer.Argument(help="A video file (mp4, avi, ...) or a folder of frames (sorted by name).")],
    camera: Annotated[
        Path,
        typer.Option(
            "--camera",
            help="YAML file of the camera: width_px, height_px, focal_px, mount_height_m, pitch_deg (cx_px, cy_px optional).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for annotated frames, tracks, events and the summary.")],
    segmenter_weights: Annotated[
        Optional[Path], typer.Option("--segmenter", help="Segmenter checkpoint; defaults to the packaged BiSeNetV2.")
    ] = None,
    detector_weights: Annotated[
        Optional[Path], typer.Option("--detector", help="Detector checkpoint; defaults to the packaged ST-YOLO.")
    ] = None,
    fps: Annotated[
        Optional[float], typer.Option("--fps", help="Frame rate; default: the video's own, 25 for a folder.")
    ] = None,
    train_speed: Annotated[
        Optional[float],
        typer.Option("--train-speed-mps", help="Speed of the train carrying the camera, m/s (tracking.train_speed_mps)."),
    ] = None,
    far_zoom: Annotated[
        Optional[float],
        typer.Option(
            "--far-zoom",
            help="Magnification of the second detector pass over the track's far end (intrusion.far_field.zoom, 2); 1 turns it off.",
        ),
    ] = None,
    video: Annotated[bool, typer.Option("--video", help="Write annotated.mp4 instead of frames/*.png.")] = False,
    estimate_horizon: Annotated[
        bool, typer.Option("--estimate-horizon", help="Estimate the horizon from each frame's rails, not from the camera.")
    ] = False,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Grade intrusion risk frame by frame: segment, detect, track, range, grade, alert (paper 003).

    Per frame: rails from the segmenter, objects from the detector (on the whole frame and on a
    magnified window around the horizon, where far objects are, --far-zoom), ByteTrack ids, each
    object's lateral offset (Eq. 9-14) and distance (gauge ranging), its speed over the ground
    from its track, Z and level (Eq. 15-17, Table 4). A level change raises one event once it
    has held tracking.level_hold_frames frames. Writes OUT/frames/*.png (or annotated.mp4),
    tracks.jsonl (every object in every frame), events.jsonl and summary.json.
    """
    from railwatch.camera import load_camera
    from railwatch.intrusion.det_cli import load_detector
    from railwatch.intrusion.far_field import with_far_field
    from railwatch.intrusion.pipeline import run_pipeline
    from railwatch.intrusion.seg_cli import load_segmenter

    cam = load_camera(camera)
    cfg = settings(config, {"intrusion.tracking.train_speed_mps": train_speed, "intrusion.far_field.zoom": far_zoom}).intrusion
    cfg = cfg.model_copy(update={"camera": cam})
    if not source.exists():
        raise InputError(f"{source}: no such video file or image folder")
    detector = with_far_field(load_detector(detector_weights, cfg.det_infer), cfg)
    segmenter = load_segmenter(segmenter_weights)
    summary = run_pipeline(
        source,
        out,
        segmenter,
        detector,
        cfg,
        fps=fps,
        progress=not (quiet or as_json),
        video=video,
        horizon_from_camera=not estimate_horizon,
    )
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"{summary['frames']} frames of {source} -> {out}")
    for column in ("track", "class", "frames", "graded", "highest level (events)", "highest level (any frame)"):
        table.add_column(column)
    for tid, t in summary["tracks"].items():
        levels = (t["highest_level"] or "-", t["highest_frame_level"] or "-")
        table.add_row(tid, t["class"], str(t["frames"]), str(t["graded_frames"]), *levels)
    console.print(table)
    per_level = ", ".join(f"{name}: {n}" for name, n in summary["events_per_level"].items())
    no_ego = summary["frames_without_ego_track"]
    console.print(f"events: {summary['events']} ({per_level}); frames without an ego track: {no_ego}")
    console.print(
        f"object-frames: {summary['object_frames']}, {summary['coasted_object_frames']} of them at a predicted box "
        "(the detector missed the object; tracking.coast_s)"
    )
    timing = ", ".join(f"{name} {ms:.0f} ms" for name, ms in summary["timing"]["ms_per_frame"].items())
    console.print(f"processed {summary['processed_fps']:.2f} frames/s ({timing} per frame)")


def register(app: typer.Typer) -> None:
    """Add ``run`` to the ``intrusion`` group."""
    app.command("run")(one_line_errors(run))


__all__ = ["register"]
