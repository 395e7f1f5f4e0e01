"""``railwatch vibration inspect|monitor``: real DAS files through DASCore."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import Progress
from rich.table import Table

from railwatch.cli_support import ConfigOption, JsonOption, console, one_line_errors, print_json, settings
from railwatch.errors import InputError
from railwatch.vibration.dasio import DasRecord, chunk_count, das_files, describe, iter_chunks, read_das, waterfall_figure

PathArgument = Annotated[Path, typer.Argument(help="A DAS file, or a folder of them.")]


def _files_or_file(path: Path) -> list[Path]:
    """``[path]`` for a file; the candidate DAS files of a folder (an error when it has none)."""
    if not path.is_dir():
        return [path]
    files = das_files(path)
    if not files:
        raise InputError(f"{path}: holds no DAS files")
    return files


def _readable(path: Path, files: list[Path], unreadable: list[dict]) -> Iterator[tuple[Path, DasRecord]]:
    """Each file DASCore reads, with its record; a folder's unreadable files go to ``unreadable``.

    A single file that cannot be read is an error; so is a folder of which no file can be.
    """
    read = 0
    for file in files:
        try:
            record = read_das(file)
        except InputError as err:
            if not path.is_dir():
                raise
            unreadable.append({"file": str(file), "reason": str(err)})
            continue
        read += 1
        yield file, record
    if not read:
        raise InputError(f"{path}: no file DASCore can read among its {len(files)} files")


def _describe_row(table: Table, info: dict) -> None:
    spacing = "-" if info["channel_spacing_m"] is None else f"{info['channel_spacing_m']:g}"
    what = " ".join(part for part in (info["data_type"], f"({info['units']})" if info["units"] else "") if part)
    table.add_row(
        Path(info["file"]).name,
        info["format"],
        f"{info['shape'][0]} x {info['shape'][1]}",
        f"{info['fs_hz']:g}",
        spacing,
        f"{info['duration_s']:g}",
        what or "-",
    )


def inspect(
    path: PathArgument,
    plot: Annotated[
        Optional[Path],
        typer.Option(
            "--plot",
            help="Draw the waterfall: the PNG to write for a FILE; "
            "for a FOLDER, a folder that gets NAME_waterfall.png per readable file.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Describe DAS recordings read through DASCore: format, shape, rate, spacing, duration, units.

    SHAPE is time samples x channels whatever the file's axis order (DIMS). For a folder, every
    file but README, LICENSE and hidden ones is tried; files DASCore cannot read are listed with
    the reason, and the command fails only when none can be read. Channels that hold only NaN
    (dead channels) read as zeros and are listed.
    """
    found, unreadable = [], []
    for file, record in _readable(path, _files_or_file(path), unreadable):
        info = describe(record)
        if plot is not None:
            target = plot / f"{file.stem}_waterfall.png" if path.is_dir() else plot
            info["plot"] = str(waterfall_figure(record, target))
        found.append(info)
    if as_json:
        print_json(found[0] if not path.is_dir() else {"folder": str(path), "files": found, "unreadable": unreadable})
        return
    if not path.is_dir():
        table = Table(title=str(path))
        table.add_column("field")
        table.add_column("value")
        for key, value in found[0].items():
            table.add_row(key, str(value))
        console.print(table)
        return
    table = Table(title=f"{path}: {len(found)} of {len(found) + len(unreadable)} files read")
    for column in ("file", "format", "time x channels", "fs (Hz)", "spacing (m)", "duration (s)", "measures"):
        table.add_column(column)
    for info in found:
        _describe_row(table, info)
    console.print(table)
    for bad in unreadable:
        console.print(f"[yellow]cannot read[/] {bad['reason']}", highlight=False, soft_wrap=True)


def _monitor_settings(config: Optional[Path], predictor, section_m, trigger, chunk_s):
    """``vibration.monitor`` of ``--config`` with the flags on top, and the model's window, band and points."""
    flags = {"section_m": section_m, "trigger": trigger, "chunk_s": chunk_s}
    return predictor.monitor_settings(settings(config, {f"vibration.monitor.{k}": v for k, v in flags.items()}).vibration.monitor)


def monitor(
    path: PathArgument,
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", "-c", help="FFI model from `railwatch vibration train` that reads DAS spectra.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Events as JSON lines (written atomically).")] = Path("events.jsonl"),
    section_m: Annotated[
        Optional[float], typer.Option("--section-m", help="Fibre section, m: one event per section within min_gap_s (25).")
    ] = None,
    trigger: Annotated[Optional[float], typer.Option("--trigger", help="STA/LTA ratio that starts an event (8).")] = None,
    chunk_s: Annotated[Optional[float], typer.Option("--chunk-s", help="Seconds of stream per chunk (0.5).")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find impacts in DAS recordings and score each for loose fasteners (FFI 0-3, paper 001).

    Each file is a stream, processed chunk by chunk: STA/LTA on every channel finds onsets, one
    event per fibre section keeps the strongest channel, the model's sensing points (6 adjacent
    channels, SP-A..SP-F) give the spectra of the first window_s (0.2 s) after the onset, and the
    model scores them. A folder's unreadable files are reported and skipped. Prints per file the
    events, the seconds of data and the real-time factor (seconds of data per second of work).
    """
    from railwatch.vibration.infer import load_predictor
    from railwatch.vibration.monitor import MAX_LEVEL, MonitorSummary, write_events
    from railwatch.vibration.monitor import monitor as run_monitor

    predictor = load_predictor(checkpoint)
    if predictor.reads != "das":
        raise InputError(f"{checkpoint}: the model reads accelerometer spectra; monitoring DAS needs a DAS or transfer model")
    cfg = _monitor_settings(config, predictor, section_m, trigger, chunk_s)
    events, summaries, unreadable = [], [], []
    with Progress(console=console, transient=True, disable=as_json) as progress:
        for file, record in _readable(path, _files_or_file(path), unreadable):
            summary = MonitorSummary(file.name)
            chunks = progress.track(
                iter_chunks(record, chunk_s=cfg.chunk_s),
                total=chunk_count(record.n_time, record.fs, cfg.chunk_s),
                description=file.name,
            )
            events += run_monitor(chunks, predictor.predict_spectra, cfg, summary, file.name)
            summaries.append(summary)
    write_events(events, out)
    levels = Counter(e.level for e in events)
    result = {
        "files": [s.to_dict() for s in summaries],
        "unreadable": unreadable,
        "events": len(events),
        "levels": {str(level): levels.get(level, 0) for level in range(MAX_LEVEL + 1)},
        "out": str(out),
    }
    if as_json:
        print_json(result)
        return
    table = Table(title=f"{len(events)} events -> {out}")
    for column in ("file", "seconds", "channels", "chunks", "events", "skipped", "x real time", "notes"):
        table.add_column(column)
    for s in summaries:
        rtf = s.to_dict()["real_time_factor"]
        table.add_row(
            s.source,
            f"{s.data_s:g}",
            str(s.channels),
            str(s.chunks),
            str(s.events),
            str(s.skipped),
            "-" if rtf is None else f"{rtf:g}",
            "; ".join(s.notes) or "-",
        )
    console.print(table)
    console.print("levels (FFI rounded): " + ", ".join(f"{k}: {v}" for k, v in result["levels"].items()))
    for bad in unreadable:
        console.print(f"[yellow]skipped[/] {bad['reason']}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the DAS-file commands to ``app``."""
    app.command("inspect")(one_line_errors(inspect))
    app.command("monitor")(one_line_errors(monitor))
