"""The dashboard in a real browser: Playwright drives Debian's Chromium against a stand-in API.

The stand-in is a small FastAPI app defined here, with the routes and JSON shapes of the
service's API (``/api/events``, ``/api/runs``, ``/api/pictures/...``) over a real
:class:`~railwatch.service.store.EventStore` in ``tmp_path``; it serves the dashboard file the
service serves at ``/``. It runs with uvicorn on a free port of 127.0.0.1 in a thread.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api")

import uvicorn  # noqa: E402
from fastapi import FastAPI, Header, HTTPException, Query  # noqa: E402
from fastapi.responses import FileResponse, HTMLResponse  # noqa: E402

from railwatch.service.store import EventStore, default_url  # noqa: E402

expect = playwright_api.expect
DASHBOARD = Path(__file__).resolve().parents[2] / "src" / "railwatch" / "service" / "static" / "dashboard.html"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "s3cret-token"
EVIL_LABEL = "<img src=x onerror=alert(1)> person"

# module -> events: (key, line_id, chainage_km, level, score, label, has picture)
EVENTS: dict[str, list[tuple]] = {
    "intrusion": [
        ("obj:1", "L1", 10.2, 1, 2.5, EVIL_LABEL, True),
        ("obj:2", "L1", 11.0, 3, 0.8, "car near track", True),
        ("obj:3", "L2", 10.6, 5, 0.1, "animal", False),
    ],
    "surface": [
        ("defect:0", "L1", 10.5, 1, 0.9, "squat", True),
        ("defect:1", "L2", 11.4, 1, 0.7, "scar", True),
    ],
    "fasteners": [
        ("crop:a", "L1", 12.0, 1, 3.0, "missing bolt", True),
        ("crop:b", "L1", None, 0, 0.2, "normal clip", False),
    ],
    "vibration": [
        ("impact:1", "L2", 12.4, 3, 0.97, "FFI 3 loose", True),
        ("impact:2", "L2", None, 1, 0.4, "FFI 1 tight", True),
    ],
}
ALL = sum(len(v) for v in EVENTS.values())
WITH_CHAINAGE = sum(1 for v in EVENTS.values() for e in v if e[2] is not None)


@dataclass
class Service:
    """The stand-in service under test: its URL, store, data folder, and the run ids per module."""

    url: str
    store: EventStore
    data: Path
    runs: dict[str, str]
    token: list[str | None] = field(default_factory=lambda: [None])

    def event_id(self, label: str) -> str:
        """The id of the stored event with ``label``."""
        return str(next(e["id"] for e in self.store.events(limit=5000) if e["label"] == label))


def stand_in_app(store: EventStore, data: Path, token: list[str | None]) -> FastAPI:
    """A FastAPI app with the service's dashboard route and read API; ``token[0]`` guards /api when set."""
    app = FastAPI()

    def check(authorization: str | None) -> None:
        if token[0] is not None and authorization != f"Bearer {token[0]}":
            raise HTTPException(401, "missing or wrong API token")

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(DASHBOARD.read_text(encoding="utf-8"))

    @app.get("/api/events")
    def events(
        module: str | None = None,
        level_min: int | None = None,
        since: str | None = None,
        until: str | None = None,
        line_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
        offset: Annotated[int, Query(ge=0)] = 0,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict:
        check(authorization)
        filters = dict(module=module, level_min=level_min, since=since, until=until, line_id=line_id)
        return {"events": store.events(**filters, limit=limit, offset=offset), "total": store.count_events(**filters)}

    @app.get("/api/runs")
    def runs(authorization: Annotated[str | None, Header()] = None) -> dict:
        check(authorization)
        return {"runs": store.runs()}

    @app.get("/api/pictures/{picture:path}")
    def picture(picture: str, authorization: Annotated[str | None, Header()] = None) -> FileResponse:
        check(authorization)
        path = (data / picture).resolve()
        if not path.is_relative_to(data.resolve()) or not path.is_file():
            raise HTTPException(404, f"no picture {picture!r}")
        return FileResponse(path)

    return app


def fill_store(store: EventStore, data: Path) -> dict[str, str]:
    """One run per module with the events of ``EVENTS`` and a small PNG per pictured event."""
    run_ids = {}
    for m, (module, events) in enumerate(EVENTS.items()):
        run_id = store.create_run(module, f"{module}.bin", line_id="L1")
        rows = []
        for k, (key, line, km, level, score, label, pictured) in enumerate(events):
            picture = f"pictures/{module}/{key.replace(':', '_')}.png" if pictured else None
            if picture:
                (data / picture).parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (64, 40), (60 * m, 40 * k, 180)).save(data / picture)
            time_ = f"2026-11-21T08:{10 * m + k:02d}:00+00:00"
            details = {"model": f"{module}-v1", "bands_hz": [[120, 180], [400, 520]], "rank": k}
            rows.append(
                dict(key=key, line_id=line, chainage_km=km, level=level, score=score, label=label, picture=picture, time=time_, details=details)
            )
        store.add_events(run_id, rows)
        store.finish_run(run_id, "done")
        run_ids[module] = run_id
    return run_ids


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """The stand-in service on a free port of 127.0.0.1, in a background thread."""
    data = tmp_path / "data"
    data.mkdir()
    store = EventStore(default_url(data))
    runs = fill_store(store, data)
    token: list[str | None] = [None]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(stand_in_app(store, data, token), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the stand-in service did not start"
        time.sleep(0.05)
    yield Service(f"http://127.0.0.1:{port}", store, data, runs, token)
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
    store.close()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright."""
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page in UTC; fails the test on any uncaught script error."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    context.close()
    assert not errors, errors


def rows(page):
    return page.locator("#events-table tbody tr[data-event-id]")


def dots(page):
    return page.locator("#line-diagram .event-dot")


def assert_png(path: Path, min_bytes: int, min_size: tuple[int, int] = (1000, 600)) -> None:
    """``path`` is a PNG screenshot of at least ``min_bytes`` bytes and ``min_size`` pixels."""
    assert path.is_file() and path.stat().st_size > min_bytes, path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.width >= min_size[0] and image.height >= min_size[1], image.size


def test_page_shows_events_on_the_line_and_in_the_table(service, page, tmp_path):
    page.goto(service.url + "/")
    expect(rows(page)).to_have_count(ALL)
    expect(dots(page)).to_have_count(WITH_CHAINAGE)
    expect(page.locator("#updated")).to_have_text(re.compile(r"updated \d\d:\d\d:\d\d"))
    expect(page.locator("#auto-refresh")).to_be_checked()
    expect(page.locator("#refresh-seconds")).to_have_value("5")
    # one track per line id, events without chainage in the side strip
    expect(page.locator("#line-diagram g.track")).to_have_count(2)
    expect(page.locator("#no-chainage-list li[data-event-id]")).to_have_count(ALL - WITH_CHAINAGE)
    # ticks along the chainage axis
    assert page.locator("#line-diagram text.tick-label").count() >= 3
    # dots are coloured by module and sized by level: intrusion I is bigger than intrusion V
    big = dots(page).and_(page.locator(f'[data-event-id="{service.event_id(EVIL_LABEL)}"]'))
    small = dots(page).and_(page.locator(f'[data-event-id="{service.event_id("animal")}"]'))
    assert float(big.get_attribute("r")) > float(small.get_attribute("r"))
    # labels are text, not markup
    expect(page.locator("#events-table")).to_contain_text(EVIL_LABEL)
    assert page.locator("#events-table img").count() == 0
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert_png(shot, 20_000)


def test_filters_reduce_the_rows(service, page):
    page.goto(service.url + "/")
    expect(rows(page)).to_have_count(ALL)
    page.select_option("#filter-module", "surface")
    expect(rows(page)).to_have_count(len(EVENTS["surface"]))
    expect(dots(page)).to_have_count(len(EVENTS["surface"]))
    assert set(rows(page).evaluate_all("rs => rs.map(r => r.dataset.module)")) == {"surface"}

    page.select_option("#filter-module", "")
    page.fill("#filter-line", "L2")
    page.press("#filter-line", "Enter")
    on_l2 = sum(1 for v in EVENTS.values() for e in v if e[1] == "L2")
    expect(rows(page)).to_have_count(on_l2)
    expect(page.locator("#line-diagram g.track")).to_have_count(1)

    page.click("#filter-clear")
    page.fill("#filter-level", "3")
    page.press("#filter-level", "Enter")
    expect(rows(page)).to_have_count(sum(1 for v in EVENTS.values() for e in v if e[3] >= 3))

    page.click("#filter-clear")
    page.fill("#filter-since", "2026-11-21T08:20")
    page.dispatch_event("#filter-since", "change")
    expect(rows(page)).to_have_count(len(EVENTS["fasteners"]) + len(EVENTS["vibration"]))


def test_clicking_a_dot_or_a_row_shows_the_details(service, page, tmp_path):
    page.goto(service.url + "/")
    expect(dots(page)).to_have_count(WITH_CHAINAGE)
    expect(page.locator("#details")).to_be_hidden()

    event_id = service.event_id("squat")
    page.click(f'#line-diagram .event-dot[data-event-id="{event_id}"]')
    details = page.locator("#details")
    expect(details).to_be_visible()
    expect(details).to_contain_text("squat")
    expect(details.locator('[data-field="module"]')).to_have_text("surface")
    expect(details.locator('[data-field="chainage_km"]')).to_have_text("10.5")
    expect(page.locator("#details-json")).to_contain_text('"model": "surface-v1"')
    assert "\n" in page.locator("#details-json").text_content()  # pretty-printed
    picture = page.locator("#details-picture")
    expect(picture).to_have_attribute("src", "/api/pictures/pictures/surface/defect_0.png")
    page.wait_for_function("() => { const i = document.getElementById('details-picture'); return i.complete && i.naturalWidth > 0; }")
    assert picture.evaluate("i => i.naturalWidth") == 64
    expect(page.locator(f'#events-table tr.selected[data-event-id="{event_id}"]')).to_have_count(1)
    details.screenshot(path=str(tmp_path / "details.png"))
    assert_png(tmp_path / "details.png", 5_000, min_size=(300, 200))

    # a row of an event without chainage, and without picture
    row_id = service.event_id("normal clip")
    page.click(f'#events-table tr[data-event-id="{row_id}"]')
    expect(details).to_contain_text("normal clip")
    expect(details.locator('[data-field="level"]')).to_have_text("0 (normal)")
    expect(picture).to_be_hidden()
    expect(page.locator("#picture-note")).to_have_text("no picture for this event")


def test_auto_refresh_picks_up_new_events(service, page, tmp_path):
    page.goto(service.url + "/?refresh=1")
    expect(rows(page)).to_have_count(ALL)
    first = page.locator("#updated").text_content()

    run_id = service.store.create_run("intrusion", "late.mp4", line_id="L1")
    service.store.add_events(run_id, [dict(key="late", chainage_km=13.3, level=2, score=1.5, label="late person", time="2026-11-21T09:00:00+00:00")])
    new_id = service.event_id("late person")
    expect(page.locator(f'#events-table tr[data-event-id="{new_id}"]')).to_have_count(1, timeout=15_000)
    expect(page.locator(f'#line-diagram .event-dot[data-event-id="{new_id}"]')).to_have_count(1)
    expect(rows(page)).to_have_count(ALL + 1)
    expect(page.locator("#updated")).not_to_have_text(first)
    page.screenshot(path=str(tmp_path / "refreshed.png"), full_page=True)
    assert_png(tmp_path / "refreshed.png", 20_000)

    # paused: a further event does not show until refresh is switched back on
    page.uncheck("#auto-refresh")
    service.store.add_events(run_id, [dict(key="later", chainage_km=13.6, level=4, label="paused person")])
    page.wait_for_timeout(2_500)
    expect(rows(page)).to_have_count(ALL + 1)
    page.check("#auto-refresh")
    expect(rows(page)).to_have_count(ALL + 2, timeout=15_000)


def test_token_is_sent_on_every_request(service, page):
    service.token[0] = TOKEN
    page.goto(service.url + "/")  # no token: the API says 401 and the page says so
    expect(page.locator("#error")).to_contain_text("401")
    expect(rows(page)).to_have_count(0)

    page.goto(service.url + f"/?token={TOKEN}")
    expect(rows(page)).to_have_count(ALL)
    expect(page.locator("#error")).to_be_hidden()
    page.click(f'#events-table tr[data-event-id="{service.event_id("missing bolt")}"]')
    page.wait_for_function("() => { const i = document.getElementById('details-picture'); return i.complete && i.naturalWidth > 0; }")
    assert page.locator("#details-picture").get_attribute("src").startswith("blob:")
