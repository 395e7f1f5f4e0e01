"""Fastener anomaly detection, paper 000 Tables 5 and 7: KD-GAN, its ablations and three baselines, mean +- std over seeds.

1. **Data.** ``--protocol mnist``: section 3.1.1 on the real MNIST test split in ``--mnist``
   (digits 1-9 normal, 128 x 128 bicubic; 1200 normal for training, 600 + 40 for validation,
   200 + 60 for testing), drawn again for each seed. The anomalies are Figure 7's three kinds,
   a third each: zeros, digits with two parts swapped ("disorder") and digits with a part
   erased ("missing"); ``--mnist-anomalies digit`` takes zeros alone. ``--protocol synthetic``: generated fastener
   crops split as Table 4 (1200 / 600 + 40 / 200 + 60, anomalies broken clip, missing bolt and
   foreign-object occlusion), also per seed.
2. **Training** with one budget for every model: ``--profile`` (quick 150 steps, paper 1000 steps)
   or ``--steps``, batch 16, Adam 1e-4 cosine-annealed to 2e-5, weight decay 1e-5, flips and
   +-20% brightness; the checkpoint kept is the one with the best validation AUC. ``--set``
   changes any ``fasteners.train`` setting, e.g. the loss weights of Eq. 16-17; the loss and
   architecture settings are recorded with the budget, so runs with others are not mixed into
   one table.
3. **Testing**: AUC, and ACC, recall and F1 at the threshold that maximised F1 on validation
   (Eq. 18-20), and the AUC of each anomaly kind against the normal test crops. For KD-GAN variants the
   test AUC of each of its scores (Eq. 10's discriminator, reconstruction, ssim, distillation)
   is recorded too.

Nothing is asserted; the paper's bar (KD-GAN mean AUC >= 0.94 on MNIST) is printed beside the
figures. Run from the repository root::

    .venv/bin/python benchmarks/fasteners_mnist.py --protocol mnist --profile paper --seeds 0,1,2

Results go to ``benchmarks/results/fasteners_<protocol>.json``, rewritten after every run. Runs
already there with the same budget are kept and not trained again (``--fresh`` trains them again,
as a change to a model needs). A run cut off part way goes on from the ``last.ckpt`` it left in
``--work`` (its ``train_seconds`` then count only the part after, and it is marked ``resumed``),
and the file is read back before each write, so processes with different ``--seeds``
or ``--models`` can share one ``--out`` and run side by side (one thread each, say).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from common import machine_info, write_report

from railwatch.config import FastenerLossConfig, FastenerModelConfig, FastenerTrainConfig, RailwatchConfig, override
from railwatch.fasteners.data import CropSplits, synthetic_protocol
from railwatch.fasteners.evaluate import evaluate_scores
from railwatch.fasteners.infer import FastenerDetector
from railwatch.fasteners.mnist import MNIST_ANOMALY_KINDS, mnist_protocol
from railwatch.fasteners.models import variant_config
from railwatch.fasteners.scoring import SCORE_SOURCES, detection_scores
from railwatch.fasteners.train import fit_fasteners, score_crops
from railwatch.training import RESUME_FILE

PAPER_AUC = 0.94
BUDGET_KEYS = ("protocol", "mnist_anomalies", "profile", "steps", "score", "val_every", "precision", "loss", "arch")
"""Settings that must match for runs in one report to belong to one table."""
EARLIER_DEFAULTS = {"mnist_anomalies": "digit", "loss": FastenerLossConfig().model_dump(mode="json"), "arch": FastenerModelConfig().model_dump(mode="json")}
"""What reports written before a budget key was recorded used."""
DEFAULT_MODELS = "kd-gan,kd-gan-baseline,kd-gan-msac,kd-gan-ejpu,squid,ganomaly,memae,f-anogan"
METRICS = ("auc", "acc", "recall", "f1")


def train_setting(text: str) -> tuple[str, str]:
    """``--set loss.distill=0.001``: one dotted key of the ``fasteners.train`` settings and its value."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. loss.distill=0.001")
    return key.strip(), value.strip()


def base_config(overrides: list[tuple[str, str]], **values: Any) -> FastenerTrainConfig:
    """The ``fasteners.train`` settings with ``values`` and the ``--set`` overrides on top."""
    dotted = {f"fasteners.train.{k}": v for k, v in values.items()} | {f"fasteners.train.{k}": v for k, v in overrides}
    try:
        return override(RailwatchConfig(), dotted).fasteners.train
    except (KeyError, TypeError, ValueError) as err:  # an unknown key, or a value pydantic refuses
        raise SystemExit(f"--set {' '.join(f'{k}={v}' for k, v in overrides)}: {' '.join(str(err).split())}") from None


def splits_for(protocol: str, seed: int, mnist: Path, anomalies: tuple[str, ...] = MNIST_ANOMALY_KINDS) -> CropSplits:
    return mnist_protocol(mnist, seed=seed, anomalies=anomalies) if protocol == "mnist" else synthetic_protocol(seed)


def run_one(splits: CropSplits, name: str, base: FastenerTrainConfig, work: Path) -> dict[str, Any]:
    """Train variant ``name`` on ``splits`` and score its test crops."""
    cfg = variant_config(name, base)
    resumed = cfg.resume and (work / RESUME_FILE).exists()
    started = time.perf_counter()
    fit = fit_fasteners(splits.train, splits.val, cfg, work, progress=False)
    seconds = time.perf_counter() - started
    detector = FastenerDetector.from_checkpoint(fit.checkpoint)
    raw = detector.raw_scores(splits.test)
    threshold = fit.stats.decision_threshold("f1" if fit.stats.f1_threshold is not None else "sigma")
    result = evaluate_scores(raw, splits.test, threshold, "f1").to_dict()
    if cfg.model == "kd-gan":
        result["auc_by_score"] = {
            source: detection_scores(score_crops(detector.net, splits.test, source), splits.test.labels, 0.0).auc
            for source in SCORE_SOURCES
        }
    return {**result, "score": fit.stats.source, "train_seconds": seconds, "val_auc": fit.metrics.get("val/auc"),
            "resumed": resumed, "processor": machine_info()["processor"]}  # fmt: skip


def recorded(settings: dict[str, Any], key: str) -> Any:
    """``settings[key]`` as a report wrote it, read with the defaults of what was added since: a
    budget key recorded later, or an ``arch`` or ``loss`` setting added later (whose default is
    what runs before it did)."""
    default = EARLIER_DEFAULTS.get(key)
    value = settings.get(key, default)
    return {**default, **value} if isinstance(default, dict) and isinstance(value, dict) else value


def finished_runs(out: Path, settings: dict[str, Any], quiet: bool = False) -> dict[str, list[dict[str, Any]]]:
    """The runs an earlier report at ``out`` holds, when its budget is ``settings``'s; else none."""
    try:
        earlier = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    before = earlier.get("settings", {})
    # the MNIST anomalies matter to the MNIST protocol only; reports from before they were recorded took zeros alone
    keys = [k for k in BUDGET_KEYS if k != "mnist_anomalies" or settings["protocol"] == "mnist"]
    if any(recorded(before, k) != settings[k] for k in keys):
        if not quiet:
            print(f"{out} holds runs with another budget; they are not kept")
        return {}
    # runs written before the processor was recorded per run all ran on the report's machine
    machine = earlier.get("machine", {}).get("processor", "")
    return {name: [{"processor": machine, **r} for r in runs] for name, runs in earlier.get("results", {}).items()}


def merge_runs(older: dict[str, list[dict[str, Any]]], newer: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Every (model, seed) run of either, ``newer``'s where both have one, seeds in order."""
    merged: dict[str, dict[int, dict[str, Any]]] = {}
    for source in (older, newer):
        for name, runs in source.items():
            merged.setdefault(name, {}).update({r["seed"]: r for r in runs})
    return {name: [runs[seed] for seed in sorted(runs)] for name, runs in merged.items()}


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * std:.1f}"


def table(results: dict[str, list[dict[str, Any]]], protocol: str) -> str:
    """Tables 5 / 7 layout: one row per model, MSAC and E-JPU marks, metrics in % as mean ± std over seeds."""
    kinds = sorted({k for runs in results.values() for r in runs for k in r.get("per_kind_auc", {})})
    kinds = kinds if len(kinds) > 1 else []  # one kind: its AUC is the AUC column
    head = ["Model", "MSAC", "E-JPU", "AUC/%", "ACC/%", "Recall/%", "F1/%"] + [f"AUC {k}/%" for k in kinds] + ["seeds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, runs in results.items():
        arch = variant_config(name).arch
        is_kd = name.startswith("kd-gan")  # the proposed model and its ablations; SQUID shares the class, not the modules
        marks = ["√" if arch.msac else "×", "√" if arch.ejpu else "×"] if is_kd else ["-", "-"]
        cells = [mean_std([r[m] for r in runs]) for m in METRICS]
        cells += [mean_std([r["per_kind_auc"][k] for r in runs if k in r.get("per_kind_auc", {})]) for k in kinds]
        lines.append("| " + " | ".join([name, *marks, *cells, str(len(runs))]) + " |")
    kd = results.get("kd-gan", [])
    if kd and protocol == "mnist":
        auc = statistics.mean(r["auc"] for r in kd)
        lines.append(f"\nKD-GAN mean test AUC {auc:.3f}: {'meets' if auc >= PAPER_AUC else 'misses'} the paper's {PAPER_AUC}")
    by_score = [r["auc_by_score"] for name, runs in results.items() if name.startswith("kd-gan") for r in runs if "auc_by_score" in r]
    if by_score:
        # runs from before a score existed do not have it
        means = {s: statistics.mean(b[s] for b in by_score if s in b) for s in SCORE_SOURCES if any(s in b for b in by_score)}
        lines.append("\nKD-GAN variants, test AUC of each score (mean over runs): " + ", ".join(f"{s} {m:.3f}" for s, m in means.items()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", choices=("mnist", "synthetic"), default="mnist")
    parser.add_argument("--mnist", type=Path, default=Path("../shared/data/mnist"), help="Folder with MNIST's t10k idx files.")
    parser.add_argument("--mnist-anomalies", default=",".join(MNIST_ANOMALY_KINDS),
                        help="The MNIST anomalies (Figure 7): 'digit' (zeros), 'disorder' (two parts swapped), 'missing' (a part erased); "
                        "'digit' alone is the zeros-only reading of earlier results.")  # fmt: skip
    parser.add_argument("--profile", choices=("quick", "paper"), default="paper")
    parser.add_argument("--steps", type=int, default=-1, help="Steps per run (overrides --profile).")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--score", default="auto", choices=("auto", *SCORE_SOURCES), help="KD-GAN's anomaly score.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], type=train_setting, metavar="KEY=VALUE",
                        help="A fasteners.train setting for every run, e.g. loss.distill=0.001 or arch.memory_slots=128 "
                        "(repeat for more); recorded with the budget.")  # fmt: skip
    parser.add_argument("--val-every", type=int, default=100)
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/work/fasteners"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--fresh", action="store_true", help="Train every run again instead of keeping those already in --out.")
    args = parser.parse_args()
    out = args.out or Path(f"benchmarks/results/fasteners_{args.protocol}.json")
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    base = base_config(
        args.overrides, profile=args.profile, max_steps=args.steps, val_every_steps=args.val_every, precision=args.precision,
        accelerator="auto", score=args.score,
    )  # fmt: skip
    settings = {
        **vars(args), "loss": base.loss.model_dump(mode="json"), "arch": base.arch.model_dump(mode="json"),
        "steps": base.steps, "batch_size": base.batch_size, "lr": base.lr, "lr_min": base.lr_min,
    }  # fmt: skip
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()}
    started = time.perf_counter()
    earlier = finished_runs(out, settings)  # read with --fresh too: it says when the report will drop runs of another budget
    done = {} if args.fresh else earlier
    results: dict[str, list[dict[str, Any]]] = {}
    for seed in seeds:
        todo = [name for name in names if seed not in {r["seed"] for r in done.get(name, [])}]
        if not todo:
            continue
        splits = splits_for(args.protocol, seed, args.mnist, tuple(args.mnist_anomalies.split(",")))
        for name in todo:
            cfg = base.model_copy(update={"seed": seed, "resume": not args.fresh})
            run = run_one(splits, name, cfg, args.work / f"{args.protocol}_{name}_s{seed}")
            results.setdefault(name, []).append({"seed": seed, **run})
            print(f"{name} seed {seed}: AUC {run['auc']:.3f} ACC {run['acc']:.3f} F1 {run['f1']:.3f} ({run['train_seconds']:.0f} s)", flush=True)
            report = merge_runs(merge_runs(done, finished_runs(out, settings, quiet=True)), results)  # what side-by-side runs wrote meanwhile
            held = {"models": ",".join(report), "seeds": ",".join(map(str, sorted({r["seed"] for runs in report.values() for r in runs})))}
            write_report(out, f"fasteners_{args.protocol}", {**settings, **held}, {"results": report}, table(report, args.protocol), started)
    if not results:
        print(f"{out} already holds every run asked for; --fresh trains them again")


if __name__ == "__main__":
    main()
