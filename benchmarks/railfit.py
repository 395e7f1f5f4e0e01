"""Speed benchmark of railwatch's rail fitting and risk grading, each against a plain baseline.

Two things are measured, each against a baseline timed in the same run:

1. **Rail fitting** of 1920x1080 binary rail masks. Twelve seeded masks (three each of the
   scene kinds ``straight``, ``curved``, ``multi`` and ``noisy``) are rendered with
   :func:`railwatch.data.rail_masks.render_rail_mask`; rendering is not timed. Every mask is
   fitted many times by :func:`railwatch.intrusion.railfit.fit_rails` (default settings) and by
   :func:`baseline_sliding_window`, the classic textbook lane-finding sliding window written out
   below: ``np.nonzero`` of the whole mask once, a column histogram of the bottom half for the
   two starting columns left and right of the image centre, 48 windows from the bottom that
   select pixels with boolean tests on the full nonzero arrays and recentre on their mean, and a
   cubic ``np.polyfit(y, x, 3)`` per rail. The baseline only finds the two ego rails; railwatch
   finds every rail in the mask. Calls alternate between the two methods and the garbage
   collector is off while timing. Reported: median and 90th percentile ms per mask, the speed
   ratio, and each method's largest error (px) against the true centre lines of the two ego
   rails, both over rows whose ground distance is at most 60 m and over the whole drawn range.
   For railwatch, each true rail is matched to the fitted rail with the smallest median error
   and compared on the rows that rail was fitted on; the baseline's cubics are compared on every
   row the truth covers.

2. **Risk grading throughput**: :func:`railwatch.intrusion.risk.assess_risk` on 10^6 seeded
   random objects (offsets -5000..5000 mm, distances 0..150 m, four types, speeds 0..5 m/s),
   best of 3, against a plain Python per-object loop with ``math`` implementing the same
   formulas (Eq. 15-17, Table 4) on the first 20,000 objects, scaled to objects per second. The
   loop's levels are compared with railwatch's on those objects (reported, not asserted).

Speed only: nothing is asserted. Run from the repository root::

    .venv/bin/python benchmarks/railfit.py [--quick]

``--quick`` uses fewer repeats. A markdown table per part is printed, and the figures, settings
and machine are written to ``benchmarks/results/railfit.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from common import machine_info

from railwatch.config import RailFitConfig
from railwatch.data.rail_masks import RailMaskSample, RailTruth, random_scene, render_rail_mask
from railwatch.errors import NoRailsFoundError
from railwatch.intrusion.railfit import RailFit, fit_rails
from railwatch.intrusion.risk import assess_risk

FloatArray = npt.NDArray[np.float64]

SEED = 20240611
KINDS: tuple[str, ...] = ("straight", "curved", "multi", "noisy")
MASKS_PER_KIND = 3
NEAR_DISTANCE_M = 60.0

# Baseline sliding window: 48 windows as railwatch's default n_windows, half-width width/64 px as
# railwatch's default margin, and the textbook's 50 pixels before a window recentres.
BASELINE_WINDOWS = 48
BASELINE_MIN_PIXELS = 50

N_OBJECTS = 1_000_000
N_LOOP = 20_000
OBJECT_TYPES: tuple[str, ...] = ("person", "car", "animal", "stone")

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "railfit.json"


# --------------------------------------------------------------------------------------------
# Part 1 baseline: the textbook sliding window
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineFit:
    """Cubics ``x = polyval(coeffs, y)`` (``np.polyfit`` order) of the two ego rails, or None."""

    left: FloatArray | None
    right: FloatArray | None


def baseline_sliding_window(
    mask: npt.NDArray[np.bool_],
    n_windows: int = BASELINE_WINDOWS,
    margin: int | None = None,
    min_pixels: int = BASELINE_MIN_PIXELS,
) -> BaselineFit:
    """Classic lane-finding sliding window: two rails, one cubic each.

    Args:
        mask: ``(H, W)`` binary rail mask.
        n_windows: Windows stacked from the bottom of the image.
        margin: Window half-width in px; ``None`` for ``W // 64``.
        min_pixels: A window recentres on its pixels' mean column when it holds more than this.

    Returns:
        The left and right rails' cubic coefficients; a rail with fewer than 4 pixels is None.
    """
    height, width = mask.shape
    margin = width // 64 if margin is None else margin
    histogram = np.sum(mask[height // 2 :, :], axis=0)
    midpoint = width // 2
    left_current = int(np.argmax(histogram[:midpoint]))
    right_current = int(np.argmax(histogram[midpoint:])) + midpoint

    nonzero_y, nonzero_x = np.nonzero(mask)
    window_height = height // n_windows
    left_indices: list[npt.NDArray[np.intp]] = []
    right_indices: list[npt.NDArray[np.intp]] = []
    for window in range(n_windows):
        y_low = height - (window + 1) * window_height
        y_high = height - window * window_height
        in_rows = (nonzero_y >= y_low) & (nonzero_y < y_high)
        good_left = (
            in_rows & (nonzero_x >= left_current - margin) & (nonzero_x < left_current + margin)
        ).nonzero()[0]
        good_right = (
            in_rows & (nonzero_x >= right_current - margin) & (nonzero_x < right_current + margin)
        ).nonzero()[0]
        left_indices.append(good_left)
        right_indices.append(good_right)
        if good_left.size > min_pixels:
            left_current = int(np.mean(nonzero_x[good_left]))
        if good_right.size > min_pixels:
            right_current = int(np.mean(nonzero_x[good_right]))

    def cubic(indices: list[npt.NDArray[np.intp]]) -> FloatArray | None:
        chosen = np.concatenate(indices)
        if chosen.size < 4:
            return None
        return np.polyfit(nonzero_y[chosen], nonzero_x[chosen], 3)

    return BaselineFit(left=cubic(left_indices), right=cubic(right_indices))


# --------------------------------------------------------------------------------------------
# Part 1: accuracy against the truth
# --------------------------------------------------------------------------------------------


def _max_abs(values: FloatArray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.max(np.abs(finite))) if finite.size else None


def _worst(values: Sequence[float | None]) -> float | None:
    """Largest of the values; None when any is None (a rail was not found or not compared)."""
    if not values or any(v is None for v in values):
        return None
    return max(v for v in values if v is not None)


def ego_truth(sample: RailMaskSample) -> list[RailTruth]:
    """True centre lines of the ego track's two rails, left then right."""
    return [rail for rail in sample.rails if rail.track == sample.scene.ego_index]


def near_rows(sample: RailMaskSample, rows: npt.NDArray[np.int_]) -> npt.NDArray[np.bool_]:
    """Which image rows see the ground at most NEAR_DISTANCE_M ahead (False above the horizon)."""
    camera = sample.scene.camera
    _, z_m = camera.ground_point(camera.cx, rows.astype(float))
    with np.errstate(invalid="ignore"):
        return np.asarray(z_m <= NEAR_DISTANCE_M)


def railwatch_errors(sample: RailMaskSample, fit: RailFit | None) -> dict[str, float | None]:
    """Largest error (px) of railwatch's rails matched to the two true ego rails."""
    near: list[float | None] = []
    whole: list[float | None] = []
    for truth in ego_truth(sample):
        best: tuple[float, FloatArray, npt.NDArray[np.int_]] | None = None
        for rail in fit.rails if fit is not None else ():
            rows = truth.rows[(truth.rows >= rail.y_min) & (truth.rows <= rail.y_max)]
            if rows.size == 0:
                continue
            error = np.asarray(rail.x_at(rows), dtype=float) - truth.x_at(rows)
            finite = error[np.isfinite(error)]
            if finite.size == 0:
                continue
            median = float(np.median(np.abs(finite)))
            if best is None or median < best[0]:
                best = (median, error, rows)
        if best is None:
            near.append(None)
            whole.append(None)
            continue
        _, error, rows = best
        near.append(_max_abs(error[near_rows(sample, rows)]))
        whole.append(_max_abs(error))
    return {"max_err_px_near": _worst(near), "max_err_px_all": _worst(whole)}


def baseline_errors(sample: RailMaskSample, fit: BaselineFit) -> dict[str, float | None]:
    """Largest error (px) of the baseline's left and right cubics on every row the truth covers."""
    near: list[float | None] = []
    whole: list[float | None] = []
    truths = ego_truth(sample)
    for truth, coeffs in zip(truths, (fit.left, fit.right)):
        if coeffs is None:
            near.append(None)
            whole.append(None)
            continue
        rows = truth.rows
        error = np.polyval(coeffs, rows.astype(float)) - truth.x_at(rows)
        near.append(_max_abs(error[near_rows(sample, rows)]))
        whole.append(_max_abs(error))
    return {"max_err_px_near": _worst(near), "max_err_px_all": _worst(whole)}


# --------------------------------------------------------------------------------------------
# Part 1: timing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskCase:
    """One rendered mask and its scene kind."""

    kind: str
    seed: int
    sample: RailMaskSample


def render_cases(seed: int) -> list[MaskCase]:
    """MASKS_PER_KIND seeded masks of each kind in KINDS (not timed)."""
    rng = np.random.default_rng(seed)
    cases: list[MaskCase] = []
    for kind in KINDS:
        for _ in range(MASKS_PER_KIND):
            mask_seed = int(rng.integers(0, 2**31))
            scene = random_scene(kind, rng)  # type: ignore[arg-type]
            cases.append(MaskCase(kind=kind, seed=mask_seed, sample=render_rail_mask(scene, seed=mask_seed)))
    return cases


def _try_fit_rails(mask: npt.NDArray[np.bool_], config: RailFitConfig) -> RailFit | None:
    try:
        return fit_rails(mask, config)
    except NoRailsFoundError:
        return None


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _stats_ms(seconds: Sequence[float]) -> dict[str, float]:
    values = np.asarray(seconds) * 1000.0
    return {"median_ms": float(np.median(values)), "p90_ms": float(np.percentile(values, 90))}


def bench_rail_fitting(repeats: int, seed: int) -> dict[str, Any]:
    """Time both methods on every mask ``repeats`` times, alternating; measure their errors."""
    config = RailFitConfig()
    cases = render_cases(seed)
    masks = [case.sample.mask for case in cases]

    per_mask: list[dict[str, Any]] = []
    for case, mask in zip(cases, masks):  # warm-up call of each, which also gives the accuracy
        fit = _try_fit_rails(mask, config)
        base = baseline_sliding_window(mask)
        per_mask.append(
            {
                "kind": case.kind,
                "seed": case.seed,
                "rail_pixels": int(mask.sum()),
                "true_rails": len(case.sample.rails),
                "railwatch_rails": 0 if fit is None else len(fit.rails),
                "railwatch": railwatch_errors(case.sample, fit),
                "baseline": baseline_errors(case.sample, base),
            }
        )

    railwatch_s: list[list[float]] = [[] for _ in cases]
    baseline_s: list[list[float]] = [[] for _ in cases]
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            for i, mask in enumerate(masks):
                railwatch_s[i].append(_timed(lambda: _try_fit_rails(mask, config)))
                baseline_s[i].append(_timed(lambda: baseline_sliding_window(mask)))
    finally:
        gc.enable()

    for record, rw, bl in zip(per_mask, railwatch_s, baseline_s):
        record["railwatch"].update(_stats_ms(rw))
        record["baseline"].update(_stats_ms(bl))

    groups: dict[str, list[int]] = {kind: [i for i, c in enumerate(cases) if c.kind == kind] for kind in KINDS}
    groups["all"] = list(range(len(cases)))
    by_kind: dict[str, Any] = {}
    for name, members in groups.items():
        entry: dict[str, Any] = {"masks": len(members)}
        for method, times in (("railwatch", railwatch_s), ("baseline", baseline_s)):
            pooled = [t for i in members for t in times[i]]
            entry[method] = {
                **_stats_ms(pooled),
                "max_err_px_near": _worst([per_mask[i][method]["max_err_px_near"] for i in members]),
                "max_err_px_all": _worst([per_mask[i][method]["max_err_px_all"] for i in members]),
            }
        entry["speed_ratio"] = entry["baseline"]["median_ms"] / entry["railwatch"]["median_ms"]
        by_kind[name] = entry
    return {"by_kind": by_kind, "per_mask": per_mask}


def _fmt_err(value: float | None) -> str:
    return "not found" if value is None else f"{value:.1f}"


def rail_table(result: dict[str, Any]) -> str:
    """Markdown table of part 1."""
    lines = [
        "| kind | masks | railwatch median ms | railwatch p90 ms | baseline median ms | baseline p90 ms "
        "| speed ratio (railwatch/baseline) | railwatch max err px <=60 m | railwatch max err px all "
        "| baseline max err px <=60 m | baseline max err px all |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, entry in result["by_kind"].items():
        rw, bl = entry["railwatch"], entry["baseline"]
        lines.append(
            f"| {name} | {entry['masks']} | {rw['median_ms']:.1f} | {rw['p90_ms']:.1f} "
            f"| {bl['median_ms']:.1f} | {bl['p90_ms']:.1f} | {entry['speed_ratio']:.2f} "
            f"| {_fmt_err(rw['max_err_px_near'])} | {_fmt_err(rw['max_err_px_all'])} "
            f"| {_fmt_err(bl['max_err_px_near'])} | {_fmt_err(bl['max_err_px_all'])} |"
        )
    lines.append("")
    lines.append(
        "Baseline = textbook sliding window: finds only the two ego rails (railwatch finds every rail). "
        "Errors: largest |x - truth| over both ego rails. Speed ratio > 1: railwatch is faster."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Part 2: risk grading
# --------------------------------------------------------------------------------------------

_WEIGHTS: dict[str, float] = {"person": 1.1, "car": 1.2, "animal": 0.9, "stone": 0.7}


def scalar_risk_levels(
    offsets_mm: Sequence[float], distances_m: Sequence[float], types: Sequence[str], speeds_mps: Sequence[float]
) -> list[int]:
    """Risk levels 1..5 one object at a time with ``math`` (Eq. 15-17, Table 4)."""
    levels: list[int] = []
    for offset, distance, kind, speed in zip(offsets_mm, distances_m, types, speeds_mps):
        d_x = abs(offset)
        if d_x <= 717.5:
            xr = 1.0 - 0.3 * d_x / 717.5
        elif d_x <= 3157.5:
            xr = 0.5 * (1.0 - (d_x - 717.5) / 2440.0)
        else:
            xr = 0.0
        if distance <= 20.0:
            yr = 1.5 * math.exp(-0.5 * distance / 1000.0)
        else:
            yr = math.exp(-0.2 * distance / 100.0)
        z = xr * yr * _WEIGHTS[kind] * (1.0 + speed / 10.0)
        if z >= 1.2:
            levels.append(1)
        elif z >= 0.8:
            levels.append(2)
        elif z >= 0.5:
            levels.append(3)
        elif z >= 0.2:
            levels.append(4)
        else:
            levels.append(5)
    return levels


def _best_of(repeats: int, call: Callable[[], object]) -> float:
    gc.collect()
    gc.disable()
    try:
        return min(_timed(call) for _ in range(repeats))
    finally:
        gc.enable()


def bench_risk(repeats: int, seed: int) -> dict[str, Any]:
    """Throughput of assess_risk on N_OBJECTS against the scalar loop on the first N_LOOP."""
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(-5000.0, 5000.0, N_OBJECTS)
    distances = rng.uniform(0.0, 150.0, N_OBJECTS)
    types = rng.choice(np.array(OBJECT_TYPES), N_OBJECTS)
    speeds = rng.uniform(0.0, 5.0, N_OBJECTS)

    railwatch_s = _best_of(repeats, lambda: assess_risk(offsets, distances, types, speeds))
    levels = assess_risk(offsets, distances, types, speeds).level

    # The loop gets Python lists, converted before timing.
    lists = (
        offsets[:N_LOOP].tolist(),
        distances[:N_LOOP].tolist(),
        types[:N_LOOP].tolist(),
        speeds[:N_LOOP].tolist(),
    )
    loop_s = _best_of(repeats, lambda: scalar_risk_levels(*lists))
    loop_levels = np.asarray(scalar_risk_levels(*lists))
    mismatches = int(np.count_nonzero(loop_levels != levels[:N_LOOP]))

    railwatch_rate = N_OBJECTS / railwatch_s
    loop_rate = N_LOOP / loop_s
    return {
        "railwatch": {"objects": N_OBJECTS, "best_s": railwatch_s, "objects_per_s": railwatch_rate},
        "baseline": {"objects": N_LOOP, "best_s": loop_s, "objects_per_s": loop_rate},
        "speed_ratio": railwatch_rate / loop_rate,
        "levels_agree": mismatches == 0,
        "level_mismatches": mismatches,
        "level_counts": {str(lv): int(np.count_nonzero(levels == lv)) for lv in range(1, 6)},
    }


def risk_table(result: dict[str, Any]) -> str:
    """Markdown table of part 2."""
    rw, bl = result["railwatch"], result["baseline"]
    lines = [
        "| method | objects timed | best time s | objects/s | speed ratio (railwatch/baseline) |",
        "|---|--:|--:|--:|--:|",
        f"| railwatch assess_risk (vectorised) | {rw['objects']:,} | {rw['best_s']:.3f} "
        f"| {rw['objects_per_s']:,.0f} | {result['speed_ratio']:.1f} |",
        f"| baseline Python loop with math | {bl['objects']:,} | {bl['best_s']:.3f} "
        f"| {bl['objects_per_s']:,.0f} | 1.0 |",
        "",
        f"Levels agree on the first {bl['objects']:,} objects: {'yes' if result['levels_agree'] else 'no'}"
        f" ({result['level_mismatches']} mismatches).",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a quick look, noisier figures)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON results file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)

    rail_repeats = 3 if args.quick else 15
    risk_repeats = 1 if args.quick else 3
    settings: dict[str, Any] = {
        "quick": args.quick,
        "seed": SEED,
        "rail_fitting": {
            "kinds": list(KINDS),
            "masks_per_kind": MASKS_PER_KIND,
            "mask_shape": [1080, 1920],
            "repeats_per_mask": rail_repeats,
            "railfit_config": RailFitConfig().model_dump(),
            "baseline": {
                "windows": BASELINE_WINDOWS,
                "margin_px": 1920 // 64,
                "min_pixels": BASELINE_MIN_PIXELS,
                "degree": 3,
            },
            "near_distance_m": NEAR_DISTANCE_M,
        },
        "risk": {
            "objects": N_OBJECTS,
            "loop_objects": N_LOOP,
            "repeats_best_of": risk_repeats,
            "offset_mm": [-5000.0, 5000.0],
            "distance_m": [0.0, 150.0],
            "speed_mps": [0.0, 5.0],
            "types": list(OBJECT_TYPES),
        },
    }

    started = time.perf_counter()
    rail = bench_rail_fitting(rail_repeats, SEED)
    print("## Rail fitting, 1920x1080 masks (time per mask)\n")
    print(rail_table(rail))
    risk = bench_risk(risk_repeats, SEED)
    print("\n## Risk grading throughput\n")
    print(risk_table(risk))
    elapsed = time.perf_counter() - started

    report = {
        "benchmark": "railfit",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": settings,
        "rail_fitting": rail,
        "risk": risk,
        "elapsed_s": elapsed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nWrote {args.out} ({elapsed:.0f} s).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
