"""What inference preparation buys: each network as trained (eval mode) against prepared for inference.

:func:`railwatch.nn.inference.prepare_for_inference` folds batch norms into their convolutions
and keeps the weights channels-last; the loaders of the track segmenter, the detector and the
surface segmenter apply it. Here both forms of each network run the same input in turns
(batch and size as the tool uses them), so a busy machine slows them alike, and the table gives
milliseconds per call, the speed-up, and the largest output difference.

- ``bisenetv2``: the packaged track segmenter, one 512x1024 frame;
- ``st-yolo``: the packaged detector, one 320x640 frame (decoded outputs);
- ``yolov8s``: the baseline detector (random weights and batch-norm statistics), the same frame;
- ``fcn-type1`` / ``fcn-type2``: the surface FCN (random weights), a batch of 16 tiles
  (100x160 / 100x55 grey).

Nothing is asserted; run from the repository root::

    .venv/bin/python benchmarks/inference.py [--threads 2] [--repeats 15]

Figures go to ``benchmarks/results/inference.json``; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from common import images_per_second, write_report
from torch import nn

from railwatch.nn.inference import prepare_for_inference

DEFAULT_OUT = Path("benchmarks/results/inference.json")


def _with_statistics(net: nn.Module) -> nn.Module:
    """A randomly initialised ``net`` given batch-norm statistics away from 0 and 1, in eval mode."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
    return net.eval()


def networks() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """Each network as trained (eval mode) with the input it is timed on."""
    from railwatch.intrusion.det.infer import load_detector_net
    from railwatch.intrusion.det.model import DecodedDetector, build_detector
    from railwatch.intrusion.det_cli import packaged_detector
    from railwatch.intrusion.seg.infer import load_segmenter_net
    from railwatch.intrusion.seg_cli import packaged_weights as packaged_segmenter
    from railwatch.surface.models import build_surface_model

    torch.manual_seed(0)
    segmenter, seg_cfg, _ = load_segmenter_net(packaged_segmenter())
    detector, det_cfg, _ = load_detector_net(packaged_detector())
    frame = torch.rand(1, 3, det_cfg.input_height, det_cfg.input_width)
    yolov8s = _with_statistics(DecodedDetector(build_detector(det_cfg.model_copy(update={"arch": "yolov8s"}))))
    return {
        "bisenetv2": (segmenter, torch.rand(1, 3, seg_cfg.input_height, seg_cfg.input_width)),
        "st-yolo": (detector, frame),
        "yolov8s": (yolov8s, frame),
        "fcn-type1": (_with_statistics(build_surface_model("fcn-type1")), torch.rand(16, 3, 100, 160)),
        "fcn-type2": (_with_statistics(build_surface_model("fcn-type2")), torch.rand(16, 3, 100, 55)),
    }


@torch.inference_mode()
def compare(name: str, net: nn.Module, x: torch.Tensor, repeats: int) -> dict[str, Any]:
    """Median ms of the trained and the prepared network, timed in turns, and their largest output difference."""
    prepared = prepare_for_inference(copy.deepcopy(net))
    diff = (prepared(x) - net(x)).abs().max().item()
    runs = {"trained": lambda: net(x), "prepared": lambda: prepared(x)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for run in runs.values():
        run()
    for _ in range(repeats):
        for kind, run in runs.items():
            times[kind].append(1000 / images_per_second(run, 1, warmup=0))
    trained, fast = statistics.median(times["trained"]), statistics.median(times["prepared"])
    print(f"{name}: {trained:.1f} -> {fast:.1f} ms ({trained / fast:.2f}x)", flush=True)
    return {"input": list(x.shape), "trained_ms": trained, "prepared_ms": fast, "speedup": trained / fast, "max_abs_diff": diff}


def markdown(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| network | input | as trained (ms) | prepared (ms) | speed-up | max output difference |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for name, r in results.items():
        shape = "x".join(str(s) for s in r["input"])
        lines.append(
            f"| {name} | {shape} | {r['trained_ms']:.1f} | {r['prepared_ms']:.1f} | {r['speedup']:.2f}x | {r['max_abs_diff']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=15, help="timed calls of each form")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    results = {name: compare(name, net, x, args.repeats) for name, (net, x) in networks().items()}
    settings = {"threads": args.threads, "repeats": args.repeats}
    write_report(args.out, "inference", settings, {"results": results}, markdown(results), started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
