"""Object detection on generated cab-view scenes: ST-YOLO against YOLOv8s, trained the same way.

1. **Data.** The scene sets of the track-segmentation benchmark (:func:`common.scene_sets`): a
   training set in all five weathers (seed 0) and a held-out set with other seeds in fog, rain
   and night, YOLO labels for people, cars, animals and stones.
2. **Training.** ST-YOLO (ShuffleNetV2 + SE, DilateFormer r = 1) and YOLOv8s are trained by
   :func:`railwatch.intrusion.det.train.train_detector` with the same input size, augmentation,
   loss, schedule, steps, batch size and seed; the best validation mAP@0.5 checkpoint is kept.
3. **Accuracy** on the held-out set (:func:`railwatch.intrusion.det.evaluate.evaluate_detector`):
   mAP@0.5, mAP@0.5:0.95, precision and recall (score 0.25, IoU 0.5), per class.
4. **Cost** at the training input size: parameters, GFLOPs (2 per multiply-add), CPU images/s
   with torch (eval, no grad) and ONNX Runtime, batch 1, median of ``--repeats`` runs.
5. **Ratios** ST-YOLO / YOLOv8s: parameters, throughput, and the mAP@0.5 difference in points.

Nothing is asserted; run from the repository root::

    .venv/bin/python benchmarks/detector.py [--steps 1500] [--quick]

Figures go to ``benchmarks/results/detector.json``; a markdown table is printed.
``--keep-best PATH`` copies the ST-YOLO checkpoint there (how the packaged detector is made).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from common import images_per_second, recorded_train_seconds, scene_sets, write_report

from railwatch.config import DetAugmentConfig, DetModelConfig, DetTrainConfig
from railwatch.export import export_onnx, onnx_session
from railwatch.intrusion.det.evaluate import evaluate_detector
from railwatch.intrusion.det.infer import Detector
from railwatch.intrusion.det.model import build_detector
from railwatch.intrusion.det.train import train_detector
from railwatch.intrusion.models import count_gflops, count_params

DEFAULT_OUT = Path("benchmarks/results/detector.json")
TEST_WEATHERS = ("fog", "rain", "night")
MODELS = ("st-yolo", "yolov8s")
TRAIN_SECONDS = "train_seconds.txt"
"""Written into a run's folder when its training ends: the seconds it took."""


def costs(detectors: dict[str, Detector], work: Path, repeats: int, threads: Sequence[int]) -> dict[str, dict[str, Any]]:
    """Parameters, GFLOPs and CPU images/s (torch and ONNX Runtime) at each detector's input size.

    Both runtimes time the network as :meth:`Detector.load` prepares it (batch norms folded,
    channels-last); parameters and FLOPs are those of the network as trained. Speed is measured
    with each of ``threads`` CPU threads (``by_threads``); the top-level figures are those of
    the largest count.

    The timed runs of the models alternate, so a busy machine slows them alike.
    """
    out: dict[str, dict[str, Any]] = {}
    exported: dict[str, tuple[torch.nn.Module, torch.Tensor, Path]] = {}
    for name, detector in detectors.items():
        net, size = detector.net.cpu().eval(), detector.input_size
        x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
        exported[name] = (net, x, export_onnx(net, x, work / f"{name}.onnx", output_names=("detections",)))
        trained = build_detector(detector.cfg)  # counted as trained: batch norms not folded
        out[name] = {"params": count_params(trained), "gflops": count_gflops(trained, size), "threads": max(threads), "by_threads": {}}
    default_threads = torch.get_num_threads()
    try:
        for n in threads:
            torch.set_num_threads(n)
            runs: dict[str, dict[str, Callable[[], Any]]] = {}
            for name, (net, x, path) in exported.items():
                session = onnx_session(path, threads=n)
                feed = {session.get_inputs()[0].name: x.numpy()}
                runs[name] = {
                    "torch_cpu_img_s": partial(_forward, net, x),
                    "onnxruntime_cpu_img_s": partial(session.run, None, feed),
                }
            for name, speeds in _timed_in_turns(runs, repeats).items():
                out[name]["by_threads"][str(n)] = speeds
    finally:
        torch.set_num_threads(default_threads)
    for figures in out.values():
        figures.update(figures["by_threads"][str(max(threads))])
    return out


def _forward(net: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        net(x)


def _timed_in_turns(runs: dict[str, dict[str, Callable[[], Any]]], repeats: int) -> dict[str, dict[str, float]]:
    """Median images/s of every model's runs of each kind, the models timed in turns."""
    out: dict[str, dict[str, float]] = {name: {} for name in runs}
    for kind in next(iter(runs.values())):
        speeds: dict[str, list[float]] = {name: [] for name in runs}
        for run in runs.values():
            run[kind](), run[kind]()  # warm-up
        for _ in range(repeats):
            for name, run in runs.items():
                speeds[name].append(images_per_second(run[kind], 1, warmup=0))
        for name, values in speeds.items():
            out[name][kind] = statistics.median(values)
    return out


def markdown(results: dict[str, Any]) -> str:
    """One row per model, then ST-YOLO / YOLOv8s ratios."""
    lines = [
        "| model | params (M) | GFLOPs | torch img/s | ORT img/s | mAP@0.5 | mAP@0.5:0.95 | P | R |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, r in results["models"].items():
        a, c = r["accuracy"], r["cost"]
        lines.append(
            f"| {name} | {c['params'] / 1e6:.2f} | {c['gflops']:.1f} | {c['torch_cpu_img_s']:.2f} | "
            f"{c['onnxruntime_cpu_img_s']:.2f} | {a['map50']:.3f} | {a['map']:.3f} | {a['precision']:.3f} | {a['recall']:.3f} |"
        )
    ours, base = results["models"].get("st-yolo"), results["models"].get("yolov8s")
    if ours and base:
        oc, bc = ours["cost"], base["cost"]
        ratios = {
            "params": oc["params"] / bc["params"],
            "gflops": oc["gflops"] / bc["gflops"],
            "torch_speed": oc["torch_cpu_img_s"] / bc["torch_cpu_img_s"],
            "ort_speed": oc["onnxruntime_cpu_img_s"] / bc["onnxruntime_cpu_img_s"],
            "map50_points": 100 * (ours["accuracy"]["map50"] - base["accuracy"]["map50"]),
        }
        by_threads = {
            n: {kind: speeds[kind] / bc["by_threads"][n][kind] for kind in speeds}
            for n, speeds in oc.get("by_threads", {}).items()
        }
        results["ratios"] = {**ratios, "speed_by_threads": by_threads}
        lines += [
            "",
            f"ST-YOLO / YOLOv8s: params {ratios['params']:.2f}x, GFLOPs {ratios['gflops']:.2f}x, "
            f"CPU speed {ratios['torch_speed']:.2f}x (torch) / {ratios['ort_speed']:.2f}x (ORT), "
            f"mAP@0.5 {ratios['map50_points']:+.1f} points.",
        ]
        for n, r in by_threads.items():
            lines.append(
                f"CPU speed with {n} thread{'s' if n != '1' else ''}: {r['torch_cpu_img_s']:.2f}x (torch) / "
                f"{r['onnxruntime_cpu_img_s']:.2f}x (ORT)."
            )
        lines.append("")
        lines.append("| class | " + " | ".join(f"{m} AP@0.5" for m in results["models"]) + " |")
        lines.append("|---|" + "--:|" * len(results["models"]))
        for cls in ours["accuracy"]["per_class"]:
            row = [results["models"][m]["accuracy"]["per_class"][cls]["map50"] for m in results["models"]]
            lines.append(f"| {cls} | " + " | ".join("-" if v < 0 else f"{v:.3f}" for v in row) + " |")
    return "\n".join(lines)


def train_seconds(run_dir: Path, out: Path, name: str) -> float | None:
    """How long ``name`` trained: as its run folder records it (so models trained by separate
    processes, ``--models st-yolo`` beside ``--models yolov8s``, can be reported together by one
    ``--reuse`` run), else as an earlier report at ``out`` did."""
    try:
        return float((run_dir / TRAIN_SECONDS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return recorded_train_seconds(out, name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--work", type=Path, default=Path("benchmarks/work/track_seg"), help="scene sets (shared)")
    parser.add_argument("--runs", type=Path, default=Path("benchmarks/work/detector"), help="training runs")
    parser.add_argument("--train-images", type=int, default=800)
    parser.add_argument("--val-images", type=int, default=40)
    parser.add_argument("--test-images", type=int, default=100)
    parser.add_argument("--input-size", default="320x640", help="HxW the detectors see")
    parser.add_argument("--steps", type=int, default=1500, help="training steps per model")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--val-every", type=int, default=250, help="validate every N steps")
    parser.add_argument("--precision", default="32-true",
                        help="Lightning precision of training; bf16-mixed trains 2-3x faster on CPUs with AMX")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=10, help="timed inference runs per model")
    parser.add_argument("--threads", default=f"1,{torch.get_num_threads()}", help="comma-separated CPU thread counts to time at")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of st-yolo,yolov8s")
    parser.add_argument("--reuse", action="store_true", help="evaluate existing runs instead of training (their recorded training time is kept)")
    parser.add_argument("--quick", action="store_true", help="tiny data and few steps: a smoke run, not figures")
    parser.add_argument("--keep-best", type=Path, help="copy the ST-YOLO checkpoint here")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.work, args.runs = args.work.with_name("detector_quick"), args.runs.with_name("detector_quick_runs")
        args.train_images, args.val_images, args.test_images, args.steps, args.repeats, args.val_every = 16, 4, 4, 4, 2, 2
    height, width = (int(v) for v in args.input_size.split("x"))
    started = time.perf_counter()
    train_dir, test_dir = scene_sets(args.work, args.train_images, args.val_images, args.test_images, TEST_WEATHERS)
    train_cfg = DetTrainConfig(
        epochs=10_000, max_steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=0, num_workers=2,
        val_every_steps=args.val_every, warmup_steps=min(100, args.steps // 10), precision=args.precision,
    )  # fmt: skip
    augment = DetAugmentConfig()
    results: dict[str, Any] = {"models": {}}
    detectors: dict[str, Detector] = {}
    for name in args.models.split(","):
        model_cfg = DetModelConfig(arch=name, input_height=height, input_width=width)
        run_dir = args.runs / name
        t0 = time.perf_counter()
        if not args.reuse:
            train_detector(train_dir, run_dir, model_cfg, train_cfg, augment)
            (run_dir / TRAIN_SECONDS).write_text(f"{time.perf_counter() - t0:.1f}\n", encoding="utf-8")
        detector = Detector.load(run_dir / "best.pt")
        results["models"][name] = {
            "settings": model_cfg.model_dump(mode="json"),
            "train_seconds": train_seconds(run_dir, args.out, name),
            "best_validation": detector.meta.get("metrics", {}),
            "accuracy": evaluate_detector(detector, test_dir, "val"),
        }
        detectors[name] = detector
        if name == "st-yolo" and args.keep_best:
            args.keep_best.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / "best.pt", args.keep_best)
    for name, figures in costs(detectors, args.runs, args.repeats, sorted({int(n) for n in args.threads.split(',')})).items():
        results["models"][name]["cost"] = figures
    settings = {
        "train_images": args.train_images,
        "val_images": args.val_images,
        "test_images": args.test_images,
        "test_weathers": list(TEST_WEATHERS),
        "input_size": [height, width],
        "train": train_cfg.model_dump(mode="json"),
        "augment": augment.model_dump(mode="json"),
        "quick": args.quick,
    }
    write_report(args.out, "detector", settings, results, markdown(results), started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
