"""Score ``railwatch intrusion run`` against a generated clip's truth: do the risk levels agree?

:func:`level_agreement` reads the pipeline's ``tracks.jsonl`` and the clip's ``truth.jsonl``
(:func:`railwatch.data.scene_clips.write_clip`), matches the objects of each frame by box IoU
(one to one, best pairs first; then nearest foot point for small boxes), and counts the truth
object-frames within ``max_distance_m``
whose level the pipeline read the same. A truth object the pipeline missed, or left ungraded,
counts as a disagreement.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.ops import box_iou

from railwatch.errors import InputError


def _read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise InputError(f"{path}: line {number} is not JSON") from None
    return rows


def _feet(boxes: np.ndarray) -> np.ndarray:
    return np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]])


def _match(truth_boxes: np.ndarray, pred_boxes: np.ndarray, min_iou: float) -> list[tuple[int, int, float]]:
    """One-to-one matching: ``(truth index, prediction index, IoU)``.

    Pairs with IoU >= ``min_iou`` go first, highest IoU first. A truth object left over then
    takes the nearest left-over prediction whose foot point lies within half its box width (at
    least 4 px): a box of 10 x 8 px 50 m away can miss IoU 0.5 by a two-pixel offset.
    """
    if len(truth_boxes) == 0 or len(pred_boxes) == 0:
        return []
    iou = box_iou(torch.as_tensor(truth_boxes, dtype=torch.float64), torch.as_tensor(pred_boxes, dtype=torch.float64)).numpy()
    pairs = []
    used_t: set[int] = set()
    used_p: set[int] = set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        t, p = (int(i) for i in np.unravel_index(flat, iou.shape))
        if iou[t, p] < min_iou:
            break
        if t in used_t or p in used_p:
            continue
        used_t.add(t)
        used_p.add(p)
        pairs.append((t, p, float(iou[t, p])))
    gap = np.linalg.norm(_feet(truth_boxes)[:, None] - _feet(pred_boxes)[None], axis=-1)
    reach = np.maximum((truth_boxes[:, 2] - truth_boxes[:, 0]) / 2, 4.0)
    for flat in np.argsort(gap, axis=None, kind="stable"):
        t, p = (int(i) for i in np.unravel_index(flat, gap.shape))
        if t in used_t or p in used_p or gap[t, p] > reach[t]:
            continue
        used_t.add(t)
        used_p.add(p)
        pairs.append((t, p, float(iou[t, p])))
    return pairs


def level_agreement(
    tracks_jsonl: str | Path,
    truth_jsonl: str | Path,
    max_distance_m: float = 50.0,
    min_iou: float = 0.5,
) -> dict[str, Any]:
    """Fraction of truth object-frames within ``max_distance_m`` whose level the pipeline matched.

    Only truth objects that can be seen count: foot point in the image, box at least 2 px, not
    wholly hidden (``in_view`` and ``visible`` in the truth).

    Args:
        tracks_jsonl: ``tracks.jsonl`` of :func:`~railwatch.intrusion.pipeline.run_pipeline`.
        truth_jsonl: ``truth.jsonl`` of the clip (frames numbered the same way).
        max_distance_m: Truth objects up to this true distance (m) count.
        min_iou: Smallest box IoU that matches a pipeline object to a truth object.

    Returns:
        ``{"object_frames", "matched", "graded", "agree", "fraction", "fraction_of_graded",
        "confusion", "offset_error_mm", "distance_error_m", "speed_error_mps", ...}``:
        ``fraction`` is ``agree / object_frames`` (1.0 when there is nothing to score),
        ``confusion`` counts ``"truth->pipeline"`` level pairs (``-`` for missed or ungraded),
        and the error entries give the median and 95th percentile of the absolute errors of
        the matched, graded objects.
    """
    truth_rows = _read_jsonl(truth_jsonl)
    predictions: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in _read_jsonl(tracks_jsonl):
        predictions[int(row["frame"])].append(row)
    total = matched = graded = agree = 0
    confusion: Counter[str] = Counter()
    errors: dict[str, list[float]] = {"offset_error_mm": [], "distance_error_m": [], "speed_error_mps": []}
    for frame in truth_rows:
        objects = [
            o
            for o in frame["objects"]
            if o.get("in_view", True) and o.get("visible", True) and o["distance_m"] <= max_distance_m
        ]
        if not objects:
            continue
        preds = predictions.get(int(frame["frame"]), [])
        pairs = _match(
            np.array([o["box"] for o in objects], dtype=float).reshape(-1, 4),
            np.array([p["box"] for p in preds], dtype=float).reshape(-1, 4),
            min_iou,
        )
        by_truth = {t: preds[p] for t, p, _ in pairs}
        for k, obj in enumerate(objects):
            total += 1
            pred = by_truth.get(k)
            level = pred.get("level") if pred else None
            matched += pred is not None
            if level is not None:
                graded += 1
                errors["offset_error_mm"].append(abs(pred["offset_mm"] - obj["offset_mm"]))
                errors["distance_error_m"].append(abs(pred["distance_m"] - obj["distance_m"]))
                errors["speed_error_mps"].append(abs(pred["speed_mps"] - obj["speed_mps"]))
            agree += level == obj["level"]
            confusion[f"{obj['level']}->{level or '-'}"] += 1

    def spread(values: list[float]) -> dict[str, float] | None:
        if not values:
            return None
        array = np.asarray(values)
        return {"median": round(float(np.median(array)), 4), "p95": round(float(np.percentile(array, 95)), 4)}

    return {
        "max_distance_m": max_distance_m,
        "min_iou": min_iou,
        "object_frames": total,
        "matched": matched,
        "graded": graded,
        "agree": agree,
        "fraction": agree / total if total else 1.0,
        "fraction_of_graded": agree / graded if graded else 1.0,
        "confusion": dict(sorted(confusion.items())),
        **{name: spread(values) for name, values in errors.items()},
    }
