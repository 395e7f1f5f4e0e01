"""What every benchmark records beside its figures: the machine and the library versions."""

from __future__ import annotations

import os
import platform
import sys
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
    }


def _torch_versions() -> dict[str, str]:
    """torch and ONNX Runtime versions, where installed."""
    out = {}
    for name in ("torch", "onnxruntime"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            pass
    return out
