"""The vibration part of ``railwatch demo``: simulate hammer tests, train the FFI models, score, explain with LIME.

Simulated hammer tests (paper 001's six conditions, accelerometers and DAS) stand in for the
paper's private field data. An accelerometer model and a cross-modal transfer DAS model are
trained for a few epochs on part of them; the rest are scored, and segment-LIME shows which
frequency bands each model reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from railwatch.cli_support import console
from railwatch.config import LimeConfig, VibrationTrainConfig
from railwatch.imageio import write_text
from railwatch.training import quiet_lightning
from railwatch.vibration.data import numbered_split, spectra_set
from railwatch.vibration.figures import channel_names, condition_spectra_figure, lime_bars_figure, lime_spectra_figure
from railwatch.vibration.hammer_io import write_hammer_h5
from railwatch.vibration.infer import load_predictor
from railwatch.vibration.lime import explain_bands
from railwatch.vibration.simulate import simulate_hammer_tests
from railwatch.vibration.train import predict_scaled, train_vibration

REPEATS = 16
"""Hammer blows per condition (96 events): 7:1:2 gives 68 to train, 9 to validate, 19 to score."""


def _explain(predictor, spectra, ffi, out: Path, stem: str) -> float:
    """LIME of one scored event per FFI; write the two figures; return the mean 100-120 Hz share."""
    picks = np.array([int(np.flatnonzero(ffi == level)[0]) for level in np.unique(ffi)])
    contrib = explain_bands(predictor.net, spectra[picks], predictor.freqs, LimeConfig(samples=400))
    names = channel_names(predictor.reads, predictor.channels)
    lime_bars_figure(contrib, ffi[picks], names, out / f"{stem}_lime_bars.png")
    lime_spectra_figure(spectra[picks], contrib, predictor.freqs, ffi[picks], names, out / f"{stem}_lime_spectra.png")
    return float(contrib.share(100.0, 120.0).mean())


def run_vibration_demo(out: Path, seed: int = 7, epochs: int = 40) -> dict[str, Any]:
    """Simulate, write ``hammer.h5``, train accelerometer and transfer models, score held-out blows, draw LIME figures."""
    out.mkdir(parents=True, exist_ok=True)
    dataset = simulate_hammer_tests(repeats=REPEATS, seed=seed)
    write_hammer_h5(out / "hammer.h5", dataset, {"repeats": REPEATS, "seed": seed})
    data = spectra_set(dataset)
    condition_spectra_figure(data.accel, data.ffi, data.freqs, channel_names("accel", 3), out / "accel_spectra.png", "accelerometer #3")
    condition_spectra_figure(data.das, data.ffi, data.freqs, channel_names("das", 6), out / "das_spectra.png", "DAS sensing points")
    console.print(f"[bold]vibration[/]: {len(dataset)} simulated hammer tests (C1-C6, FFI 0-3) -> {out / 'hammer.h5'}")
    report: dict[str, Any] = {"events": len(dataset), "models": {}}
    for modality in ("accel", "transfer"):
        cfg = VibrationTrainConfig(modality=modality, epochs=epochs, finetune_epochs=epochs // 2, accelerator="cpu", seed=seed)
        with quiet_lightning():
            result = train_vibration(data, cfg, out / modality, progress=False)
        predictor = load_predictor(result.checkpoint)
        test = data.subset(numbered_split(len(data), cfg.split, 0)[2])
        spectra = test.inputs(modality)
        scaled = predict_scaled(predictor.net, spectra)
        share = _explain(predictor, spectra, test.ffi, out, modality)
        report["models"][modality] = {
            "test": result.test, "lime_share_100_120_hz": share,
            "scores": [{"ffi": round(3 * float(s), 3), "true_ffi": int(t)} for s, t in zip(scaled, test.ffi)],
        }  # fmt: skip
        m = result.test  # the same held-out blows: split 0's test part
        console.print(
            f"  {modality:8s} model: {len(test)} unseen blows, accuracy {m['accuracy']:.0%}, MSE {m['mse']:.2e}, "
            f"LIME share of 100-120 Hz {share:.0%}"
        )
    write_text(json.dumps(report, indent=2), out / "scores.json")
    console.print(f"  wrote {out}/accel_lime_spectra.png, transfer_lime_spectra.png (LIME bands) and the condition spectra")
    return {**report, "figure": "vibration/transfer_lime_spectra.png"}

