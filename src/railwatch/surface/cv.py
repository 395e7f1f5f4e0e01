"""k-fold cross-validation of surface networks, reported as paper 002's Tables 5-7 (section 4.2).

Every network sees the same folds of the same tiles with the same schedule. A fold's scores are
those of the network at the end of its budget on the fold left out (no choosing the best step on
the very tiles being scored). Each finished fold leaves its scores in ``scores.json`` beside its
checkpoint, so a comparison run with ``resume`` takes up where an interrupted one stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean

from railwatch.config import SurfaceTrainConfig
from railwatch.errors import ConfigError, InputError
from railwatch.imageio import write_text
from railwatch.surface.data import SurfaceTiles, kfold_splits
from railwatch.surface.train import fit_surface
from railwatch.training import changed_settings

SCORES_FILE = "scores.json"


@dataclass
class FoldScores:
    """One network on one fold."""

    fold: int
    f1: float
    iou: float
    loss: float
    accuracy: float
    precision: float
    recall: float
    step_ms: float
    processor: str = ""
    """The processor ``step_ms`` was measured on (empty where not recorded)."""


@dataclass
class ModelCV:
    """One network over all folds, with the means of Table 7."""

    model: str
    folds: list[FoldScores] = field(default_factory=list)

    def mean(self, name: str) -> float:
        return mean(getattr(f, name) for f in self.folds)

    def processors(self) -> list[str]:
        """The processors the folds' step times were measured on, in fold order, each once."""
        return list(dict.fromkeys(f.processor for f in self.folds if f.processor))

    def to_dict(self) -> dict:
        means = {k: self.mean(k) for k in ("f1", "iou", "loss", "accuracy", "precision", "recall", "step_ms")}
        return {"model": self.model, "folds": [asdict(f) for f in self.folds], "mean": means}


def cross_validate(
    tiles: SurfaceTiles,
    models: list[str],
    cfg: SurfaceTrainConfig,
    out: str | Path,
    progress: bool = True,
    on_fold: Callable[[str, FoldScores], None] | None = None,
    done: Mapping[str, Collection[int]] | None = None,
) -> list[ModelCV]:
    """Train every network in ``models`` on each of ``cfg.folds`` folds and score it on the fold left out.

    Args:
        tiles: All tiles of one rail type.
        models: Network names (``railwatch surface models``).
        cfg: Training settings shared by every network (``model`` is replaced per network).
        out: Folder for each run's checkpoint and logs (``out/<model>/fold<k>``).
        progress: Show Lightning's progress bar.
        on_fold: Called with ``(model, FoldScores)`` after each fold, e.g. to print as it goes.
        done: Folds (numbered from 1) already scored per network, which are skipped; the results
            then hold only the folds run here.

    With ``cfg.resume``, a fold whose ``scores.json`` is there is not trained again (its scores
    are read back) and an interrupted fold goes on from its ``last.ckpt``.
    """
    splits = kfold_splits(len(tiles), cfg.folds, cfg.seed)
    results = []
    for name in models:
        run_cfg = cfg.model_copy(update={"model": name})
        result = ModelCV(name)
        for k, (train_idx, val_idx) in enumerate(splits, start=1):
            if done and k in done.get(name, ()):
                continue
            run_dir = Path(out) / name / f"fold{k}"
            scores = finished_fold(run_dir, run_cfg) if run_cfg.resume else None
            if scores is None:
                fitted = fit_surface(tiles, train_idx, val_idx, run_cfg, run_dir, {"fold": k}, progress)
                last = fitted.last_metrics
                scores = FoldScores(
                    k, last["f1"], last["iou"], last["loss"], last["accuracy"], last["precision"], last["recall"], fitted.step_ms
                )
                record = {"settings": run_cfg.model_dump(mode="json"), "scores": asdict(scores)}
                write_text(json.dumps(record, indent=2), run_dir / SCORES_FILE)
            result.folds.append(scores)
            if on_fold:
                on_fold(name, scores)
        results.append(result)
    return results


def finished_fold(run_dir: Path, cfg: SurfaceTrainConfig) -> FoldScores | None:
    """The scores ``run_dir/scores.json`` holds, or ``None`` where the fold has not finished.

    Raises:
        InputError: the file is not a fold's scores.
        ConfigError: the fold was trained with settings other than ``cfg``.
    """
    path = run_dir / SCORES_FILE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        scores = FoldScores(**record["scores"])
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: not a fold's scores ({error}); delete it to train the fold again") from None
    changed = changed_settings(record.get("settings", {}), cfg.model_dump(mode="json"))
    if changed:
        raise ConfigError(f"{path} was trained with other settings ({'; '.join(changed[:3])}); cross-validate with the same ones")
    return scores


def tables_markdown(results: dict[str, list[ModelCV]]) -> str:
    """Tables 5 (F1 per fold), 6 (IoU per fold) and 7 (means) of paper 002 as markdown, per rail type."""
    folds = max((f.fold for rs in results.values() for r in rs for f in r.folds), default=0)
    subsets = " | ".join(f"Subset {k}" for k in range(1, folds + 1))
    lines = []
    for title, metric in (("Table 5: F1 of the defect class per fold", "f1"), ("Table 6: IoU of the defect class per fold", "iou")):
        lines += [f"**{title}**", "", f"| Type | Model | {subsets} |", "|---|---|" + "--:|" * folds]
        for rail_type, rs in results.items():
            for r in rs:
                by_fold = {f.fold: f"{getattr(f, metric):.3f}" for f in r.folds}
                lines.append(f"| {rail_type} | {r.model} | " + " | ".join(by_fold.get(k, "-") for k in range(1, folds + 1)) + " |")
        lines.append("")
    lines += [
        "**Table 7: cross-validation means**", "",
        "| Type | Model | Time per step | Validation loss | Validation accuracy | F1 | IoU | Timed on |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]  # fmt: skip
    for rail_type, rs in results.items():
        for r in rs:
            lines.append(
                f"| {rail_type} | {r.model} | {r.mean('step_ms'):.0f} ms | {r.mean('loss'):.4f} | {r.mean('accuracy'):.4f} "
                f"| {r.mean('f1'):.3f} | {r.mean('iou'):.3f} | {', '.join(r.processors()) or '-'} |"
            )
    return "\n".join(lines) + "\n"
