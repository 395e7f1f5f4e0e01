"""One self-contained HTML inspection report over stored runs.

:func:`write_report` reads runs and their events from an
:class:`~railwatch.service.store.EventStore` and writes a single HTML file that needs nothing
else to be read: the CSS is inline, the figures are drawn with matplotlib (Agg) into PNGs held
in memory and every picture is embedded as a base64 ``data:`` URI. It opens offline, can be
mailed, and makes no network request.

The report holds a header (date, runs covered), a summary table with one row per run, and one
section per module: a strip chart of its events (chainage against time, coloured by level), a
table of the events and the pictures of the most severe events that have one. Pictures that
are gone from the data folder are listed as missing instead of failing the report.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from railwatch.errors import InputError
from railwatch.imageio import write_text

MODULES: tuple[str, ...] = ("fasteners", "surface", "vibration", "intrusion")
"""The modules in the order the report shows them."""

MODULE_TITLES: dict[str, str] = {
    "fasteners": "Fasteners",
    "surface": "Rail surface",
    "vibration": "Vibration (DAS)",
    "intrusion": "Intrusion risk",
}
MODULE_PICTURES: dict[str, str] = {
    "fasteners": "anomaly heatmaps",
    "surface": "defect masks and overlays",
    "vibration": "DAS spectra with LIME bands",
    "intrusion": "risk overlays",
}

DEFAULT_MAX_PICTURES = 12
"""Pictures shown per module unless the caller asks for another number."""

MAX_TABLE_ROWS = 2000
"""Events listed per module table; the rest are counted, not listed, to keep the file readable."""

MAX_PICTURE_PX = 1280
"""Pictures larger than this on either side are scaled down before they are embedded."""

_PAGE = 500
_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V"}
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}
_GREY = "#9a9a9a"

# colours per level, the same ones railwatch draws its pictures with (railwatch.viz.LEVEL_COLOURS)
_LEVEL_COLOURS: dict[str, dict[int, str]] = {
    "intrusion": {1: "#dc1e1e", 2: "#f5821e", 3: "#f0d228", 4: "#3c8ce6", 5: "#969696"},
    "vibration": {0: "#2e9e44", 1: "#f0d228", 2: "#f5821e", 3: "#dc1e1e"},
    "fasteners": {0: "#2e9e44", 1: "#dc1e1e"},
    "surface": {1: "#dc1e1e"},
}


# --------------------------------------------------------------------------- levels


def level_name(module: str, level: int | None) -> str:
    """How a person reads an event's level: ``III`` (intrusion), ``FFI 2``, ``anomalous``, ``defect``."""
    if level is None:
        return "-"
    if module == "intrusion":
        return _ROMAN.get(level, str(level))
    if module == "vibration":
        return f"FFI {level}"
    if module == "fasteners":
        return {1: "anomalous", 0: "normal"}.get(level, str(level))
    if module == "surface":
        return "defect" if level == 1 else str(level)
    return str(level)


def level_colour(module: str, level: int | None) -> str:
    """The hex colour of a level of a module; grey when the level is unknown."""
    if level is None:
        return _GREY
    return _LEVEL_COLOURS.get(module, {}).get(level, _GREY)


def severity(event: dict) -> tuple[float, float]:
    """Sort key that puts the most severe events first (intrusion level I is the worst)."""
    level, score = event.get("level"), event.get("score")
    if level is None:
        rank = float("inf")
    elif event.get("module") == "intrusion":
        rank = float(level)
    else:
        rank = -float(level)
    return rank, -(score if isinstance(score, (int, float)) else float("-inf"))


def _level_order(module: str, levels: Iterable[int | None]) -> list[int | None]:
    known = sorted({lv for lv in levels if lv is not None})
    if module != "intrusion":
        known.reverse()
    return known + ([None] if None in set(levels) else [])


def level_counts(module: str, events: Sequence[dict]) -> list[tuple[str, int]]:
    """``[(level name, count)]``, most severe level first."""
    counts = Counter(event.get("level") for event in events)
    return [(level_name(module, lv), counts[lv]) for lv in _level_order(module, counts)]


# --------------------------------------------------------------------------- reading the store


def _iso(value: Any) -> str:
    return "" if value is None else str(value)


def parse_time(value: Any) -> datetime | None:
    """An ISO time string as an aware datetime (naive ones are taken as UTC); ``None`` if unreadable."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except (TypeError, ValueError):
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def resolve_runs(store: Any, run_ids: Sequence[str]) -> list[dict]:
    """The run dicts of ``run_ids``, in the order given, without repeats.

    Raises:
        InputError: no run id was given, or one is not in the store.
    """
    if not run_ids:
        raise InputError("no runs to report: give at least one run id")
    runs: list[dict] = []
    seen: set[str] = set()
    for run_id in run_ids:
        if run_id in seen:
            continue
        run = store.get_run(run_id)
        if run is None:
            raise InputError(f"run {run_id!r} is not in the event store")
        seen.add(run_id)
        runs.append(run)
    return runs


def run_events(store: Any, run_id: str) -> list[dict]:
    """Every event of one run, fetched page by page."""
    events: list[dict] = []
    while True:
        page = store.events(run_id=run_id, limit=_PAGE, offset=len(events))
        events.extend(page)
        if len(page) < _PAGE:
            return events


# --------------------------------------------------------------------------- pictures


@dataclass
class Picture:
    """One picture as it goes into the report."""

    event: dict
    data_uri: str


@dataclass
class PictureSet:
    """The pictures of one module's section and those that could not be shown."""

    shown: list[Picture] = field(default_factory=list)
    missing: list[tuple[dict, str]] = field(default_factory=list)
    """``(event, reason)`` for each picture that is not on disk or cannot be read."""


def _picture_path(data_dir: Path, picture: str) -> Path | None:
    """The file of a relative picture path, or ``None`` when it points outside the data folder."""
    root = data_dir.resolve()
    path = (root / picture).resolve()
    return path if path.is_relative_to(root) else None


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def embed_picture(path: Path) -> str:
    """A picture file as a ``data:`` URI; large ones are scaled down, odd formats re-encoded as PNG.

    Raises:
        OSError: the file cannot be read or is not a picture.
    """
    from PIL import Image, UnidentifiedImageError

    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            mime = _MIME.get(path.suffix.lower())
            if mime is not None and max(image.size) <= MAX_PICTURE_PX and Image.MIME.get(image.format or "") == mime:
                return _data_uri(data, mime)
            photo = image.format == "JPEG" and image.mode in ("RGB", "L")
            image.thumbnail((MAX_PICTURE_PX, MAX_PICTURE_PX))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG" if photo else "PNG", **({"quality": 88} if photo else {}))
    except UnidentifiedImageError:
        raise OSError("not a picture Pillow can read") from None
    except (ValueError, Image.DecompressionBombError) as err:
        raise OSError(f"cannot decode the picture: {err}") from err
    return _data_uri(buffer.getvalue(), "image/jpeg" if photo else "image/png")


def collect_pictures(events: Sequence[dict], data_dir: Path, limit: int) -> PictureSet:
    """Embed the pictures of up to ``limit`` events, most severe first; list every missing one."""
    pictures = PictureSet()
    for event in sorted((e for e in events if e.get("picture")), key=severity):
        path = _picture_path(data_dir, str(event["picture"]))
        if path is None:
            pictures.missing.append((event, "outside the data folder"))
        elif not path.is_file():
            pictures.missing.append((event, "not on disk"))
        elif len(pictures.shown) < limit:
            try:
                pictures.shown.append(Picture(event, embed_picture(path)))
            except OSError as err:
                pictures.missing.append((event, f"unreadable ({err})"))
    return pictures


# --------------------------------------------------------------------------- figures


def _figure_uri(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return _data_uri(buffer.getvalue(), "image/png")


def strip_chart(module: str, events: Sequence[dict]) -> str | None:
    """A PNG data URI of the module's events: chainage (km) against time, coloured by level.

    When no event has a chainage the chart shows time against level instead. Returns ``None``
    when no event has a readable time or chainage to plot.
    """
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    points = [(parse_time(e.get("time")), e.get("chainage_km"), e) for e in events]
    with_km = [(t, km, e) for t, km, e in points if km is not None]
    fig = Figure(figsize=(9.0, 2.6))
    ax = fig.subplots()
    if with_km:
        xs = [float(km) for _, km, _ in with_km]
        timed = [t for t, _, _ in with_km]
        if all(t is not None for t in timed):
            ys, ylabel = timed, "time (UTC)"
            locator = AutoDateLocator()
            ax.yaxis.set_major_locator(locator)
            ax.yaxis.set_major_formatter(ConciseDateFormatter(locator))
        else:
            ys, ylabel = [0.0] * len(xs), ""
            ax.set_yticks([])
        chosen = with_km
        ax.set_xlabel("chainage (km)")
    else:
        chosen = [(t, km, e) for t, km, e in points if t is not None]
        if not chosen:
            return None
        xs = [t for t, _, _ in chosen]
        ys = [e.get("level") if e.get("level") is not None else -1 for _, _, e in chosen]
        ax.set_xlabel("time (UTC)")
        ylabel = "level"
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    colours = [level_colour(module, e.get("level")) for _, _, e in chosen]
    ax.scatter(xs, ys, c=colours, s=28, edgecolors="#333333", linewidths=0.4, zorder=3)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    levels = _level_order(module, [e.get("level") for _, _, e in chosen])
    handles = [
        Line2D([], [], marker="o", linestyle="", color=level_colour(module, lv), label=level_name(module, lv))
        for lv in levels
    ]
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    skipped = len(events) - len(chosen)
    ax.set_title(f"{len(chosen)} events" + (f" ({skipped} without chainage not drawn)" if skipped else ""), fontsize=9, loc="right")
    return _figure_uri(fig)


# --------------------------------------------------------------------------- HTML

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2329;background:#f4f6f8}
header{background:#1f3a52;color:#fff;padding:18px 28px}
header h1{margin:0 0 6px 0;font-size:22px}
header p{margin:2px 0;font-size:13px;opacity:.9}
main{padding:12px 28px 40px 28px}
section{background:#fff;border:1px solid #d9dee3;border-radius:6px;padding:12px 18px;margin:16px 0}
h2{font-size:18px;margin:6px 0 10px 0}
h3{font-size:14px;margin:14px 0 6px 0;color:#33414e}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border-bottom:1px solid #e3e7eb;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.lv{display:inline-block;min-width:1.6em;padding:0 6px;border-radius:9px;color:#fff;font-weight:600;text-align:center;
text-shadow:0 0 2px #0006}
.chart{max-width:100%}
.pictures{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;width:300px;border:1px solid #e3e7eb;border-radius:4px;padding:6px;background:#fafbfc}
figure img{width:100%;height:auto;display:block}
figcaption{font-size:11px;margin-top:4px;line-height:1.35;word-break:break-word}
.muted{color:#6b7680;font-size:12px}
.missing li{font-size:12px}
.tablewrap{max-height:420px;overflow:auto;border:1px solid #e3e7eb}
pre{font-size:11px;background:#f6f8fa;padding:6px;overflow:auto}
"""


def esc(value: Any) -> str:
    """Text made safe for HTML bodies and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def _badge(module: str, level: int | None) -> str:
    return f'<span class="lv" style="background:{level_colour(module, level)}">{esc(level_name(module, level))}</span>'


def _km(value: Any) -> str:
    return "" if value is None else f"{float(value):.3f}"


def _score(value: Any) -> str:
    return "" if value is None else f"{float(value):.3f}"


def _header(runs: Sequence[dict], generated: datetime) -> str:
    starts = [r["started_at"] for r in runs if r.get("started_at")]
    ends = [r["finished_at"] for r in runs if r.get("finished_at")]
    period = f"{min(starts)} to {max(ends) if ends else '(running)'}" if starts else "unknown"
    modules = sorted({str(r.get("module")) for r in runs}, key=_module_rank)
    ids = ", ".join(esc(r["id"]) for r in runs)
    return (
        "<header><h1>railwatch inspection report</h1>"
        f"<p>generated {esc(generated.strftime('%Y-%m-%d %H:%M:%S UTC'))}</p>"
        f"<p>{len(runs)} run{'s' if len(runs) != 1 else ''} covered ({esc(', '.join(modules))}): {ids}</p>"
        f"<p>period: {esc(period)}</p></header>"
    )


def _summary(runs: Sequence[dict], events_by_run: dict[str, list[dict]]) -> str:
    head = "".join(
        f"<th>{name}</th>"
        for name in ("run", "module", "source", "line", "started", "finished", "status", "events", "events per level")
    )
    rows = []
    for run in runs:
        module, events = str(run.get("module")), events_by_run[run["id"]]
        per_level = ", ".join(f"{esc(name)}&nbsp;&times;&nbsp;{n}" for name, n in level_counts(module, events))
        cells = [run["id"], module, run.get("source"), run.get("line_id"), _iso(run.get("started_at"))]
        cells += [_iso(run.get("finished_at")), run.get("status")]
        tds = "".join(f"<td>{esc(c)}</td>" for c in cells)
        rows.append(
            f'<tr class="run-row" data-run-id="{esc(run["id"])}">{tds}'
            f'<td class="num">{len(events)}</td><td>{per_level}</td></tr>'
        )
    return f'<section id="summary"><h2>Summary</h2><table><tr>{head}</tr>{"".join(rows)}</table></section>'


def _events_table(module: str, events: Sequence[dict], several_runs: bool) -> str:
    shown = sorted(events, key=lambda e: (str(e.get("time") or ""), e.get("chainage_km") or 0.0))[:MAX_TABLE_ROWS]
    run_th = "<th>run</th>" if several_runs else ""
    head = f"<tr><th>time</th><th>chainage (km)</th><th>label</th><th>level</th><th>score</th>{run_th}</tr>"
    rows = []
    for e in shown:
        run_td = f"<td>{esc(e.get('run_id'))}</td>" if several_runs else ""
        rows.append(
            f'<tr data-event-id="{esc(e.get("id"))}"><td>{esc(e.get("time"))}</td>'
            f'<td class="num">{_km(e.get("chainage_km"))}</td><td>{esc(e.get("label"))}</td>'
            f'<td>{_badge(module, e.get("level"))}</td><td class="num">{_score(e.get("score"))}</td>{run_td}</tr>'
        )
    note = ""
    if len(events) > len(shown):
        note = f'<p class="muted">showing {len(shown)} of {len(events)} events</p>'
    return f'<h3>Events</h3>{note}<div class="tablewrap"><table>{head}{"".join(rows)}</table></div>'


def _caption(module: str, event: dict) -> str:
    parts = [f"<b>{esc(event.get('label'))}</b>", f"level {esc(level_name(module, event.get('level')))}"]
    if event.get("score") is not None:
        parts.append(f"score {_score(event.get('score'))}")
    if event.get("chainage_km") is not None:
        parts.append(f"km {_km(event.get('chainage_km'))}")
    parts.append(esc(event.get("time")))
    parts.append(f'<span class="muted">{esc(event.get("picture"))}</span>')
    return " &middot; ".join(parts)


def _pictures_html(module: str, pictures: PictureSet, limit: int) -> str:
    out = [f"<h3>Pictures ({esc(MODULE_PICTURES.get(module, 'pictures'))})</h3>"]
    if pictures.shown:
        figures = "".join(
            f'<figure data-event-id="{esc(p.event.get("id"))}"><img src="{p.data_uri}" '
            f'alt="{esc(p.event.get("label"))}"><figcaption>{_caption(module, p.event)}</figcaption></figure>'
            for p in pictures.shown
        )
        out.append(f'<p class="muted">the {len(pictures.shown)} most severe events with a picture (at most {limit})</p>')
        out.append(f'<div class="pictures">{figures}</div>')
    else:
        out.append('<p class="muted">no pictures</p>')
    if pictures.missing:
        items = "".join(
            f'<li data-event-id="{esc(e.get("id"))}">{esc(e.get("picture"))}: {esc(reason)} '
            f'(event {esc(e.get("id"))}, {esc(e.get("label"))})</li>'
            for e, reason in pictures.missing
        )
        out.append(f'<h3>Missing pictures ({len(pictures.missing)})</h3><ul class="missing">{items}</ul>')
    return "".join(out)


def _run_summaries(runs: Sequence[dict]) -> str:
    items = "".join(
        f"<li>{esc(r['id'])} <pre>{esc(json.dumps(r.get('summary') or {}, indent=1, sort_keys=True, default=str))}</pre></li>"
        for r in runs
    )
    return f"<details><summary>run summaries</summary><ul>{items}</ul></details>"


def _module_section(
    module: str, runs: Sequence[dict], events: Sequence[dict], data_dir: Path, max_pictures: int
) -> str:
    title = MODULE_TITLES.get(module, module)
    parts = [f'<section class="module" id="module-{esc(module)}" data-module="{esc(module)}"><h2>{esc(title)}</h2>']
    counts = ", ".join(f"{esc(name)}: {n}" for name, n in level_counts(module, events))
    parts.append(f'<p class="muted">{len(runs)} run(s), {len(events)} events{" (" + counts + ")" if counts else ""}</p>')
    parts.append(_run_summaries(runs))
    if not events:
        parts.append('<p class="muted">no events</p></section>')
        return "".join(parts)
    chart = strip_chart(module, events)
    if chart is not None:
        parts.append(f'<h3>Strip chart</h3><img class="chart" src="{chart}" alt="{esc(title)} events by chainage and time">')
    parts.append(_events_table(module, events, several_runs=len(runs) > 1))
    parts.append(_pictures_html(module, collect_pictures(events, data_dir, max_pictures), max_pictures))
    parts.append("</section>")
    return "".join(parts)


def _module_rank(module: str) -> tuple[int, str]:
    return (MODULES.index(module) if module in MODULES else len(MODULES), module)


def render_report(
    runs: Sequence[dict],
    events_by_run: dict[str, list[dict]],
    data_dir: Path,
    max_pictures: int = DEFAULT_MAX_PICTURES,
    generated: datetime | None = None,
) -> str:
    """The report's HTML text for runs whose events are already read."""
    generated = generated or datetime.now(timezone.utc)
    modules = sorted({str(r.get("module")) for r in runs}, key=_module_rank)
    sections = []
    for module in modules:
        module_runs = [r for r in runs if str(r.get("module")) == module]
        module_events = [e for r in module_runs for e in events_by_run[r["id"]]]
        sections.append(_module_section(module, module_runs, module_events, data_dir, max_pictures))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>railwatch inspection report {esc(generated.strftime('%Y-%m-%d'))}</title>"
        f"<style>{CSS}</style></head><body>"
        f"{_header(runs, generated)}<main>{_summary(runs, events_by_run)}{''.join(sections)}</main></body></html>\n"
    )


def write_report(
    store: Any, data_dir: Path, run_ids: list[str], out: Path, max_pictures: int = DEFAULT_MAX_PICTURES
) -> Path:
    """Write one self-contained HTML inspection report over ``run_ids`` to ``out``.

    Args:
        store: An :class:`~railwatch.service.store.EventStore` (anything with ``get_run`` and ``events``).
        data_dir: The service data folder; events' ``picture`` paths are relative to it.
        run_ids: The runs to cover, in the order of the summary table.
        out: The HTML file to write (atomically); its folder is created.
        max_pictures: Pictures embedded per module, most severe events first.

    Returns:
        ``out``.

    Raises:
        InputError: no run id given, or a run id that is not in the store.
    """
    if max_pictures < 0:
        raise InputError(f"max_pictures must be 0 or more, got {max_pictures}")
    runs = resolve_runs(store, run_ids)
    events_by_run = {run["id"]: run_events(store, run["id"]) for run in runs}
    return write_text(render_report(runs, events_by_run, Path(data_dir), max_pictures), Path(out))
