"""The intrusion pipeline on generated clips: do its levels match the truth's?

For each seed, :func:`railwatch.data.scene_clips.random_clip_spec` draws a clip (people and
animals walking onto the track, the train moving), :func:`railwatch.data.scene_clips.write_clip`
renders it with the true level of every object in every frame, and
:func:`railwatch.intrusion.pipeline.run_pipeline` runs the packaged segmenter and detector (or
``--detector``) over it. :func:`railwatch.intrusion.clip_eval.level_agreement` then counts the
object-frames within 50 m whose level the pipeline got right (a missed object counts as wrong),
and, separately, among the objects the pipeline graded.

Nothing is asserted; run from the repository root::

    .venv/bin/python benchmarks/pipeline.py [--clips 3] [--frames 40]

Figures go to ``benchmarks/results/pipeline.json``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import write_report

from railwatch.config import RailwatchConfig
from railwatch.data.scene_clips import random_clip_spec, write_clip
from railwatch.demo_clip import DEMO_DETECTOR_SETTINGS
from railwatch.intrusion.clip_eval import level_agreement
from railwatch.intrusion.det_cli import load_detector
from railwatch.intrusion.far_field import with_far_field
from railwatch.intrusion.pipeline import run_pipeline
from railwatch.intrusion.seg_cli import load_segmenter


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--work", type=Path, default=Path("benchmarks/work/pipeline"))
    parser.add_argument("--clips", type=int, default=3, help="clips, seeds 100, 101, ...")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--train-speed-mps", type=float, default=8.0)
    parser.add_argument("--detector", type=Path, help="detector checkpoint; the packaged one by default")
    parser.add_argument("--far-zoom", type=float, default=2.0, help="magnification of the far-field detector pass; 1: none")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/pipeline.json"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    base = RailwatchConfig().intrusion
    infer = base.det_infer.model_copy(update=DEMO_DETECTOR_SETTINGS)
    far = base.far_field.model_copy(update={"zoom": args.far_zoom})
    segmenter, detector = load_segmenter(None), load_detector(args.detector, infer)
    totals = {"object_frames": 0, "agree": 0, "graded": 0, "graded_agree": 0}
    clips: list[dict[str, Any]] = []
    for seed in range(100, 100 + args.clips):
        spec = random_clip_spec(seed, args.frames, args.fps, train_speed_mps=args.train_speed_mps)
        truth = write_clip(args.work / f"clip_{seed}", spec, progress=False)
        tracking = base.tracking.model_copy(update={"train_speed_mps": args.train_speed_mps})
        cfg = base.model_copy(update={"camera": spec.scene.camera, "tracking": tracking, "det_infer": infer, "far_field": far})
        run_dir = args.work / f"run_{seed}"
        summary = run_pipeline(truth.parent / "frames", run_dir, segmenter, with_far_field(detector, cfg), cfg, fps=args.fps, progress=False)
        a = level_agreement(run_dir / "tracks.jsonl", truth, max_distance_m=50.0)
        graded_agree = round(a["fraction_of_graded"] * a["graded"])
        totals = {k: totals[k] + v for k, v in zip(totals, (a["object_frames"], a["agree"], a["graded"], graded_agree))}
        clips.append({"seed": seed, "weather": spec.scene.weather, "agreement": a, "processed_fps": summary["processed_fps"],
                      "events": summary["events"], "objects_tracked": summary["objects_tracked"]})  # fmt: skip
    lines = ["| clip | weather | object-frames <= 50 m | detected and graded | level right | right among graded | frames/s |",
             "|---|---|--:|--:|--:|--:|--:|"]  # fmt: skip
    for c in clips:
        a = c["agreement"]
        lines.append(f"| {c['seed']} | {c['weather']} | {a['object_frames']} | {a['graded']} | {100 * a['fraction']:.0f}% | "
                     f"{100 * a['fraction_of_graded']:.0f}% | {c['processed_fps']:.2f} |")  # fmt: skip
    n, g = max(totals["object_frames"], 1), max(totals["graded"], 1)
    lines.append(f"| all | | {totals['object_frames']} | {totals['graded']} | {100 * totals['agree'] / n:.0f}% | "
                 f"{100 * totals['graded_agree'] / g:.0f}% | |")  # fmt: skip
    settings = {"clips": args.clips, "frames": args.frames, "fps": args.fps, "train_speed_mps": args.train_speed_mps,
                "detector": str(args.detector or "packaged"), "det_infer": infer.model_dump(mode="json"),
                "far_field": far.model_dump(mode="json")}  # fmt: skip
    results = {"clips": clips, "totals": totals}
    write_report(args.out, "pipeline", settings, results, "\n".join(lines), started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
