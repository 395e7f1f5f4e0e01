"""ONNX export and the check that ONNX Runtime computes what torch computes."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from railwatch.imageio import _atomic_write
from railwatch.nn.device import module_device

if TYPE_CHECKING:
    import onnxruntime as ort


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    input_name: str = "image",
    output_names: tuple[str, ...] = ("logits",),
    dynamic_batch: bool = True,
    opset: int = 17,
) -> Path:
    """Export ``model`` (in eval mode) to ONNX, traced on ``example``; the file is written atomically."""
    model = model.eval()
    example = example.to(module_device(model))
    axes = {input_name: {0: "batch"}, **{name: {0: "batch"} for name in output_names}} if dynamic_batch else None

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter about the TorchScript exporter
            torch.onnx.export(
                model,
                (example,),
                tmp,
                input_names=[input_name],
                output_names=list(output_names),
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )

    return _atomic_write(path, write)


def onnx_session(path: str | Path, threads: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime CPU session for ``path``, with ``threads`` intra-op threads (ONNX Runtime's choice if None)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_output_diffs(model: nn.Module, path: str | Path, example: torch.Tensor) -> list[float]:
    """Largest absolute difference between torch's and ONNX Runtime's outputs on ``example``, one per output."""
    model = model.eval()
    with torch.no_grad():
        expected = model(example.to(module_device(model)))
    if not isinstance(expected, (tuple, list)):
        expected = (expected,)
    session = onnx_session(path)
    got = session.run(None, {session.get_inputs()[0].name: example.cpu().numpy()})
    return [float(np.max(np.abs(g - e.float().cpu().numpy()))) for g, e in zip(got, expected)]


def onnx_max_abs_diff(model: nn.Module, path: str | Path, example: torch.Tensor) -> float:
    """Largest absolute difference between torch's and ONNX Runtime's first output on ``example``."""
    return onnx_output_diffs(model, path, example)[0]
