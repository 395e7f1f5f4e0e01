"""``railwatch intrusion train-det | eval-det | detect | export-det``: the object detector on the command line."""

from __future__ import annotations

import json
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
from railwatch.intrusion.seg_cli import parse_size

if TYPE_CHECKING:
    from railwatch.config import DetInferConfig
    from railwatch.intrusion.det.infer import Detector

DETECTOR_HELP = "Detector checkpoint (.pt from train-det); defaults to the small ST-YOLO shipped with railwatch."
DetectorOption = Annotated[Optional[Path], typer.Option("--weights", "-w", help=DETECTOR_HELP)]


def packaged_detector() -> Path:
    """The small ST-YOLO trained on generated scenes that ships with railwatch."""
    return Path(__file__).parent / "weights" / "st_yolo_scenes_small.pt"


def load_detector(weights: Optional[Path], infer: DetInferConfig | None = None, device: str = "cpu") -> Detector:
    """A :class:`~railwatch.intrusion.det.infer.Detector` from ``weights`` or the packaged model."""
    from railwatch.intrusion.det.infer import Detector

    path = weights or packaged_detector()
    if weights is None and not path.is_file():
        raise InputError(f"{path}: no packaged detector in this install; pass --weights")
    return Detector.load(path, infer, device)


def train_det(
    data: Annotated[Path, typer.Argument(help="YOLO data set (data.yaml) or Pascal VOC folder.")],
    model: Annotated[Optional[str], typer.Option("--model", help="st-yolo (default) or yolov8s (baseline).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for best.pt and the training logs.")] = Path("runs/det"),
    input_size: Annotated[Optional[str], typer.Option("--input-size", help="HxW the network sees, e.g. 640x640.")] = None,
    dilations: Annotated[Optional[str], typer.Option("--dilations", help="MSDA dilation per head, e.g. 1,2,3.")] = None,
    epochs: EpochsOption = None,
    max_steps: MaxStepsOption = None,
    batch_size: BatchSizeOption = None,
    lr: LrOption = None,
    val_every: Annotated[Optional[int], typer.Option("--val-every", help="Validate every N steps.")] = None,
    seed: SeedOption = None,
    accelerator: AcceleratorOption = None,
    devices: DevicesOption = None,
    precision: PrecisionOption = None,
    num_workers: WorkersOption = None,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from this detector checkpoint.")] = None,
    resume: ResumeOption = False,
    config: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train ST-YOLO (paper 003, section 2.2) or its YOLOv8s baseline.

    Loss: task-aligned assignment, BCE classes, CIoU + DFL boxes. Augmentation: mosaic, flips,
    HSV, scale (section intrusion.det_augment). Keeps the best validation mAP@0.5 as OUT/best.pt
    (loads with torch.load(weights_only=True)); logs losses and metrics to OUT/logs as CSV.
    """
    from railwatch.intrusion.det.train import train_detector

    ih, iw = parse_size(input_size, "--input-size")
    rates = None
    if dilations is not None:
        try:
            rates = [int(r) for r in dilations.split(",")]
        except ValueError:
            raise InputError(f"--dilations {dilations!r}: expected comma-separated integers, e.g. 1,2,3") from None
    cfg = settings(
        config,
        {
            "intrusion.det.arch": model,
            "intrusion.det.input_height": ih,
            "intrusion.det.input_width": iw,
            "intrusion.det.msda_dilations": rates,
            **training_overrides(
                "intrusion.det_train", init, epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr, seed=seed,
                accelerator=accelerator, devices=devices, precision=precision, num_workers=num_workers, val_every_steps=val_every,
                resume=resume or None,
            ),
        },
    ).intrusion
    result = train_detector(data, out, cfg.det, cfg.det_train, cfg.det_augment, cfg.det_infer, progress=not quiet)
    print_training_result(result)


def print_det_metrics(result: dict, title: str) -> None:
    """The paper's detection table for one model: per class and overall."""
    table = Table(title=title)
    for column in ("class", "objects", "AP@0.5", "AP@0.5:0.95", "P", "R"):
        table.add_column(column, justify="right" if column != "class" else "left")
    for name, row in result["per_class"].items():
        ap50 = "-" if row["map50"] < 0 else f"{row['map50']:.3f}"
        ap = "-" if row["map"] < 0 else f"{row['map']:.3f}"
        table.add_row(name, str(row["objects"]), ap50, ap, f"{row['precision']:.3f}", f"{row['recall']:.3f}")
    table.add_row("[bold]all[/]", "", f"[bold]{result['map50']:.3f}[/]", f"{result['map']:.3f}", f"{result['precision']:.3f}", f"{result['recall']:.3f}")
    console.print(table)


def eval_det(
    data: Annotated[Path, typer.Argument(help="YOLO data set (data.yaml) or Pascal VOC folder.")],
    weights: DetectorOption = None,
    split: Annotated[str, typer.Option("--split", help="Split to score.")] = "val",
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Score a detector: mAP@0.5, mAP@0.5:0.95, precision and recall, per class (paper 003, Table 8).

    Precision and recall count detections above the score threshold (intrusion.det_infer.conf_threshold)
    matched at IoU 0.5; mAP uses every detection (COCO protocol, torchmetrics).
    """
    from railwatch.intrusion.det.evaluate import evaluate_detector

    cfg = settings(config).intrusion
    detector = load_detector(weights, cfg.det_infer)
    result = evaluate_detector(detector, data, split, progress=not as_json)
    if as_json:
        print_json(result)
        return
    print_det_metrics(result, f"{detector.cfg.arch} on {data} ({split}, {result['images']} images)")


def detect(
    source: Annotated[Path, typer.Argument(help="An image, or a folder of images.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for annotated pictures and detections.")] = Path("det_out"),
    weights: DetectorOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Detect people, cars, animals and stones in images; write NAME_boxes.png and NAME.json for each."""
    from railwatch.imageio import read_rgb, write_image, write_text
    from railwatch.intrusion.seg.data import image_files
    from railwatch.viz import draw_detections

    cfg = settings(config).intrusion
    detector = load_detector(weights, cfg.det_infer)
    files = image_files(source) if source.is_dir() else [source]
    records = []
    for path in files:
        image = read_rgb(path)
        found = detector.detect(image)
        write_image(draw_detections(image, found), out / f"{path.stem}_boxes.png")
        record = {
            "image": str(path),
            "detections": [
                {"class": name, "score": round(float(s), 4), "box": [round(float(c), 1) for c in box]}
                for name, s, box in zip(found.names, found.scores, found.boxes)
            ],
        }
        write_text(json.dumps(record, indent=1), out / f"{path.stem}.json")
        records.append(record)
    if as_json:
        print_json({"images": records})
        return
    table = Table(title=f"{len(files)} image(s) -> {out}")
    table.add_column("image")
    table.add_column("objects")
    for r in records:
        table.add_row(Path(r["image"]).name, ", ".join(d["class"] for d in r["detections"]) or "-")
    console.print(table)


def export_det(
    weights: Annotated[Path, typer.Argument(help="Detector checkpoint (.pt).")],
    out: Annotated[Path, typer.Option("--out", help="ONNX file to write.")] = Path("detector.onnx"),
) -> None:
    """Export a detector to ONNX and check it against torch.

    Input ``image``: Bx3xHxW RGB in [0, 1], letterboxed; output ``detections``: BxNx(4 + classes),
    boxes x1, y1, x2, y2 in input px and class probabilities (NMS is left to the caller).
    """
    import torch

    from railwatch.export import export_onnx, onnx_max_abs_diff

    detector = load_detector(weights)
    example = torch.rand(1, 3, *detector.input_size, generator=torch.Generator().manual_seed(0))
    export_onnx(detector.net, example, out, output_names=("detections",))
    diff = onnx_max_abs_diff(detector.net, out, example)
    console.print(f"wrote {out}; ONNX Runtime vs torch max |diff| = {diff:.2e}")


def register(app: typer.Typer) -> None:
    """Add the detector commands to the ``intrusion`` command group."""
    for command in (train_det, eval_det, detect, export_det):
        app.command(command.__name__.replace("_", "-"))(one_line_errors(command))
