"""``railwatch fasteners``: unsupervised fastener anomaly detection with the knowledge-distilled GAN (paper 000)."""

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
    JsonOption,
    LrOption,
    MaxStepsOption,
    PrecisionOption,
    QuietOption,
    ResumeOption,
    SeedOption,
    console,
    one_line_errors,
    print_json,
    print_training_result,
    settings,
    training_overrides,
)
from railwatch.errors import InputError

if TYPE_CHECKING:
    from railwatch.config import FastenerTrainConfig
    from railwatch.fasteners.evaluate import FastenerEvaluation

app = typer.Typer(help="Fastener anomaly detection from image crops (paper 000).", no_args_is_help=True)

WeightsArgument = Annotated[Path, typer.Argument(help="Fastener checkpoint (best.pt from `fasteners train`).")]
CropsArgument = Annotated[Path, typer.Argument(help="A crop image, a folder of crops, or a crop folder with normal/ and abnormal/<kind>/.")]
DataOption = Annotated[Optional[Path], typer.Option("--data", help="Crop folder: normal/*.png and abnormal/<kind>/*.png.")]
MnistOption = Annotated[Optional[Path], typer.Option("--mnist", help="Folder with MNIST's t10k idx files: the paper's MNIST protocol.")]
RuleOption = Annotated[str, typer.Option("--rule", help="Threshold: sigma (mu + k sigma on normal validation crops) or f1 (best F1 on validation).")]


def _train_settings(config: Optional[Path], model: Optional[str], **flags: Any) -> FastenerTrainConfig:
    """``fasteners.train`` of ``--config`` (or the defaults), the variant ``model`` and the flags given on top."""
    from railwatch.fasteners.models import variant_config

    arch = {key: flags.pop(key) for key in ("msac", "case", "ejpu")}
    cfg = settings(config, training_overrides("fasteners.train", **flags)).fasteners.train
    if model is not None:
        cfg = variant_config(model, cfg)
    switches = {key: value for key, value in arch.items() if value is not None}
    return cfg.model_copy(update={"arch": cfg.arch.model_copy(update=switches)}) if switches else cfg


def _check_rule(rule: str) -> None:
    if rule not in ("sigma", "f1"):
        raise InputError(f"--rule must be sigma or f1, got {rule!r}")


@app.command()
@one_line_errors
def models(as_json: JsonOption = False) -> None:
    """List the detectors (KD-GAN, its Table 7 ablations, GANomaly, MemAE, f-AnoGAN) with parameters and GFLOPs per scored crop."""
    from railwatch.fasteners.models import list_fastener_models

    infos = list_fastener_models()
    if as_json:
        print_json([i.to_dict() for i in infos])
        return
    table = Table(title="fastener anomaly detectors (128 x 128 grey crops)")
    for column in ("name", "what it is", "parameters", "GFLOPs / crop"):
        table.add_column(column, justify="right" if column in ("parameters", "GFLOPs / crop") else "left")
    for i in infos:
        table.add_row(i.name, i.description, f"{i.params:,}", f"{i.score_gflops:.2f}")
    console.print(table)


@app.command()
@one_line_errors
def crop(
    source: Annotated[Path, typer.Argument(help="Folder of track images with YOLO txt or Pascal VOC xml boxes.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the crops to.")] = Path("fastener_crops"),
    classes: Annotated[str, typer.Option("--classes", help="Comma-separated class names to crop (default: every box).")] = "",
    margin: Annotated[float, typer.Option("--margin", help="Grow each box by this share of its size on every side.", min=0.0)] = 0.0,
    size: Annotated[int, typer.Option("--size", help="Side of the square crops (128 in the paper).", min=16)] = 128,
) -> None:
    """Cut fastener crops out of track images (section 2.5.1).

    Each annotated box is cut out, its short side zero-padded to a square and the square
    resized bilinearly to SIZE x SIZE. Boxes come from YOLO txt (images/ + labels/, or a .txt
    next to each image) or Pascal VOC xml (Annotations/ + JPEGImages/, or an .xml next to each
    image) - a detector's output in either format works the same way.
    """
    from rich.progress import Progress

    from railwatch.fasteners.cropping import crops_from_annotations

    names = [c.strip() for c in classes.split(",") if c.strip()] or None
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("cropping", total=None)
        paths = crops_from_annotations(source, out, names, size, margin, progress=lambda done, total: bar.update(task, completed=done, total=total))
    console.print(f"wrote {len(paths)} crops of {size} x {size} px to {out}")


@app.command()
@one_line_errors
def train(
    data: DataOption = None,
    mnist: MnistOption = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for best.pt and the logs.")] = Path("runs/fasteners"),
    model: Annotated[Optional[str], typer.Option("--model", help="kd-gan, an ablation (see `fasteners models`), squid, ganomaly, memae or f-anogan.")] = None,
    profile: Annotated[Optional[str], typer.Option("--profile", help="Training length: quick (150 steps) or paper (1000 steps).")] = None,
    msac: Annotated[Optional[bool], typer.Option("--msac/--no-msac", help="Multi-scale attention coupling in the teacher.")] = None,
    case: Annotated[Optional[bool], typer.Option("--case/--no-case", help="CASE attention inside MSAC.")] = None,
    ejpu: Annotated[Optional[bool], typer.Option("--ejpu/--no-ejpu", help="E-JPU in the discriminator.")] = None,
    score: Annotated[Optional[str], typer.Option("--score", help="auto (best on validation), discriminator (Eq. 10), reconstruction (squared error), ssim (worst 16 px region of 1 - SSIM) or distillation.")] = None,
    k: Annotated[Optional[float], typer.Option("--k", help="Threshold mu + k sigma.")] = None,
    max_steps: MaxStepsOption = None,
    batch_size: BatchSizeOption = None,
    lr: LrOption = None,
    seed: SeedOption = None,
    accelerator: AcceleratorOption = None,
    devices: DevicesOption = None,
    precision: PrecisionOption = None,
    resume: ResumeOption = False,
    config: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train an anomaly detector on normal crops only, then calibrate its scores.

    The crops are split as in the paper (60% of the normal crops for training, 30% plus 40% of
    the anomalies for validation, the rest for testing; or the MNIST protocol with --mnist).
    The checkpoint kept is the one with the best validation AUC (lowest reconstruction error
    when the validation crops are all normal); it stores the scores' mean and standard
    deviation on normal validation crops (Eq. 10) and the best-F1 threshold.
    """
    from railwatch.fasteners.train import fit_fasteners, load_splits

    cfg = _train_settings(
        config, model, msac=msac, case=case, ejpu=ejpu, profile=profile, score=score, k=k, max_steps=max_steps,
        batch_size=batch_size, lr=lr, seed=seed, accelerator=accelerator, devices=devices, precision=precision,
        resume=resume or None,
    )  # fmt: skip
    splits, meta = load_splits(data, mnist, cfg.seed)
    val_anomalous = int(splits.val.labels.sum())
    console.print(
        f"training {model or cfg.model} for {cfg.steps} steps ({cfg.profile} profile) on {len(splits.train)} normal crops; "
        f"validating on {len(splits.val) - val_anomalous} normal + {val_anomalous} anomalous -> {out}"
    )
    result = fit_fasteners(splits.train, splits.val, cfg, out, meta, progress=not quiet)
    print_training_result(result)
    s = result.stats
    f1 = f", best-F1 threshold {s.f1_threshold:.4g}" if s.f1_threshold is not None else ""
    console.print(f"normal validation scores: mu {s.mu:.4g}, sigma {s.sigma:.4g}; threshold mu + {s.k:g} sigma = {s.threshold:.4g}{f1}")


@app.command()
@one_line_errors
def score(
    weights: WeightsArgument,
    crops: CropsArgument,
    rule: RuleOption = "sigma",
    out: Annotated[Optional[Path], typer.Option("--out", help="Also write the verdicts to this JSON file.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Judge crops: the anomaly score A of Eq. 10 and normal/anomalous against the threshold."""
    from railwatch.fasteners.data import read_crops
    from railwatch.fasteners.infer import FastenerDetector
    from railwatch.imageio import write_text

    _check_rule(rule)
    detector = FastenerDetector.from_checkpoint(weights)
    verdicts = detector.judge(read_crops(crops, detector.image_size), rule)  # type: ignore[arg-type]
    record = {"model": detector.model, "rule": rule, "threshold": detector.stats.decision_threshold(rule), "crops": [v.to_dict() for v in verdicts]}  # type: ignore[arg-type]
    if out is not None:
        write_text(json.dumps(record, indent=2), out)
    if as_json:
        print_json(record)
        return
    table = Table(title=f"{len(verdicts)} crop(s), {detector.model}, {rule} threshold")
    for column in ("crop", "truth", "raw", "A", "verdict"):
        table.add_column(column)
    for v in verdicts:
        verdict = "[red]anomalous[/]" if v.anomalous else "normal"
        table.add_row(Path(v.source).name, v.truth, f"{v.raw:.4g}", f"{v.score:.3f}", verdict)
    console.print(table)
    console.print(f"{sum(v.anomalous for v in verdicts)} of {len(verdicts)} anomalous")


@app.command()
@one_line_errors
def explain(
    weights: WeightsArgument,
    crops: CropsArgument,
    out: Annotated[Path, typer.Option("--out", help="Folder for the heatmap pictures.")] = Path("fastener_heatmaps"),
    limit: Annotated[int, typer.Option("--limit", help="At most this many crops.", min=1)] = 64,
) -> None:
    """Grad-CAM heatmaps of where each crop looks anomalous.

    Writes NAME_heatmap.png per crop: the crop, the student's reconstruction, and the crop with
    the heatmap on top (red: where the anomaly score comes from).
    """
    from railwatch.fasteners.data import read_crops
    from railwatch.fasteners.explain import write_heatmaps
    from railwatch.fasteners.infer import FastenerDetector

    detector = FastenerDetector.from_checkpoint(weights)
    crop_set = read_crops(crops, detector.image_size)
    crop_set = crop_set.subset(range(min(limit, len(crop_set))))
    paths = write_heatmaps(detector, crop_set.images, list(crop_set.sources), out)
    console.print(f"wrote {len(paths)} heatmaps to {out}")


def _evaluation_table(title: str, result: FastenerEvaluation) -> Table:
    table = Table(title=title)
    scores = result.to_dict()
    columns = ["AUC", "ACC", "precision", "recall", "F1"] + [f"AUC {k}" for k in result.per_kind_auc]
    for column in columns:
        table.add_column(column, justify="right")
    values = [scores[k] for k in ("auc", "acc", "precision", "recall", "f1")] + list(result.per_kind_auc.values())
    table.add_row(*(f"{v:.3f}" for v in values))
    return table


@app.command("eval")
@one_line_errors
def evaluate(
    weights: WeightsArgument,
    data: DataOption = None,
    mnist: MnistOption = None,
    split: Annotated[str, typer.Option("--split", help="test: the crops `fasteners train` held out for testing; all: every crop of --data.")] = "test",
    rule: RuleOption = "f1",
    as_json: JsonOption = False,
) -> None:
    """AUC, ACC, precision, recall and F1 on labelled crops (Tables 5-7), and AUC per anomaly kind.

    With --split test (the default) the test crops are made again from the data and seed the
    checkpoint records (or from --data / --mnist with that seed).
    """
    from railwatch.checkpoint import load_checkpoint
    from railwatch.fasteners.data import read_crop_folder
    from railwatch.fasteners.evaluate import evaluate_detector
    from railwatch.fasteners.infer import FastenerDetector
    from railwatch.fasteners.train import TASK, load_splits, splits_from_meta

    _check_rule(rule)
    if split not in ("test", "all"):
        raise InputError(f"--split must be test or all, got {split!r}")
    detector = FastenerDetector.from_checkpoint(weights)
    if split == "all":
        if data is None:
            raise InputError("--split all needs --data")
        crops = read_crop_folder(data, detector.image_size)
    elif data is None and mnist is None:
        crops = splits_from_meta(load_checkpoint(weights, TASK)["meta"]).test
    else:
        seed = load_checkpoint(weights, TASK)["meta"].get("split_seed", 0)
        crops = load_splits(data, mnist, seed)[0].test
    result = evaluate_detector(detector, crops, rule)  # type: ignore[arg-type]
    if as_json:
        print_json({"model": detector.model, "split": split, **result.to_dict()})
        return
    normal, anomalous = int((crops.labels == 0).sum()), int((crops.labels == 1).sum())
    console.print(_evaluation_table(f"{detector.model}: {normal} normal + {anomalous} anomalous crops, {result.rule} threshold", result))


@app.command()
@one_line_errors
def export(
    weights: WeightsArgument,
    out: Annotated[Path, typer.Option("--out", help="ONNX file to write.")] = Path("fasteners.onnx"),
) -> None:
    """Export the scoring path (crop -> A of Eq. 10 and the raw score) to ONNX and check it against torch.

    Input: N x 1 x 128 x 128 grey crops scaled to [0, 1]. Outputs: "score" (A) and "raw".
    """
    import torch

    from railwatch.export import export_onnx, onnx_output_diffs
    from railwatch.fasteners.infer import FastenerDetector

    detector = FastenerDetector.from_checkpoint(weights)
    path = detector.scoring_path()
    size = detector.image_size
    example = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(0))
    export_onnx(path, example, out, input_name="crop", output_names=("score", "raw"))
    diff_a, diff_raw = onnx_output_diffs(path, out, example)
    sigma = detector.stats.sigma
    console.print(f"wrote {out}; ONNX Runtime vs torch max |diff|: raw {diff_raw:.2e} ({diff_raw / sigma:.2e} sigma), A {diff_a:.2e}")
