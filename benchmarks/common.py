"""What every benchmark records beside its figures: the machine and the library versions."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import railwatch


def _processor() -> str:
    name = platform.processor()
    if name and name != platform.machine():
        return name
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name or platform.machine()


def machine_info() -> dict[str, Any]:
    """Platform, processor, CPU counts and library versions."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "platform": platform.platform(),
        "processor": _processor(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "railwatch": railwatch.__version__,
        **_torch_versions(),
        "gpu": compute_device(),
    }


def compute_device(accelerator: str = "auto") -> str:
    """What a Lightning ``accelerator`` setting trains on here: the GPU's name, or ``"cpu"``."""
    import torch

    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


def _torch_versions() -> dict[str, str]:
    """torch and ONNX Runtime versions, where installed."""
    out = {}
    for name in ("torch", "onnxruntime"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            pass
    return out


def images_per_second(run: Callable[[], Any], repeats: int, warmup: int = 2) -> float:
    """Median images/s of ``run()`` (one image per call) after ``warmup`` untimed calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1.0 / statistics.median(times)


def scene_sets(work: Path, train_images: int, val_images: int, test_images: int, test_weathers: Sequence[str]) -> tuple[Path, Path]:
    """Render (or reuse) a training set (all weathers, seed 0) and a held-out set (other seeds, ``test_weathers``)."""
    from railwatch.data.scenes import SCENE_CAMERA, WEATHERS, write_scene_dataset

    train_dir, test_dir = work / "scenes_train", work / "scenes_test"
    total = train_images + val_images
    if not (train_dir / "data.yaml").is_file() or _count(train_dir) != total:
        shutil.rmtree(train_dir, ignore_errors=True)
        write_scene_dataset(train_dir, total, seed=0, camera=SCENE_CAMERA, weathers=WEATHERS, val_fraction=val_images / total)
    if not (test_dir / "data.yaml").is_file() or _count(test_dir) != test_images:
        shutil.rmtree(test_dir, ignore_errors=True)
        write_scene_dataset(test_dir, test_images, seed=1_000_003, camera=SCENE_CAMERA, weathers=test_weathers, val_fraction=1.0)
    return train_dir, test_dir


def recorded_train_seconds(out: Path, model: str) -> float | None:
    """The training time an earlier report at ``out`` recorded for ``model`` (kept when runs are reused)."""
    try:
        return json.loads(out.read_text(encoding="utf-8"))["models"][model]["train_seconds"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _count(folder: Path) -> int:
    return sum(1 for _ in (folder / "images").glob("*/*"))


def write_report(out: Path, benchmark: str, settings: dict[str, Any], results: dict[str, Any], table: str, started: float) -> None:
    """Print the markdown table and write the benchmark's JSON: date, machine, settings, results, elapsed time."""
    print(table)
    report = {
        "benchmark": benchmark,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": settings,
        **results,
        "markdown": table,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nWrote {out} ({report['elapsed_s']:.0f} s).")
