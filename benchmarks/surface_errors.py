"""Where the surface segmenters' wrong pixels lie, on the folds of the surface benchmark they left out.

For every ``best.pt`` under ``--runs`` (the layout ``benchmarks/surface.py`` and ``surface cv``
write: ``<model>/fold<k>/best.pt``), the network segments its fold's validation tiles of the
same generated strips, and :func:`railwatch.surface.metrics.error_locations` sorts its wrong
pixels: how many lie within a pixel of a true outline, and how they spread over the four row and
column phases of the networks' I/4 grid. A model whose outlines snap to that grid has most of its
errors at phases 0 and 3 (a cell's first and last row or column); one that interpolates between
coarse pixels spreads them evenly. Beside them, the F1 of the truth itself redrawn on 4-row (or
4-column) cells, each cell a defect where at least half of it is
(:func:`railwatch.surface.metrics.snapped_to_cells`): what a model whose outlines snap to that grid
would score if it knew every defect exactly.

Nothing is asserted; run from the repository root after ``benchmarks/surface.py`` (or ``surface
cv`` with ``--out DIR``) has trained the folds::

    .venv/bin/python benchmarks/surface_errors.py --type type2 [--runs benchmarks/work/surface/runs/type2]

Results go to ``benchmarks/results/surface_errors_<type>.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import write_report
from surface import strip_count, strips

from railwatch.surface.data import find_pairs, kfold_splits, load_tiles
from railwatch.surface.infer import SurfaceSegmenter
from railwatch.surface.metrics import DefectScores, error_locations, snapped_to_cells

PERIOD = 4
"""The networks' finest score map is I/4 (the modified FCN's pool2)."""
AXES = (("rows", 1), ("columns", 2))


def shares(counts: list[int]) -> str:
    total = max(1, sum(counts))
    return " / ".join(f"{100 * c / total:.0f}" for c in counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--type", default="type2", choices=["type1", "type2"])
    parser.add_argument(
        "--runs", type=Path, default=None, help="Folder of <model>/fold<k>/best.pt (default: the surface benchmark's for --type)."
    )
    parser.add_argument("--strips", type=int, default=0, help="As given to benchmarks/surface.py (0: the paper's tile counts).")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="The folds' seed (surface.train.seed).")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/work/surface"))
    parser.add_argument("--out", type=Path, default=None, help="Report file (default: benchmarks/results/surface_errors_<type>.json).")
    args = parser.parse_args()
    started = time.perf_counter()
    runs = args.runs or args.work / "runs" / args.type
    out = args.out or Path(f"benchmarks/results/surface_errors_{args.type}.json")
    checkpoints = sorted(runs.glob("*/fold*/best.pt"))
    if not checkpoints:
        raise SystemExit(f"{runs}: no <model>/fold<k>/best.pt; run benchmarks/surface.py --types {args.type} first")
    tiles = load_tiles(find_pairs(strips(args.work, args.type, strip_count(args.type, args.strips)), args.type))
    splits = kfold_splits(len(tiles), args.folds, args.seed)

    rows, results, snapped_by_fold = [], [], {}
    for path in checkpoints:
        model, fold = path.parent.parent.name, int(path.parent.name.removeprefix("fold"))
        held_out = tiles.subset(splits[fold - 1][1])
        predicted = SurfaceSegmenter.load(path).probabilities(held_out.images) > 0.5
        truth = held_out.masks.astype(bool)
        scores, found = DefectScores.from_masks(predicted, truth), error_locations(predicted, truth, PERIOD)
        if fold not in snapped_by_fold:  # a property of the fold's truth, the same for every model
            snapped_by_fold[fold] = {
                f"{name}_f1": DefectScores.from_masks(snapped_to_cells(truth, PERIOD, axis), truth).f1 for name, axis in AXES
            }
        snapped = snapped_by_fold[fold]
        results.append(
            {
                "model": model,
                "fold": fold,
                "checkpoint": str(path),
                "scores": scores.to_dict(),
                "errors": found.to_dict(),
                "snapped": snapped,
            }
        )
        rows.append(
            f"| {model} | {fold} | {scores.f1:.4f} | {found.false_positives} | {found.false_negatives} | "
            f"{100 * found.band_share:.0f}% | {shares(found.by_row_phase)} | {shares(found.by_column_phase)} | "
            f"{snapped['rows_f1']:.4f} | {snapped['columns_f1']:.4f} |"
        )
        print(rows[-1], flush=True)

    table = "\n".join([
        f"{args.type}: wrong pixels on each fold left out; phases are row (column) index mod {PERIOD}, in % of the errors",
        "",
        "| Model | Fold | F1 | false px | missed px | within 1 px of an outline | by row phase 0/1/2/3 | by column phase 0/1/2/3 "
        f"| F1 of the truth on {PERIOD}-row cells | on {PERIOD}-column cells |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *rows,
    ])  # fmt: skip
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    write_report(out, "surface_errors", settings, {"results": results}, table, started)


if __name__ == "__main__":
    main()
