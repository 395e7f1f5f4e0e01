"""Loose fasteners from hammer-test spectra, paper 001 Tables 2-3, on simulated data; and the DAS monitor's speed.

1. **Data.** The rail simulator (``railwatch.vibration.simulate``) makes ``--repeats`` hammer
   tests per condition C1-C6 at the *training* site, and as many at a *different* site (other
   ambient noise, stronger 50 Hz hum, other fibre coupling and no coupling change at the clips).
2. **Training** on the training site only, on each of ``--splits`` random 7:1:2 splits:
   accelerometer-only (3 axes of accelerometer #3), DAS-only (6 sensing points) and transfer
   (pre-training of both encoders with MSE + lambda ED, then DAS fine-tuning); Adam 1e-3 -> 1e-4,
   batch 20, best epoch on validation.
3. **Testing** on the split's test part (training site) and on every event of the other site:
   MSE (FFI/3 scale), accuracy, macro precision/recall/F1, mean +- std over splits.
4. **LIME**: segment-LIME (25 bands of 20 Hz per channel) of the DAS-only and transfer models on
   ``--lime-events`` test events; the share of |contribution| in the 100-120 Hz band is printed.
5. **Monitor**: a simulated 10 km fibre with 1 m channels at 2 kHz streamed through
   ``railwatch.vibration.monitor`` with the DAS model scoring; real-time factor = seconds of data
   per second of processing (above 1: faster than the fibre records).

Nothing is asserted; the issue's bars (transfer beats DAS-only at the other site; transfer uses
100-120 Hz more than DAS-only) are printed beside the figures. Run from the repository root::

    .venv/bin/python benchmarks/vibration.py

Results go to ``benchmarks/results/vibration.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import write_report

from railwatch.config import LimeConfig, VibrationTrainConfig
from railwatch.vibration.data import SpectraSet, numbered_split, spectra_set
from railwatch.vibration.infer import VibrationPredictor, load_predictor
from railwatch.vibration.lime import explain_bands
from railwatch.vibration.metrics import METRICS, ffi_metrics
from railwatch.vibration.simulate import SITES, simulate_hammer_tests
from railwatch.vibration.train import predict_scaled, train_vibration

MODALITIES = ("accel", "das", "transfer")
LABELS = {"accel": "Accelerometer", "das": "DAS only", "transfer": "Transfer (proposed)"}
PAPER = {"accel": (3.86e-5, 0.995), "das": (4.52e-3, 0.940), "transfer": (8.60e-4, 0.975)}  # Tables 2-3: MSE, accuracy


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def lime_share(predictor: VibrationPredictor, spectra: np.ndarray, freqs: np.ndarray, cfg: LimeConfig) -> float:
    """Mean share of |LIME contribution| in 100-120 Hz over ``spectra``."""
    return float(np.mean(explain_bands(predictor.net, spectra, freqs, cfg).share(100.0, 120.0)))


def run_split(
    split: int, train_site: SpectraSet, other_site: SpectraSet, cfg: VibrationTrainConfig, args: argparse.Namespace
) -> dict[str, Any]:
    """Train the three models on one split; test on the split's test part and on the other site; LIME shares."""
    _, _, test_idx = numbered_split(len(train_site), cfg.split, split)
    lime_idx = test_idx[: args.lime_events]
    row: dict[str, Any] = {}
    for modality in args.modalities.split(","):
        started = time.perf_counter()
        run_cfg = cfg.model_copy(update={"modality": modality})
        result = train_vibration(train_site, run_cfg, args.work / f"split{split}" / modality, split, progress=False)
        predictor = load_predictor(result.checkpoint)
        other = ffi_metrics(predict_scaled(predictor.net, other_site.inputs(modality)), other_site.ffi)
        entry = {"training_site": result.test, "other_site": other, "train_s": round(time.perf_counter() - started, 1)}
        if modality != "accel":
            lime_cfg = LimeConfig(samples=args.lime_samples)
            entry["lime_100_120_training"] = lime_share(predictor, train_site.das[lime_idx], train_site.freqs, lime_cfg)
            entry["lime_100_120_other"] = lime_share(predictor, other_site.das[: args.lime_events * 4 : 4], other_site.freqs, lime_cfg)
        row[modality] = entry
        print(
            f"split {split} {modality:8s}: training site acc {result.test['accuracy']:.3f} mse {result.test['mse']:.2e} | "
            f"other site acc {other['accuracy']:.3f} mse {other['mse']:.2e} | {entry['train_s']:.0f} s",
            flush=True,
        )
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std over splits of every metric, per modality and site, and of the LIME shares."""
    out: dict[str, Any] = {}
    for modality in MODALITIES:
        out[modality] = {}
        for site in ("training_site", "other_site"):
            out[modality][site] = {m: mean_std([r[modality][site][m] for r in rows]) for m in METRICS}
        for key in ("lime_100_120_training", "lime_100_120_other"):
            if key in rows[0][modality]:
                out[modality][key] = mean_std([r[modality][key] for r in rows])
    return out


def table(summary: dict[str, Any], splits: int) -> str:
    """Tables 2-3 layout per site, then the LIME shares and the issue's two bars."""
    lines = []
    for site, title in (("training_site", "training site (test part of each split)"), ("other_site", "different site (every event)")):
        lines += [
            f"\n### {title}, mean +- std over {splits} splits\n",
            "| model | MSE | accuracy | precision | recall | F1 | paper MSE | paper accuracy |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for modality in MODALITIES:
            s = summary[modality][site]
            cells = [f"{s['mse'][0]:.2e} +- {s['mse'][1]:.1e}"] + [f"{100 * s[m][0]:.2f} +- {100 * s[m][1]:.2f}" for m in METRICS[1:]]
            paper = PAPER[modality]
            lines.append(f"| {LABELS[modality]} | " + " | ".join(cells) + f" | {paper[0]:.2e} | {100 * paper[1]:.2f} |")
    lines += ["\n### LIME: share of |contribution| in the 100-120 Hz band (rail lateral mode)\n", "| model | training-site events | other-site events |", "|---|---|---|"]
    for modality in ("das", "transfer"):
        a, b = summary[modality]["lime_100_120_training"], summary[modality]["lime_100_120_other"]
        lines.append(f"| {LABELS[modality]} | {100 * a[0]:.1f}% +- {100 * a[1]:.1f} | {100 * b[0]:.1f}% +- {100 * b[1]:.1f} |")
    das, transfer = summary["das"]["other_site"], summary["transfer"]["other_site"]
    beats = transfer["accuracy"][0] > das["accuracy"][0] or (transfer["accuracy"][0] == das["accuracy"][0] and transfer["mse"][0] < das["mse"][0])
    uses = summary["transfer"]["lime_100_120_training"][0] > summary["das"]["lime_100_120_training"][0]
    lines += [
        f"\ntransfer beats DAS-only at the different site: {'yes' if beats else 'NO'} "
        f"(accuracy {100 * transfer['accuracy'][0]:.2f}% vs {100 * das['accuracy'][0]:.2f}%, MSE {transfer['mse'][0]:.2e} vs {das['mse'][0]:.2e})",
        f"transfer uses 100-120 Hz more than DAS-only: {'yes' if uses else 'NO'} "
        f"({100 * summary['transfer']['lime_100_120_training'][0]:.1f}% vs {100 * summary['das']['lime_100_120_training'][0]:.1f}%)",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=40, help="hammer tests per condition and site")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None, help="default: vibration.train.epochs")
    parser.add_argument("--finetune-epochs", type=int, default=None)
    parser.add_argument("--ed-weight", type=float, default=None)
    parser.add_argument("--ed-features", choices=("encoder", "cnn"), default=None)
    parser.add_argument("--modalities", default="accel,das,transfer")
    parser.add_argument("--lime-events", type=int, default=12)
    parser.add_argument("--lime-samples", type=int, default=600)
    parser.add_argument("--monitor-seconds", type=float, default=10.0, help="seconds of the simulated 10 km stream")
    parser.add_argument("--skip-monitor", action="store_true")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/work/vibration"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/vibration.json"))
    args = parser.parse_args()
    started = time.perf_counter()

    updates = {k: v for k, v in {"epochs": args.epochs, "finetune_epochs": args.finetune_epochs, "ed_weight": args.ed_weight, "ed_features": args.ed_features}.items() if v is not None}
    cfg = VibrationTrainConfig(accelerator="cpu", **updates)
    print(f"simulating {6 * args.repeats} hammer tests at each site ...", flush=True)
    sets = {}
    for seed, site in ((0, "training"), (1, "other")):
        sets[site] = spectra_set(simulate_hammer_tests(site=SITES[site], repeats=args.repeats, seed=seed), cfg.accelerometer, cfg.window_s, cfg.max_freq)
    rows = [run_split(split, sets["training"], sets["other"], cfg, args) for split in range(args.splits)]
    summary = summarise(rows)
    results: dict[str, Any] = {"splits": rows, "summary": summary}
    text = table(summary, args.splits)
    if not args.skip_monitor:
        from vibration_monitor import monitor_throughput

        results["monitor"] = monitor_throughput(args.work / "split0" / "das" / "best.pt", args.monitor_seconds)
        m = results["monitor"]
        text += (
            f"\n\n### monitor: simulated {m['length_km']:g} km fibre, {m['dx_m']:g} m channels, {m['fs_hz']:g} Hz, {m['seconds']:g} s\n\n"
            f"real-time factor {m['real_time_factor']:.2f} (data seconds per wall second; above 1 keeps up), "
            f"{m['wall_s']:.1f} s wall for {m['seconds']:g} s of data; planted hammer tests found {m['found']}/{m['planted']}"
        )
    settings = {**vars(args), "work": str(args.work), "out": str(args.out), "train": cfg.model_dump(mode="json")}
    write_report(args.out, "vibration", settings, results, text, started)


if __name__ == "__main__":
    main()
