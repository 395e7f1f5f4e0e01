"""The ``railwatch`` command: one sub-command group per module.

Run ``railwatch --help`` for the list; every command explains itself with ``--help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from railwatch import __version__
from railwatch.cli_support import ConfigOption, console, one_line_errors, print_json, settings
from railwatch.config import dump_yaml
from railwatch.data.cli import app as data_app
from railwatch.fasteners.cli import app as fasteners_app
from railwatch.intrusion.cli import app as intrusion_app
from railwatch.service.report_cli import register as register_report
from railwatch.service.serve_cli import register as register_serve
from railwatch.surface.cli import app as surface_app
from railwatch.vibration.cli import app as vibration_app

app = typer.Typer(
    name="railwatch",
    help="Railway track monitoring from cameras and optical fibre.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(intrusion_app, name="intrusion")
app.add_typer(surface_app, name="surface")
app.add_typer(fasteners_app, name="fasteners")
app.add_typer(vibration_app, name="vibration")
register_serve(app)
register_report(app)
app.add_typer(data_app, name="data")
config_app = typer.Typer(help="Inspect settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"railwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """railwatch: fasteners, vibration, rail surface and intrusion risk, from cameras and fibre."""


@app.command()
@one_line_errors
def risk(
    offset_mm: Annotated[
        float, typer.Option("--offset-mm", help="Lateral offset from the track centre in mm; negative = left.")
    ],
    distance_m: Annotated[float, typer.Option("--distance-m", help="Distance ahead of the camera in m.")],
    object_type: Annotated[str, typer.Option("--type", help="person, car, animal or stone (rock).")],
    speed_mps: Annotated[float, typer.Option("--speed-mps", help="Object speed over the ground in m/s.")] = 0.0,
    paper_stationary_rule: Annotated[
        bool,
        typer.Option(
            "--paper-stationary-rule",
            help="Set f_speed = 0 for stationary objects, as the paper writes (default: 1 + v/10 always).",
        ),
    ] = False,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Grade one object's intrusion risk (paper 003, Eq. 15-17, Table 4).

    Z = x_risk(offset) * y_risk(distance) * W_type * f_speed, graded into levels I (emergency
    braking) to V (event log only).
    """
    cfg = settings(config, {"intrusion.risk.stationary_rule": "paper" if paper_stationary_rule else None})
    from railwatch.intrusion.risk import assess_risk, canonical_type

    kind = canonical_type(object_type, cfg.intrusion.risk)
    record = assess_risk(
        offset_mm, distance_m, kind, speed_mps, risk=cfg.intrusion.risk, gauge=cfg.intrusion.gauge
    ).records()[0]
    record = {"type": kind, "speed_mps": speed_mps, **record}
    if as_json:
        print_json(record)
        return
    table = Table(title=f"Intrusion risk of a {kind}", show_header=False)
    rows = [
        ("lateral offset", f"{offset_mm:+.1f} mm ({record['zone']} risk zone)"),
        ("distance ahead", f"{distance_m:g} m"),
        ("x_risk (Eq. 15)", f"{record['x_risk']:.3f}"),
        ("y_risk (Eq. 16)", f"{record['y_risk']:.3f}"),
        ("W_type (Table 3)", f"{record['weight']:.2f}"),
        ("f_speed", f"{record['f_speed']:.2f}"),
        ("Z (Eq. 17)", f"{record['z']:.3f}"),
        ("level (Table 4)", f"[bold]{record['level']}[/] - {record['label']}"),
        ("action", record["action"]),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


@config_app.command("show")
@one_line_errors
def config_show(config: ConfigOption = None) -> None:
    """Print the settings in force as YAML: every default, with a file's changes on top.

    Save the output, edit what you need, and pass it back with --config.
    """
    typer.echo(dump_yaml(settings(config)), nl=False)


@app.command()
@one_line_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the pictures and the report.")] = Path("demo_out"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated scene.")] = 7,
    config: ConfigOption = None,
) -> None:
    """Run railwatch end to end on built-in data and write what it finds to --out.

    Draws a cab-view rail mask with objects at known ground positions, fits the rails, places
    and grades every object, and writes an overlay picture, a risk map and a JSON report that
    sets each measured offset and distance beside the truth. Then segments rendered scenes,
    runs a clip through the intrusion pipeline, and trains a small rail-surface defect
    segmenter that segments strips it has not seen (surface/strips.png).
    """
    from railwatch.demo import run_demo

    run_demo(out, seed=seed, config=settings(config))


def main() -> None:
    """Entry point of the ``railwatch`` console script."""
    app()
