"""Track segmentation on generated cab-view scenes: BiSeNetV2 against a plain FCN, trained the same way.

1. **Data.** A training set (all five weathers, seed 0) and a held-out test set with other
   seeds and harsher weather (fog, rain and night only) are rendered with
   :func:`railwatch.data.scenes.write_scene_dataset` at 512x1024.
2. **Training.** BiSeNetV2 (the shipped small form: 128-wide pixel-shuffle head) and the plain
   FCN are trained by :func:`railwatch.intrusion.seg.train.train_segmenter` with the same crops,
   schedule, steps, batch size and seed; the best validation checkpoint of each is kept.
3. **Accuracy** on the held-out set (:func:`railwatch.intrusion.seg.evaluate.evaluate_segmenter`):
   per-class IoU and mIoU, and the lateral offset error of every object within 30 m whose foot
   row the ego rails fitted on the predicted mask cover (paper 003, Eq. 9-13).
4. **Cost** at 512x1024: parameters, GFLOPs (torch's FLOP counter, 2 per multiply-add), and
   images per second on this CPU with torch (eval, no grad) and with ONNX Runtime, batch 1,
   median of ``--repeats`` runs after two warm-up runs.

Nothing is asserted; run from the repository root::

    .venv/bin/python benchmarks/track_seg.py [--steps 1000] [--quick]

Figures and settings go to ``benchmarks/results/track_seg.json``; a markdown table is printed.
``--keep-best PATH`` copies the BiSeNetV2 checkpoint there (how the packaged model is made).
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from common import images_per_second, recorded_train_seconds, scene_sets, write_report

from railwatch.config import SegModelConfig, SegTrainConfig
from railwatch.data.scenes import SCENE_CAMERA, WEATHERS
from railwatch.export import export_onnx, onnx_session
from railwatch.intrusion.models import count_gflops, count_params
from railwatch.intrusion.seg.evaluate import evaluate_segmenter
from railwatch.intrusion.seg.infer import Segmenter
from railwatch.intrusion.seg.model import build_segmenter
from railwatch.intrusion.seg.train import train_segmenter

DEFAULT_OUT = Path("benchmarks/results/track_seg.json")
TEST_WEATHERS = ("fog", "rain", "night")
MODELS: dict[str, dict[str, Any]] = {
    "bisenetv2": {"arch": "bisenetv2", "head_channels": 128, "upsample": "shuffle"},
    "fcn": {"arch": "fcn"},
}


def cost(segmenter: Segmenter, work: Path, name: str, repeats: int) -> dict[str, Any]:
    """Parameters, GFLOPs and CPU images/s (torch and ONNX Runtime) at the model's input size."""
    net, size = segmenter.net.cpu().eval(), segmenter.input_size
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    path = export_onnx(net, x, work / f"{name}.onnx")
    session = onnx_session(path)
    feed = {session.get_inputs()[0].name: x.numpy()}

    def run_torch() -> None:
        with torch.no_grad():
            net(x)

    trained = build_segmenter(segmenter.cfg, aux=False)  # counted as trained: batch norms not folded
    return {
        "params": count_params(trained),
        "gflops": count_gflops(trained, size),
        "torch_cpu_img_s": images_per_second(run_torch, repeats),
        "onnxruntime_cpu_img_s": images_per_second(lambda: session.run(None, feed), repeats),
        "threads": torch.get_num_threads(),
    }


def markdown(results: dict[str, Any]) -> str:
    """One row per model: accuracy beside cost."""
    lines = [
        "| model | params (M) | GFLOPs | torch img/s | ORT img/s | rail IoU | track IoU | mIoU | offset err median / p95 / max (mm), <= 30 m |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--|",
    ]
    for name, r in results["models"].items():
        acc, c, off = r["accuracy"], r["cost"], r["accuracy"]["offset_error_mm"]
        offsets = f"{off['median']:.0f} / {off['p95']:.0f} / {off['max']:.0f} ({acc['objects_placed']} placed, {acc['objects_missed']} not)" if off else "-"
        lines.append(
            f"| {name} | {c['params'] / 1e6:.2f} | {c['gflops']:.1f} | {c['torch_cpu_img_s']:.2f} | "
            f"{c['onnxruntime_cpu_img_s']:.2f} | {acc['iou']['rail']:.3f} | {acc['iou']['track']:.3f} | "
            f"{acc['miou']:.3f} | {offsets} |"
        )
    base = results["models"].get("fcn")
    ours = results["models"].get("bisenetv2")
    if base and ours:
        lines.append("")
        lines.append(
            f"BiSeNetV2 / FCN: rail IoU {ours['accuracy']['iou']['rail'] / max(base['accuracy']['iou']['rail'], 1e-9):.2f}x, "
            f"ORT speed {ours['cost']['onnxruntime_cpu_img_s'] / base['cost']['onnxruntime_cpu_img_s']:.2f}x."
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--work", type=Path, default=Path("benchmarks/work/track_seg"), help="data and runs")
    parser.add_argument("--train-images", type=int, default=800)
    parser.add_argument("--val-images", type=int, default=40)
    parser.add_argument("--test-images", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000, help="training steps per model")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--repeats", type=int, default=10, help="timed inference runs per model")
    parser.add_argument("--models", default="bisenetv2,fcn", help="comma-separated subset of bisenetv2,fcn")
    parser.add_argument("--reuse", action="store_true", help="evaluate existing runs instead of training (their recorded training time is kept)")
    parser.add_argument("--quick", action="store_true", help="tiny data and few steps: a smoke run, not figures")
    parser.add_argument("--keep-best", type=Path, help="copy the BiSeNetV2 checkpoint here")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.train_images, args.val_images, args.test_images, args.steps, args.repeats = 16, 4, 4, 4, 2
    started = time.perf_counter()
    train_dir, test_dir = scene_sets(args.work, args.train_images, args.val_images, args.test_images, TEST_WEATHERS)
    train_cfg = SegTrainConfig(
        epochs=10_000, max_steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=0, num_workers=2, accelerator="auto"
    )
    results: dict[str, Any] = {"models": {}}
    for name in args.models.split(","):
        model_cfg = SegModelConfig(**MODELS[name])
        run_dir = args.work / name
        t0 = time.perf_counter()
        if not args.reuse:
            train_segmenter(train_dir, run_dir, model_cfg, train_cfg)
        train_s = time.perf_counter() - t0
        segmenter = Segmenter.load(run_dir / "best.pt")
        accuracy = evaluate_segmenter(segmenter, test_dir, "val", max_distance_m=30.0).summary()
        results["models"][name] = {
            "settings": model_cfg.model_dump(mode="json"),
            "train_seconds": recorded_train_seconds(args.out, name) if args.reuse else round(train_s, 1),
            "best_validation": segmenter.meta.get("metrics", {}),
            "accuracy": accuracy,
            "cost": cost(segmenter, args.work, name, args.repeats),
        }
        if name == "bisenetv2" and args.keep_best:
            args.keep_best.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run_dir / "best.pt", args.keep_best)
    settings = {
        "train_images": args.train_images,
        "val_images": args.val_images,
        "test_images": args.test_images,
        "train_weathers": list(WEATHERS),
        "test_weathers": list(TEST_WEATHERS),
        "train": train_cfg.model_dump(mode="json"),
        "camera": SCENE_CAMERA.model_dump(),
        "quick": args.quick,
    }
    write_report(args.out, "track_seg", settings, results, markdown(results), started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
