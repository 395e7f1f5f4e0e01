"""Rail-surface defect segmentation, paper 002 Tables 5-7: k-fold CV of the modified FCN, FCN-8s and SegNet.

1. **Data.** Generated strips per rail type (:func:`railwatch.data.surface_strips.write_rsdds`,
   RSDDs layout: Type-I 160x1000, Type-II 55x1250, defects about 1% of the pixels), cut into
   100-row tiles (100x160 and 100x55) with masks thresholded at 127. By default as many strips
   as give the paper's tile counts (section 2.1.2: 709 Type 1 and 1408 Type 2 tiles, so 71 and
   118 strips); ``--strips N`` sets one count for both.
2. **Cross-validation** (:func:`railwatch.surface.cv.cross_validate`): the same ``--folds`` folds
   of each type's tiles for every network, with one budget: ``--steps`` steps of batch 16, Adam
   at ``--lr``, the same seed and precision. Each fold is scored with the network at the end of
   its budget on the fold left out: F1 and IoU of the defect class, validation loss and
   accuracy, and time per training step (forward, backward and update) on this machine.
3. **Tables 5-7** are printed per rail type, with the paper's bar: the modified FCN's mean F1
   >= 0.90 and IoU >= 0.80, and its step no slower than FCN-8s' and SegNet's.

Nothing is asserted; run from the repository root::

    .venv/bin/python benchmarks/surface.py [--steps 1500] [--folds 5] [--types type1,type2]

Results go to ``benchmarks/results/surface.json``, rewritten after every fold. A run that stops
(or is given a subset with ``--types``/``--models``) leaves what it finished, and the next run with
the same budget picks up from there: folds already in ``--out`` are not trained again, and a fold
cut off part way goes on from the ``last.ckpt`` it left, rewritten every 10 minutes of training
(``--fresh`` starts over). The whole comparison is long on a CPU (FCN-8s takes seconds a step), so it can be
run a piece at a time.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from common import compute_device, machine_info, write_report

from railwatch.config import SurfaceTrainConfig
from railwatch.data.surface_strips import RAIL_TYPES, write_rsdds
from railwatch.imageio import write_text
from railwatch.surface.cv import FoldScores, ModelCV, cross_validate, tables_markdown
from railwatch.surface.data import find_pairs, load_tiles

DEFAULT_OUT = Path("benchmarks/results/surface.json")
F1_BAR, IOU_BAR = 0.90, 0.80
PAPER_TILES = {"type1": 709, "type2": 1408}
"""Tiles of 100 rows the paper cut from RSDDs (section 2.1.2)."""
BUDGET_KEYS = ("strips", "folds", "steps", "batch_size", "lr", "lr_schedule", "lr_min", "precision", "device", "channels_last")
"""Settings that must match for folds of an earlier run to be reused."""
EARLIER_DEFAULTS = {"device": "cpu", "channels_last": False}  # what runs from before these were recorded used


def strip_count(rail_type: str, requested: int) -> int:
    """``requested``, or (when 0) the strips whose 100-row tiles reach the paper's tile count."""
    if requested > 0:
        return requested
    spec = RAIL_TYPES[rail_type]
    return math.ceil(PAPER_TILES[rail_type] / (spec.strip_height // spec.tile_height))


def strips(work: Path, rail_type: str, count: int) -> Path:
    """Generate (or reuse) ``count`` strips of ``rail_type`` under ``work``."""
    root = work / f"strips_{count}"
    folder = root / RAIL_TYPES[rail_type].folder / "Rail surface images"
    if not folder.is_dir() or len(list(folder.glob("*.jpg"))) != count:
        write_rsdds(root, rail_type, count, seed=0)
    return root


def finished_folds(out: Path, settings: dict[str, Any], quiet: bool = False) -> tuple[dict[str, list[ModelCV]], dict[str, Any]]:
    """The folds (per rail type) and data summary an earlier run with the same budget left in ``out``."""
    try:
        earlier = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}, {}
    if any(earlier.get("settings", {}).get(k, EARLIER_DEFAULTS.get(k)) != settings[k] for k in BUDGET_KEYS):
        if not quiet:
            print(f"{out} holds a run with another budget or device; starting over")
        return {}, {}
    # folds saved before the processor was recorded per fold were all timed on the file's machine
    timed_on = earlier.get("machine", {}).get("processor", "")
    results = {
        rail_type: [ModelCV(r["model"], [FoldScores(**{"processor": timed_on, **f}) for f in r["folds"]]) for r in runs]
        for rail_type, runs in earlier.get("results", {}).items()
    }
    return results, earlier.get("data", {})


def merge_results(older: dict[str, list[ModelCV]], newer: dict[str, list[ModelCV]]) -> dict[str, list[ModelCV]]:
    """Every fold of either, ``newer``'s where both have one (so pieces run side by side add up)."""
    merged: dict[str, list[ModelCV]] = {}
    for rail_type in dict.fromkeys([*older, *newer]):
        by_model: dict[str, dict[int, FoldScores]] = {}
        for source in (older.get(rail_type, []), newer.get(rail_type, [])):
            for run in source:
                by_model.setdefault(run.model, {}).update({f.fold: f for f in run.folds})
        merged[rail_type] = [ModelCV(name, [folds[k] for k in sorted(folds)]) for name, folds in by_model.items()]
    return merged


def missing_runs(results: dict[str, list[ModelCV]], folds: int) -> list[str]:
    """``type model (k of n folds)`` for every network of the full comparison not yet run on every fold."""
    missing = []
    for rail_type in RAIL_TYPES:
        runs = {r.model: len(r.folds) for r in results.get(rail_type, [])}
        for name in (f"fcn-{rail_type}", "fcn-8s", "segnet"):
            if runs.get(name, 0) < folds:
                missing.append(f"{rail_type} {name} ({runs.get(name, 0)} of {folds} folds)")
    return missing


def verdict(rail_type: str, results: list[ModelCV]) -> list[str]:
    """The paper's bar for the modified FCN of ``rail_type`` against the other networks."""
    by_name = {r.model: r for r in results}
    fcn = by_name.get(f"fcn-{rail_type}")
    if fcn is None or len(fcn.folds) == 0:
        return []
    f1, iou, step = fcn.mean("f1"), fcn.mean("iou"), fcn.mean("step_ms")
    lines = [
        f"{rail_type}: FCN mean F1 {f1:.3f} ({'meets' if f1 >= F1_BAR else 'misses'} {F1_BAR}), "
        f"mean IoU {iou:.3f} ({'meets' if iou >= IOU_BAR else 'misses'} {IOU_BAR})"
    ]
    for other in results:
        if other is fcn or not other.folds:
            continue
        if len(set(fcn.processors() + other.processors())) > 1:
            lines.append(f"{rail_type}: {other.model}'s and the FCN's steps were timed on different processors; "
                         "compare them in a --steps 30 run of both on one machine")  # fmt: skip
            continue
        ratio = other.mean("step_ms") / step
        lines.append(f"{rail_type}: {other.model} step {other.mean('step_ms'):.0f} ms = {ratio:.2f}x the FCN's {step:.0f} ms")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strips", type=int, default=0, help="Generated strips per rail type (0: the paper's tile counts, 71 and 118 strips).")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1500, help="Training steps of every network on every fold.")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of every network.")
    parser.add_argument("--lr-schedule", default="cosine", choices=["constant", "cosine"],
                        help="cosine anneals --lr to --lr-min over the budget (a constant 1e-3 diverges on some folds past 1000 steps).")
    parser.add_argument("--lr-min", type=float, default=1e-5)
    parser.add_argument("--precision", default="bf16-mixed", help="Lightning precision (bf16-mixed uses AMX/AVX-512 on CPUs that have it).")
    parser.add_argument("--types", default="type1,type2")
    parser.add_argument("--models", default="fcn,fcn-8s,segnet", help="'fcn' means the FCN of each rail type.")
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=False,
                        help="Train in the channels-last layout (faster on CPU, except FCN-8s); off by default because the "
                        "folds recorded so far were trained without it and their step times must compare.")  # fmt: skip
    parser.add_argument("--work", type=Path, default=Path("benchmarks/work/surface"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--fresh", action="store_true", help="Train every fold again instead of keeping those already in --out.")
    parser.add_argument("--only-folds", default="", help="Train only these folds (e.g. 1,2,3), so that two processes can share one network's folds.")
    args = parser.parse_args()
    started = time.perf_counter()
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings["device"] = compute_device(args.accelerator)  # CPU and GPU folds are never mixed in one table
    processor = machine_info()["processor"]  # stamped on every fold trained here
    earlier = finished_folds(args.out, settings)  # read with --fresh too: it says when the report will drop folds of another budget
    results, data = ({}, {}) if args.fresh else earlier

    def save_partial() -> None:
        # another run of this script (other types or networks, same budget) may have saved folds meanwhile
        nonlocal results, data
        on_disk, disk_data = finished_folds(args.out, settings, quiet=True)
        results, data = merge_results(on_disk, results), {**disk_data, **data}
        partial = {"benchmark": "surface", "partial": True, "machine": machine_info(), "settings": settings,
                   "data": data, "results": {t: [r.to_dict() for r in rs] for t, rs in results.items()}}  # fmt: skip
        write_text(json.dumps(partial, indent=2), args.out)

    for rail_type in args.types.split(","):
        count = strip_count(rail_type, args.strips)
        tiles = load_tiles(find_pairs(strips(args.work, rail_type, count), rail_type))
        data[rail_type] = {"strips": count, "tiles": len(tiles), "tile": list(tiles.images.shape[1:]),
                           "defect_pixels": float(tiles.masks.mean())}  # fmt: skip
        cfg = SurfaceTrainConfig(
            rail_type=rail_type, folds=args.folds, max_steps=args.steps, batch_size=args.batch_size, lr=args.lr,
            lr_schedule=args.lr_schedule, lr_min=args.lr_min, precision=args.precision, accelerator=args.accelerator, val_every_steps=args.steps,
            channels_last=args.channels_last, resume=not args.fresh,
        )  # fmt: skip
        names = [f"fcn-{rail_type}" if m == "fcn" else m for m in args.models.split(",")]
        results.setdefault(rail_type, [])
        done = {r.model: [f.fold for f in r.folds] for r in results[rail_type]}
        for name, folds in done.items():
            if name in names and folds:
                print(f"{rail_type} {name}: folds {folds} kept from {args.out}")
        if args.only_folds:
            skipped = set(range(1, args.folds + 1)) - {int(k) for k in args.only_folds.split(",")}
            done = {name: sorted(set(done.get(name, [])) | skipped) for name in names}

        def on_fold(name: str, scores: Any, rail_type: str = rail_type) -> None:
            scores = replace(scores, processor=processor)
            print(f"{rail_type} {name} fold {scores.fold}: F1 {scores.f1:.3f} IoU {scores.iou:.3f} {scores.step_ms:.0f} ms/step", flush=True)
            nonlocal results
            results = merge_results(results, {rail_type: [ModelCV(name, [scores])]})
            save_partial()

        cross_validate(tiles, names, cfg, args.work / "runs" / rail_type, progress=False, on_fold=on_fold, done=done)

    save_partial()
    lines = [line for t, rs in results.items() for line in verdict(t, rs)]
    missing = missing_runs(results, args.folds)
    lines.append("still to run: " + "; ".join(missing) if missing else "complete: every network on every fold of both types")
    table = tables_markdown(results) + "\n" + "\n".join(lines)
    summary = {"data": data, "missing": missing, "results": {t: [r.to_dict() for r in rs] for t, rs in results.items()}}
    write_report(args.out, "surface", settings, summary, table, started)


if __name__ == "__main__":
    main()
