"""``railwatch vibration``: loose fasteners from hammer-test spectra and real DAS recordings (paper 001)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.table import Table

from railwatch.cli_support import (
    AcceleratorOption,
    BatchSizeOption,
    ConfigOption,
    EpochsOption,
    JsonOption,
    LrOption,
    QuietOption,
    SeedOption,
    console,
    one_line_errors,
    print_json,
    settings,
    training_overrides,
)
from railwatch.errors import InputError
from railwatch.imageio import write_text
from railwatch.vibration.das_cli import register as register_das_commands

app = typer.Typer(help="Loose-fastener detection from accelerometer and DAS spectra (paper 001).", no_args_is_help=True)
register_das_commands(app)

DataArgument = Annotated[Path, typer.Argument(help="Hammer-test HDF5 file (`railwatch data synth hammer`).", show_default=False)]
CheckpointOption = Annotated[Path, typer.Option("--checkpoint", "-c", help="Model file from `railwatch vibration train`.")]
MODALITIES = ("accel", "das", "transfer")


def _read(path: Path):
    from railwatch.vibration.hammer_io import read_hammer_h5

    return read_hammer_h5(path)


def print_ffi_metrics(rows: dict[str, dict[str, float]], title: str) -> None:
    """A table of MSE, accuracy and macro P/R/F1, one row per name."""
    table = Table(title=title)
    for column in ("", "MSE", "accuracy", "precision", "recall", "F1"):
        table.add_column(column, justify="right" if column else "left")
    for name, m in rows.items():
        table.add_row(name, f"{m['mse']:.2e}", *(f"{100 * m[k]:.2f}%" for k in ("accuracy", "precision", "recall", "f1")))
    console.print(table)


@app.command()
@one_line_errors
def train(
    data: DataArgument,
    modality: Annotated[Optional[str], typer.Option("--modality", "-m", help="accel, das, or transfer (accelerometer-guided DAS).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for best.pt, metrics.json and the logs.")] = Path("runs/vibration"),
    split: Annotated[int, typer.Option("--split", help="Which of the random 7:1:2 splits (0-based; the benchmark averages 5).", min=0)] = 0,
    epochs: EpochsOption = None,
    finetune_epochs: Annotated[Optional[int], typer.Option("--finetune-epochs", help="DAS fine-tuning epochs after transfer pre-training.")] = None,
    ed_weight: Annotated[Optional[float], typer.Option("--ed-weight", help="lambda of the encoder-discrepancy loss (transfer).")] = None,
    accelerometer: Annotated[Optional[int], typer.Option("--accelerometer", help="Accelerometer whose 3 axes are read (0-based).")] = None,
    batch_size: BatchSizeOption = None,
    lr: LrOption = None,
    seed: SeedOption = None,
    accelerator: AcceleratorOption = None,
    config: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train the CNN+Transformer FFI regressor on one random split and measure its test part.

    accel reads the three axes of one accelerometer, das the six DAS sensing points; transfer
    pre-trains both encoders with MSE + lambda x encoder discrepancy on paired events, then
    fine-tunes the DAS encoder and head on DAS alone. The checkpoint kept is the epoch with the
    lowest validation MSE. Adam, lr 1e-3 decaying to 1e-4, batch 20 (the paper's settings).
    """
    from railwatch.vibration.data import spectra_set
    from railwatch.vibration.train import train_vibration

    if modality is not None and modality not in MODALITIES:
        raise InputError(f"--modality must be one of {', '.join(MODALITIES)}, got {modality!r}")
    flags = dict(
        modality=modality, epochs=epochs, finetune_epochs=finetune_epochs, ed_weight=ed_weight, accelerometer=accelerometer,
        batch_size=batch_size, lr=lr, seed=seed, accelerator=accelerator,
    )  # fmt: skip
    cfg = settings(config, training_overrides("vibration.train", **flags)).vibration.train
    dataset = _read(data)
    spectra = spectra_set(dataset, cfg.accelerometer, cfg.window_s, cfg.max_freq, source=str(data))
    spectra.inputs("accel" if cfg.modality == "transfer" else cfg.modality)  # a missing modality fails before training
    console.print(f"training the {cfg.modality} regressor on split {split} of {len(spectra)} events ({dataset.site} site) -> {out}")
    result = train_vibration(spectra, cfg, out, split, meta={"data": str(data), "site": dataset.site}, progress=not quiet)
    print_ffi_metrics({"test": result.test}, f"{cfg.modality}: test part of split {split}")
    write_text(json.dumps({"val": result.metrics, "test": result.test}, indent=2), out / "metrics.json")
    console.print(f"checkpoint: {result.checkpoint}; logs: {result.log_dir}")


@app.command("eval")
@one_line_errors
def eval_(data: DataArgument, checkpoint: CheckpointOption, as_json: JsonOption = False) -> None:
    """Score every event of a hammer-test file and print MSE, accuracy and macro precision/recall/F1."""
    from railwatch.vibration.infer import load_predictor
    from railwatch.vibration.metrics import ffi_metrics

    predictor = load_predictor(checkpoint)
    dataset = _read(data)
    ffi = predictor.predict_dataset(dataset, str(data))
    metrics = ffi_metrics(ffi / 3.0, dataset.ffi)
    if as_json:
        print_json({"data": str(data), "site": dataset.site, "events": len(dataset), "modality": predictor.modality, **metrics})
        return
    print_ffi_metrics({predictor.modality: metrics}, f"{data.name} ({dataset.site} site, {len(dataset)} events)")


@app.command()
@one_line_errors
def predict(
    data: DataArgument,
    checkpoint: CheckpointOption,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write one JSON line per event here.")] = None,
    as_json: JsonOption = False,
) -> None:
    """FFI of every event of a hammer-test file: the continuous value and the nearest class (loose clips)."""
    from railwatch.vibration.infer import load_predictor

    predictor = load_predictor(checkpoint)
    dataset = _read(data)
    ffi = predictor.predict_dataset(dataset, str(data))
    rows = [
        {"event": i, "ffi": round(float(v), 4), "loose_clips": int(np.clip(np.rint(v), 0, 3)), "true_ffi": int(t)}
        for i, (v, t) in enumerate(zip(ffi, dataset.ffi))
    ]
    if out is not None:
        write_text("".join(json.dumps(r) + "\n" for r in rows), out)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{data.name}: {predictor.modality} model")
    for column in ("event", "FFI", "loose clips", "true"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(str(r["event"]), f"{r['ffi']:.2f}", str(r["loose_clips"]), str(r["true_ffi"]))
    console.print(table)


@app.command()
@one_line_errors
def explain(
    data: DataArgument,
    checkpoint: CheckpointOption,
    out: Annotated[Path, typer.Option("--out", help="Folder for the figures and contributions.json.")] = Path("runs/vibration/lime"),
    bands: Annotated[Optional[int], typer.Option("--bands", help="K equal frequency bands per channel.")] = None,
    samples: Annotated[Optional[int], typer.Option("--samples", help="Perturbed spectra per explanation.")] = None,
    config: ConfigOption = None,
) -> None:
    """Segment-LIME: which frequency bands of which channels raise or lower the predicted FFI.

    Explains the first event of each FFI in the file and draws the paper's two figures:
    lime_bars.png (the top band contributions per FFI, red raises the FFI, green lowers it) and
    lime_spectra.png (the spectra with the contributing bands shaded). Prints the share of
    |contribution| in the 100-120 Hz band (the rail's lateral mode).
    """
    from railwatch.vibration.figures import channel_names, lime_bars_figure, lime_spectra_figure
    from railwatch.vibration.infer import load_predictor
    from railwatch.vibration.lime import explain_bands

    cfg = settings(config, {"vibration.lime.bands": bands, "vibration.lime.samples": samples}).vibration.lime
    predictor = load_predictor(checkpoint)
    dataset = _read(data)
    levels = np.unique(dataset.ffi)
    picks = np.array([int(np.flatnonzero(dataset.ffi == level)[0]) for level in levels])
    spectra = predictor.dataset_spectra(dataset.subset(picks), str(data))
    contrib = explain_bands(predictor.net, spectra, predictor.freqs, cfg)
    names = channel_names(predictor.reads, predictor.channels)
    bars = lime_bars_figure(contrib, levels, names, out / "lime_bars.png")
    shaded = lime_spectra_figure(spectra, contrib, predictor.freqs, levels, names, out / "lime_spectra.png")
    share = contrib.share(100.0, 120.0)
    report = {
        "events": picks.tolist(), "ffi": levels.tolist(), "band_edges_hz": contrib.edges.tolist(), "channels": names,
        "contributions": contrib.values.tolist(), "share_100_120_hz": share.tolist(),
    }  # fmt: skip
    write_text(json.dumps(report, indent=1), out / "contributions.json")
    console.print(f"wrote {bars} and {shaded}; share of |contribution| in 100-120 Hz: {np.mean(share):.1%}")


@app.command()
@one_line_errors
def export(
    checkpoint: Annotated[Path, typer.Argument(help="Model file from `railwatch vibration train`.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="ONNX file to write.")] = Path("vibration.onnx"),
) -> None:
    """Export the regressor to ONNX (input: N x channels x bins peak-normalised spectra; output: FFI/3) and check it."""
    import torch

    from railwatch.export import export_onnx, onnx_max_abs_diff
    from railwatch.vibration.infer import load_predictor

    predictor = load_predictor(checkpoint)
    example = torch.rand(2, predictor.channels, predictor.net.bins, generator=torch.Generator().manual_seed(0))
    export_onnx(predictor.net, example, out, input_name="spectra", output_names=("ffi_scaled",))
    console.print(f"wrote {out}; ONNX Runtime vs torch max |diff| {onnx_max_abs_diff(predictor.net, out, example):.2e}")
