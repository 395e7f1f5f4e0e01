"""``railwatch intrusion train-seg | eval-seg | segment | export-seg``: the track segmenter on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

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
    from railwatch.intrusion.seg.infer import Segmenter

WEIGHTS_HELP = "Segmenter checkpoint (.pt from train-seg); defaults to the small model shipped with railwatch."
WeightsOption = Annotated[Optional[Path], typer.Option("--weights", "-w", help=WEIGHTS_HELP)]


def packaged_weights() -> Path:
    """The small BiSeNetV2 trained on generated scenes that ships with railwatch."""
    return Path(__file__).parent / "weights" / "bisenetv2_scenes_small.pt"


def load_segmenter(weights: Optional[Path], device: str = "cpu") -> Segmenter:
    """A :class:`~railwatch.intrusion.seg.infer.Segmenter` from ``weights`` or the packaged model."""
    from railwatch.intrusion.seg.infer import Segmenter

    path = weights or packaged_weights()
    if weights is None and not path.is_file():
        raise InputError(f"{path}: no packaged model in this install; pass --weights")
    return Segmenter.load(path, device)


def parse_size(text: Optional[str], flag: str) -> tuple[Optional[int], Optional[int]]:
    if text is None:
        return None, None
    try:
        h, w = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise InputError(f"{flag} {text!r}: expected HEIGHTxWIDTH, e.g. 512x1024") from None
    return h, w


def train_seg(
    data: Annotated[Path, typer.Argument(help="Scene data set folder (from `railwatch data synth scenes`).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for best.pt and the training logs.")] = Path("runs/seg"),
    arch: Annotated[Optional[str], typer.Option("--arch", help="bisenetv2 (default) or fcn (baseline).")] = None,
    input_size: Annotated[Optional[str], typer.Option("--input-size", help="HxW the network sees, e.g. 512x1024.")] = None,
    crop: Annotated[Optional[str], typer.Option("--crop", help="HxW random training crop; 0x0 for whole images.")] = None,
    head_channels: Annotated[Optional[int], typer.Option("--head-channels", help="Segmentation head width.")] = None,
    upsample: Annotated[Optional[str], typer.Option("--upsample", help="bilinear or shuffle.")] = None,
    epochs: EpochsOption = None,
    max_steps: MaxStepsOption = None,
    batch_size: BatchSizeOption = None,
    lr: LrOption = None,
    seed: SeedOption = None,
    accelerator: AcceleratorOption = None,
    devices: DevicesOption = None,
    precision: PrecisionOption = None,
    num_workers: WorkersOption = None,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from this segmenter checkpoint.")] = None,
    resume: ResumeOption = False,
    config: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train the track segmenter (BiSeNetV2, paper 003 Table 1) on generated scenes.

    Keeps the model with the best validation mIoU as OUT/best.pt (loads with
    torch.load(weights_only=True)); logs losses and per-class IoU to OUT/logs as CSV.
    Settings come from --config (section intrusion.seg / intrusion.seg_train); flags override.
    """
    from railwatch.intrusion.seg.train import train_segmenter

    ih, iw = parse_size(input_size, "--input-size")
    ch, cw = parse_size(crop, "--crop")
    cfg = settings(
        config,
        {
            "intrusion.seg.arch": arch,
            "intrusion.seg.input_height": ih,
            "intrusion.seg.input_width": iw,
            "intrusion.seg.head_channels": head_channels,
            "intrusion.seg.upsample": upsample,
            "intrusion.seg_train.crop_height": ch,
            "intrusion.seg_train.crop_width": cw,
            **training_overrides(
                "intrusion.seg_train", init, epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr, seed=seed,
                accelerator=accelerator, devices=devices, precision=precision, num_workers=num_workers, resume=resume or None,
            ),
        },
    ).intrusion
    result = train_segmenter(data, out, cfg.seg, cfg.seg_train, progress=not quiet)
    print_training_result(result)


def eval_seg(
    data: Annotated[Path, typer.Argument(help="Scene data set folder.")],
    weights: WeightsOption = None,
    split: Annotated[str, typer.Option("--split", help="Which split to score (folder under images/).")] = "val",
    max_distance: Annotated[
        float, typer.Option("--max-distance", help="Score lateral offsets of objects up to this far (m).")
    ] = 30.0,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Score a segmenter: per-class IoU, mIoU, and the lateral offset error of objects.

    The offsets come from rails fitted on the predicted rail mask (paper 003, Eq. 9-13) at each
    object's true foot point, compared with the renderer's truth in meta/<split>/*.json.
    """
    from railwatch.intrusion.seg.evaluate import evaluate_segmenter

    cfg = settings(config).intrusion
    segmenter = load_segmenter(weights)
    result = evaluate_segmenter(segmenter, data, split, max_distance, cfg.railfit, cfg.gauge, progress=not as_json)
    summary = result.summary()
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"{segmenter.cfg.arch} on {data} ({split}, {result.images} images)")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    for name, iou in result.iou.items():
        table.add_row(name, f"{iou:.4f}")
    table.add_row("[bold]mean[/]", f"[bold]{result.miou:.4f}[/]")
    console.print(table)
    off = summary["offset_error_mm"]
    if off:
        console.print(
            f"lateral offset error within {max_distance:g} m: median {off['median']:.0f} mm, "
            f"p95 {off['p95']:.0f} mm, max {off['max']:.0f} mm over {summary['objects_placed']} objects "
            f"({summary['objects_missed']} not placed)"
        )


def segment(
    source: Annotated[Path, typer.Argument(help="An image, or a folder of images.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for masks, overlays and rails.")] = Path("seg_out"),
    weights: WeightsOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Segment track and rails in cab-view images and fit the rails, ego track marked.

    For each image NAME writes NAME_classes.png (class ids), NAME_rail.png (rail mask),
    NAME_overlay.png (classes, fitted rails and the ego track's risk zones) and NAME.json (rails).
    """
    from railwatch.intrusion.seg.data import image_files
    from railwatch.intrusion.seg.infer import segment_to_files

    cfg = settings(config).intrusion
    segmenter = load_segmenter(weights)
    files = image_files(source) if source.is_dir() else [source]
    records = [segment_to_files(segmenter, path, out, cfg) for path in files]
    if as_json:
        print_json({"images": records})
        return
    table = Table(title=f"{len(files)} image(s) segmented -> {out}")
    for column in ("image", "rail px", "rails", "ego track"):
        table.add_column(column)
    for r in records:
        table.add_row(Path(r["image"]).name, str(r["rail_pixels"]), str(len(r["rails"])), "yes" if r["ego"] else "no")
    console.print(table)


def export_seg(
    weights: Annotated[Path, typer.Argument(help="Segmenter checkpoint (.pt).")],
    out: Annotated[Path, typer.Option("--out", help="ONNX file to write.")] = Path("track_seg.onnx"),
) -> None:
    """Export a segmenter to ONNX (input: 1x3xHxW RGB in [0, 1]; output: class logits) and check it.

    Runs the same image through torch and ONNX Runtime and prints the largest difference.
    """
    import torch

    from railwatch.export import export_onnx, onnx_max_abs_diff

    segmenter = load_segmenter(weights)
    example = torch.rand(1, 3, *segmenter.input_size, generator=torch.Generator().manual_seed(0))
    export_onnx(segmenter.net, example, out)
    diff = onnx_max_abs_diff(segmenter.net, out, example)
    console.print(f"wrote {out}; ONNX Runtime vs torch max |diff| = {diff:.2e}")




def models(as_json: JsonOption = False) -> None:
    """List the intrusion networks with their parameters and GFLOPs at the default input size."""
    from railwatch.intrusion.models import list_models

    infos = list_models()
    if as_json:
        print_json([info.to_dict() for info in infos])
        return
    table = Table(title="intrusion models")
    for column in ("name", "task", "input", "params (M)", "GFLOPs", "description"):
        table.add_column(column)
    for i in infos:
        table.add_row(i.name, i.task, f"{i.input_size[0]}x{i.input_size[1]}", f"{i.params / 1e6:.2f}", f"{i.gflops:.1f}", i.description)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the segmentation commands to the ``intrusion`` group."""
    commands = {"train-seg": train_seg, "eval-seg": eval_seg, "segment": segment, "export-seg": export_seg, "models": models}
    for name, command in commands.items():
        app.command(name)(one_line_errors(command))


__all__ = ["register", "load_segmenter", "packaged_weights"]
