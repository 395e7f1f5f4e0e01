"""``railwatch intrusion``: rail fitting and risk grading on images (paper 003)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.table import Table

from railwatch.cli_support import ConfigOption, JsonOption, console, one_line_errors, print_json, settings
from railwatch.errors import InputError
from railwatch.intrusion.det_cli import register as register_det_commands
from railwatch.intrusion.run_cli import register as register_run_command
from railwatch.intrusion.seg_cli import register as register_seg_commands

app = typer.Typer(help="Track geometry and intrusion risk (paper 003).", no_args_is_help=True)

MaskArg = Annotated[Path, typer.Argument(help="Binary rail mask image (rail pixels bright).", show_default=False)]
OutOption = Annotated[Optional[Path], typer.Option("--out", help="Write an overlay picture here (PNG).")]
ModelOption = Annotated[
    Optional[str],
    typer.Option("--model", help="Rail curve for geometry: perspective (default) or cubic (the paper's Eq. 1)."),
]
HorizonOption = Annotated[
    Optional[float], typer.Option("--horizon-row", help="Horizon row in px; estimated from the rails when unset.")
]


def _fit(mask_path: Path, config: Optional[Path], model: Optional[str], horizon: Optional[float], **overrides):
    """Settings (file + flags), the mask, and the rails fitted on it."""
    from railwatch.imageio import read_mask
    from railwatch.intrusion.railfit import fit_rails

    if model is not None and model not in ("perspective", "cubic"):
        raise InputError(f"--model must be perspective or cubic, got {model!r}")
    overrides.update({"intrusion.railfit.model": model, "intrusion.railfit.horizon_row_px": horizon})
    cfg = settings(config, overrides).intrusion
    mask = read_mask(mask_path)
    return cfg, mask, fit_rails(mask, cfg.railfit, source=str(mask_path))


@app.command()
@one_line_errors
def railfit(
    mask: MaskArg,
    out: OutOption = None,
    as_json: JsonOption = False,
    model: ModelOption = None,
    horizon_row: HorizonOption = None,
    config: ConfigOption = None,
) -> None:
    """Fit every rail in a rail mask and mark the two rails of the ego track.

    Rails are followed upward with sliding windows and fitted with x = a0 + a1*y + a2*y^2 +
    a3*y^3 (paper 003, Eq. 1-4; y is the image row, x the column, in pixels). --json prints
    {"rails": [{"coeffs": [a0..a3], "y_min", "y_max", "ego", ...}], "width", "height"}.
    """
    from railwatch.imageio import write_image
    from railwatch.viz import draw_rail_overlay

    cfg, mask_array, fit = _fit(mask, config, model, horizon_row)
    if out is not None:
        write_image(draw_rail_overlay(mask_array, fit, gauge=cfg.gauge), out)
    if as_json:
        print_json({"mask": str(mask), **fit.to_dict(), "overlay": None if out is None else str(out)})
        return
    table = Table(title=f"{len(fit.rails)} rails in {mask}")
    for column in ("rail", "ego", "rows", "x at bottom (px)", "fit rms (px)"):
        table.add_column(column)
    for i, rail in enumerate(fit.rails):
        table.add_row(
            str(i),
            "yes" if rail.ego else "",
            f"{rail.y_min}-{rail.y_max}",
            f"{float(rail.x_at(rail.y_max)):.1f}",
            f"{rail.rms_px:.2f}",
        )
    console.print(table)
    if fit.ego is None:
        console.print("[yellow]no ego track: no pair of rails straddles the camera[/]")
    if out is not None:
        console.print(f"overlay: {out}")


def _parse_object(text: str) -> tuple[float, float, str, float]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (3, 4):
        raise InputError(f"--object {text!r}: expected U,V,TYPE or U,V,TYPE,SPEED")
    try:
        u, v = float(parts[0]), float(parts[1])
        speed = float(parts[3]) if len(parts) == 4 else 0.0
    except ValueError:
        raise InputError(f"--object {text!r}: U, V and SPEED must be numbers") from None
    return u, v, parts[2], speed


@app.command()
@one_line_errors
def grade(
    mask: MaskArg,
    objects: Annotated[
        list[str],
        typer.Option(
            "--object",
            help="Foot point and class of an object: U,V,TYPE[,SPEED] (px, px, name, m/s). Repeat for more.",
        ),
    ],
    focal_px: Annotated[
        Optional[float], typer.Option("--focal-px", help="Focal length in px for ranging (default from settings).")
    ] = None,
    paper_stationary_rule: Annotated[
        bool, typer.Option("--paper-stationary-rule", help="f_speed = 0 for stationary objects, as in the paper.")
    ] = False,
    out: OutOption = None,
    as_json: JsonOption = False,
    model: ModelOption = None,
    horizon_row: HorizonOption = None,
    config: ConfigOption = None,
) -> None:
    """Place objects against the ego track of a rail mask and grade their risk.

    For each foot point: the gauge width at its row gives mm per pixel and the lateral offset
    (paper 003, Eq. 9-14), flat-ground ranging gives the distance, and Eq. 15-17 the level.
    """
    from railwatch.imageio import write_image
    from railwatch.intrusion.grading import grade_objects
    from railwatch.viz import draw_rail_overlay

    parsed = [_parse_object(text) for text in objects]
    cfg, mask_array, fit = _fit(
        mask,
        config,
        model,
        horizon_row,
        **{
            "intrusion.camera.focal_px": focal_px,
            "intrusion.risk.stationary_rule": "paper" if paper_stationary_rule else None,
        },
    )
    u, v, types, speeds = (np.array(column) for column in zip(*parsed))
    graded = grade_objects(fit, u.astype(float), v.astype(float), types, speeds.astype(float), cfg)
    records = graded.records()
    if out is not None:
        write_image(draw_rail_overlay(mask_array, fit, records, gauge=cfg.gauge), out)
    if as_json:
        print_json({"mask": str(mask), "objects": records, "overlay": None if out is None else str(out)})
        return
    table = Table(title=f"Objects against the ego track of {mask}")
    for column in ("type", "foot (px)", "offset (mm)", "distance (m)", "x_risk", "y_risk", "Z", "level", "action"):
        table.add_column(column)
    for r in records:
        if r["level"] is None:
            table.add_row(r["type"], str(r["foot_px"]), "-", "-", "-", "-", "-", "-", r["reason"])
            continue
        table.add_row(
            r["type"],
            f"{r['foot_px'][0]:.0f},{r['foot_px'][1]:.0f}",
            f"{r['offset_mm']:+.0f}",
            f"{r['distance_m']:.1f}",
            f"{r['x_risk']:.3f}",
            f"{r['y_risk']:.3f}",
            f"{r['z']:.3f}",
            r["level"],
            r["action"],
        )
    console.print(table)
    if out is not None:
        console.print(f"overlay: {out}")


register_seg_commands(app)
register_run_command(app)
register_det_commands(app)

__all__ = ["app"]
