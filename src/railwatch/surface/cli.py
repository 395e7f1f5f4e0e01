"""``railwatch surface``: rail running-surface defect segmentation (paper 002)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from railwatch.cli_support import (
    AcceleratorOption,
    BatchSizeOption,
    ConfigOption,
    DevicesOption,
    EpochsOption,
    JsonOption,
    LrOption,
    MaxStepsOption,
    PrecisionOption,
    QuietOption,
    ResumeOption,
    SeedOption,
    WorkersOption,
    console,
    one_line_errors,
    print_json,
    print_training_result,
    settings,
    training_overrides,
)
from railwatch.errors import InputError

if TYPE_CHECKING:
    from railwatch.config import SurfaceTrainConfig
    from railwatch.surface.cv import FoldScores

app = typer.Typer(help="Rail running-surface defects (paper 002).", no_args_is_help=True)

DataArgument = Annotated[Path, typer.Argument(help="RSDDs folder (holding 'Type-I RSDDs dataset/' ...) or a folder with images/ and masks/.")]
RailTypeOption = Annotated[Optional[str], typer.Option("--rail-type", help="type1 (express rail, 100x160 tiles) or type2 (100x55).")]
WeightsArgument = Annotated[Path, typer.Argument(help="Surface checkpoint (best.pt from `surface train`).")]
BackboneOption = Annotated[
    Optional[Path],
    typer.Option("--backbone-weights", help="Local torchvision VGG state dict (vgg19 for the FCN) to start the encoder from."),
]
TileHeightOption = Annotated[Optional[int], typer.Option("--tile-height", help="Rows per tile (100 in the paper).")]
LrScheduleOption = Annotated[
    Optional[str],
    typer.Option("--lr-schedule", help="constant (the paper) or cosine: anneal --lr to surface.train.lr_min over the run."),
]


def _train_settings(config: Optional[Path], **flags: Any) -> SurfaceTrainConfig:
    """The ``surface.train`` settings of ``--config`` (or the defaults) with the flags that were given on top."""
    if flags.get("backbone_weights") is not None:
        flags["backbone_weights"] = str(flags["backbone_weights"])
    return settings(config, training_overrides("surface.train", **flags)).surface.train


@app.command()
@one_line_errors
def models(as_json: JsonOption = False) -> None:
    """List the surface networks with their parameter counts (--json: [{name, description, params}])."""
    from railwatch.surface.models import list_surface_models

    infos = list_surface_models()
    if as_json:
        print_json([info.to_dict() for info in infos])
        return
    table = Table(title="surface models")
    for column in ("name", "params", "description"):
        table.add_column(column)
    for info in infos:
        table.add_row(info.name, f"{info.params:,}", info.description)
    console.print(table)


@app.command()
@one_line_errors
def train(
    data: DataArgument,
    out: Annotated[Path, typer.Option("--out", help="Folder for best.pt and the training logs.")] = Path("runs/surface"),
    rail_type: RailTypeOption = None,
    model: Annotated[Optional[str], typer.Option("--model", help="fcn-type1, fcn-type2, fcn-8s or segnet (default: the FCN of the rail type).")] = None,
    backbone_weights: BackboneOption = None,
    tile_height: TileHeightOption = None,
    val_fraction: Annotated[Optional[float], typer.Option("--val-fraction", help="Share of tiles held out for testing (0.1).")] = None,
    flips: Annotated[Optional[bool], typer.Option("--flips/--no-flips", help="Random flips of training tiles.")] = None,
    epochs: EpochsOption = None,
    max_steps: MaxStepsOption = None,
    batch_size: BatchSizeOption = None,
    lr: LrOption = None,
    lr_schedule: LrScheduleOption = None,
    seed: SeedOption = None,
    accelerator: AcceleratorOption = None,
    devices: DevicesOption = None,
    precision: PrecisionOption = None,
    num_workers: WorkersOption = None,
    resume: ResumeOption = False,
    config: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train a defect segmenter with the paper's settings (Adam 1e-4, batch 16, cross-entropy, 300 epochs).

    Tiles are 100 rows high across the full strip width; masks are thresholded at 127; 10% of the
    tiles are held out as the test set, and the training tiles' mean and standard deviation
    normalise every input. Keeps the model with the best held-out defect IoU as OUT/best.pt
    (loads with torch.load(weights_only=True)), normalisation included.
    """
    from railwatch.surface.train import train_surface

    cfg = _train_settings(
        config, rail_type=rail_type, model=model, backbone_weights=backbone_weights, tile_height=tile_height, val_fraction=val_fraction,
        flips=flips, epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr, lr_schedule=lr_schedule,
        seed=seed, accelerator=accelerator, devices=devices, precision=precision, num_workers=num_workers, resume=resume or None,
    )  # fmt: skip
    result = train_surface(data, out, cfg, progress=not quiet)
    print_training_result(result)
    console.print(f"time per step: {result.step_ms:.0f} ms")


def _scores_table(title: str, scores: dict) -> Table:
    table = Table(title=title)
    for column in ("accuracy", "F1", "precision", "recall", "IoU"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{scores[k]:.4f}" for k in ("accuracy", "f1", "precision", "recall", "iou")))
    return table


@app.command("eval")
@one_line_errors
def evaluate(
    weights: WeightsArgument,
    data: DataArgument,
    rail_type: RailTypeOption = None,
    split: Annotated[str, typer.Option("--split", help="all tiles, or test: the tiles `surface train` held out.")] = "all",
    threshold: Annotated[float, typer.Option("--threshold", help="Defect probability above which a pixel is a defect.")] = 0.5,
    as_json: JsonOption = False,
) -> None:
    """Score a model on a data set's tiles: accuracy, F1, precision, recall and IoU of the defect class (Table 3)."""
    from railwatch.surface.evaluate import evaluate_surface
    from railwatch.surface.infer import SurfaceSegmenter

    segmenter = SurfaceSegmenter.load(weights)
    rail_type = rail_type or segmenter.meta.get("rail_type") or "type1"
    result = evaluate_surface(segmenter, data, rail_type, split, threshold)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(_scores_table(f"{segmenter.name} on {data} ({rail_type}, {split}: {result.tiles} tiles)", result.scores.to_dict()))
    console.print(f"{result.ms_per_tile:.1f} ms per tile")


@app.command()
@one_line_errors
def predict(
    weights: WeightsArgument,
    source: Annotated[Path, typer.Argument(help="A full-length rail image, or a folder of them.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for masks, overlays and defect lists.")] = Path("surface_out"),
    threshold: Annotated[float, typer.Option("--threshold", help="Defect probability above which a pixel is a defect.")] = 0.5,
    min_area: Annotated[int, typer.Option("--min-area", help="Smallest defect kept, in pixels.", min=1)] = 4,
    mm_per_px: Annotated[Optional[float], typer.Option("--mm-per-px", help="Scale, to report positions and sizes in mm too.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Segment full-length rail images: tile along the rail, segment, stitch the mask back, list the defects.

    For each image NAME writes NAME_mask.png (defects white), NAME_overlay.png (defects in red,
    numbered boxes) and NAME_defects.json: per defect its position along the rail (rows),
    length, width, area and mean probability, in pixels (and mm with --mm-per-px).
    """
    from PIL import Image

    from railwatch.imageio import IMAGE_SUFFIXES, write_image, write_text
    from railwatch.surface.infer import SurfaceSegmenter, overlay, segment_file

    if mm_per_px is not None and mm_per_px <= 0:
        raise InputError(f"--mm-per-px must be positive, got {mm_per_px}")
    segmenter = SurfaceSegmenter.load(weights)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{source}: no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    else:
        files = [source]
    records = []
    for path in files:
        image, result = segment_file(segmenter, path, threshold, min_area)
        defects = [d.to_dict() for d in result.defects]
        if mm_per_px:
            for d in defects:
                d |= {
                    "position_mm": d["row_start"] * mm_per_px, "length_mm": d["length_px"] * mm_per_px,
                    "width_mm": (d["col_end"] - d["col_start"]) * mm_per_px, "area_mm2": d["area_px"] * mm_per_px**2,
                }  # fmt: skip
        record = {"image": str(path), "height": image.shape[0], "width": image.shape[1], "defect_pixels": int(result.mask.sum()), "defects": defects}
        write_image(Image.fromarray(result.mask.astype("uint8") * 255), out / f"{path.stem}_mask.png")
        write_image(overlay(image, result), out / f"{path.stem}_overlay.png")
        write_text(json.dumps(record, indent=2), out / f"{path.stem}_defects.json")
        records.append(record)
    if as_json:
        print_json({"model": segmenter.name, "images": records})
        return
    table = Table(title=f"{len(files)} image(s) segmented with {segmenter.name} -> {out}")
    for column in ("image", "defects", "defect px", "largest (px)", "rows of the largest"):
        table.add_column(column)
    for r in records:
        big = max(r["defects"], key=lambda d: d["area_px"], default=None)
        table.add_row(
            Path(r["image"]).name, str(len(r["defects"])), str(r["defect_pixels"]),
            str(big["area_px"]) if big else "-", f"{big['row_start']}-{big['row_end']}" if big else "-",
        )  # fmt: skip
    console.print(table)


@app.command()
@one_line_errors
def cv(
    data: DataArgument,
    out: Annotated[Path, typer.Option("--out", help="Folder for each fold's checkpoint and logs.")] = Path("runs/surface_cv"),
    rail_type: RailTypeOption = None,
    models_: Annotated[str, typer.Option("--models", help="Comma-separated networks; default: the FCN of the rail type, fcn-8s, segnet.")] = "",
    folds: Annotated[Optional[int], typer.Option("--folds", help="Folds (5 in the paper).")] = None,
    tile_height: TileHeightOption = None,
    backbone_weights: BackboneOption = None,
    epochs: EpochsOption = None,
    max_steps: MaxStepsOption = None,
    batch_size: BatchSizeOption = None,
    lr: LrOption = None,
    lr_schedule: LrScheduleOption = None,
    seed: SeedOption = None,
    accelerator: AcceleratorOption = None,
    devices: DevicesOption = None,
    precision: PrecisionOption = None,
    resume: ResumeOption = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """k-fold cross-validation of several networks with one budget, printed as the paper's Tables 5-7.

    Every network trains on the same folds with the same schedule; each fold is scored with the
    network at the end of its budget. Prints F1 and IoU per fold and the means with time per step.
    """
    from railwatch.surface.cv import cross_validate, tables_markdown
    from railwatch.surface.data import find_pairs, load_tiles
    from railwatch.surface.models import BUILDERS

    cfg = _train_settings(
        config, rail_type=rail_type, backbone_weights=backbone_weights, tile_height=tile_height, folds=folds, epochs=epochs,
        max_steps=max_steps, batch_size=batch_size, lr=lr, lr_schedule=lr_schedule, seed=seed, accelerator=accelerator,
        devices=devices, precision=precision, resume=resume or None,
    )  # fmt: skip
    names = [m.strip() for m in models_.split(",") if m.strip()] or [f"fcn-{cfg.rail_type}", "fcn-8s", "segnet"]
    unknown = [m for m in names if m not in BUILDERS]
    if unknown:
        raise InputError(f"unknown surface model {unknown[0]!r}; known: {', '.join(BUILDERS)}")
    tiles = load_tiles(find_pairs(data, cfg.rail_type), cfg.tile_height, cfg.mask_threshold)

    def report(name: str, scores: FoldScores) -> None:
        if not as_json:
            console.print(f"{name} fold {scores.fold}: F1 {scores.f1:.3f}, IoU {scores.iou:.3f}, {scores.step_ms:.0f} ms/step")

    results = cross_validate(tiles, names, cfg, out, progress=not (quiet or as_json), on_fold=report)
    if as_json:
        print_json({"rail_type": cfg.rail_type, "tiles": len(tiles), "models": [r.to_dict() for r in results]})
        return
    console.print(tables_markdown({cfg.rail_type: results}), markup=False)


@app.command()
@one_line_errors
def export(
    weights: WeightsArgument,
    out: Annotated[Path, typer.Option("--out", help="ONNX file to write.")] = Path("surface.onnx"),
) -> None:
    """Export a model to ONNX with its normalisation built in, and check it against torch.

    Input: N x 1 x H x W grey values on the 0-255 scale (H the tile height; any width). Output:
    class scores (background, defect) per pixel. Prints the largest difference between ONNX
    Runtime and torch on a tile.
    """
    import torch

    from railwatch.export import export_onnx, onnx_max_abs_diff
    from railwatch.surface.infer import SurfaceSegmenter

    segmenter = SurfaceSegmenter.load(weights)
    width = segmenter.tile_width or 160
    example = 255 * torch.rand(1, 1, segmenter.tile_height, width, generator=torch.Generator().manual_seed(0))
    export_onnx(segmenter.net, example, out, input_name="grey")
    diff = onnx_max_abs_diff(segmenter.net, out, example)
    console.print(f"wrote {out}; ONNX Runtime vs torch max |diff| = {diff:.2e}")
