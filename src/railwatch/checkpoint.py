"""railwatch model files: weights plus the settings that rebuild the network, loadable with ``weights_only=True``.

A checkpoint is a plain dict of tensors, strings, numbers, lists and dicts, so
``torch.load(path, weights_only=True)`` reads it without running any pickled code::

    {"format": "railwatch", "version": 1, "task": "track-seg", "model": {...settings...},
     "state_dict": {...}, "meta": {...metrics, data, seed...}}
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from railwatch.errors import InputError
from railwatch.imageio import _atomic_write

FORMAT = "railwatch"
VERSION = 1


def save_checkpoint(
    path: str | Path,
    state_dict: dict[str, torch.Tensor],
    task: str,
    model_settings: dict[str, Any],
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a network's weights with the settings that rebuild it, atomically.

    Args:
        path: Output file (``.pt``).
        state_dict: The network's weights (``module.state_dict()``); stored on the CPU.
        task: What the model does, e.g. ``"track-seg"``; checked on load.
        model_settings: JSON-like settings that rebuild the network (e.g. ``SegModelConfig.model_dump()``).
        meta: Anything else worth keeping (metrics, data, seed), JSON-like.
    """
    state = {k: v.detach().cpu().clone() for k, v in state_dict.items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "task": task,
        "model": model_settings,
        "state_dict": state,
        "meta": meta or {},
    }
    return _atomic_write(path, lambda tmp: torch.save(payload, tmp))


def read_torch_file(path: str | Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with one-line errors that say ``what`` it should be.

    Raises:
        InputError: the file is missing or not a readable torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError) as err:
        raise InputError(f"{path}: not a readable {what} ({type(err).__name__})") from None


def load_checkpoint(path: str | Path, task: str) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises:
        InputError: the file is missing, not a railwatch checkpoint, or for another task.
    """
    path = Path(path)
    payload = read_torch_file(path, "checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path}: not a railwatch checkpoint")
    if payload.get("task") != task:
        raise InputError(f"{path}: a {payload.get('task')!r} checkpoint, expected {task!r}")
    return payload


def half_precision(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of ``state_dict`` with its weights in float16, to halve a shipped model file.

    Batch-norm statistics (``running_mean``, ``running_var``) and any tensor with a value
    float16 cannot hold stay float32: a running variance over 65504 would become infinite and
    silence its channels when the model predicts. Loading casts everything back to the
    network's float32.
    """

    def keep_float32(name: str, value: torch.Tensor) -> bool:
        return name.endswith(("running_mean", "running_var")) or bool(value.abs().max() > torch.finfo(torch.float16).max)

    return {
        name: value.half() if value.is_floating_point() and value.numel() and not keep_float32(name, value) else value
        for name, value in state_dict.items()
    }
