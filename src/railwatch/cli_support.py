"""Shared pieces of the command line: one-line errors, config loading, JSON output."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console

from railwatch.config import RailwatchConfig, load_config, override
from railwatch.errors import RailwatchError

console = Console()
error_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_HELP = "YAML settings file (see `railwatch config show`); flags override it."
ConfigOption = Annotated[Optional[Path], typer.Option("--config", help=CONFIG_HELP)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

# the options every training command takes (fields of railwatch.config.TrainingRun and friends)
EpochsOption = Annotated[Optional[int], typer.Option("--epochs", help="Passes over the training set.")]
MaxStepsOption = Annotated[Optional[int], typer.Option("--max-steps", help="Stop after this many steps.")]
BatchSizeOption = Annotated[Optional[int], typer.Option("--batch-size", help="Images per step.")]
LrOption = Annotated[Optional[float], typer.Option("--lr", help="Peak learning rate.")]
SeedOption = Annotated[Optional[int], typer.Option("--seed", help="Seed; the same seed trains the same model.")]
AcceleratorOption = Annotated[Optional[str], typer.Option("--accelerator", help="auto, cpu or gpu.")]
DevicesOption = Annotated[Optional[str], typer.Option("--devices", help="Device: 1 (default), auto, or one GPU index as '2,'. Training uses one device.")]
PrecisionOption = Annotated[Optional[str], typer.Option("--precision", help="32-true, 16-mixed, bf16-mixed.")]
WorkersOption = Annotated[Optional[int], typer.Option("--num-workers", help="Data-loading workers.")]
QuietOption = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]
ResumeOption = Annotated[
    bool,
    typer.Option("--resume", help="Go on from the last.ckpt an interrupted run with the same settings left in --out "
                 "(it is rewritten every 10 minutes of training); with none there, start from the beginning."),
]  # fmt: skip


def training_overrides(section: str, init: Optional[Path] = None, **values: Any) -> dict[str, Any]:
    """Dotted settings keys for a training section's flags, e.g. ``intrusion.det_train.lr``; unset flags stay ``None``."""
    return {f"{section}.{key}": value for key, value in values.items()} | {
        f"{section}.init_weights": None if init is None else str(init)
    }


def print_training_result(result: Any) -> None:
    """The best validation metrics of a training run, and where its checkpoint and logs went."""
    from rich.table import Table

    table = Table(title=f"best on validation: {result.checkpoint}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in sorted(result.metrics.items()):
        table.add_row(name, f"{value:.4f}")
    console.print(table)
    console.print(f"logs: {result.log_dir}")


def one_line_errors(command: F) -> F:
    """Turn railwatch's own errors into ``error: <message>`` on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RailwatchError as err:
            error_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(err.exit_code) from None

    return wrapper  # type: ignore[return-value]


def settings(config_path: Path | None, overrides: dict[str, Any] | None = None) -> RailwatchConfig:
    """Settings from ``--config`` (or defaults), with flag values on top."""
    return override(load_config(config_path), overrides or {})


def print_json(data: Any) -> None:
    """Print one JSON document on stdout, nothing else."""
    typer.echo(json.dumps(data, indent=2))
