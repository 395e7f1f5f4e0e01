"""The streaming monitor: STA/LTA on a simulated fibre, chunk boundaries, memory, scoring, real files, the CLI."""

from __future__ import annotations

import json
import sys
import tracemalloc
import types
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from railwatch.cli import app
from railwatch.errors import InputError
from railwatch.vibration.dasio import chunk_count, iter_chunks, read_das
from railwatch.vibration.infer import VibrationPredictor
from railwatch.vibration.monitor import MonitorEvent, MonitorSettings, MonitorSummary, monitor, write_events
from railwatch.vibration.spectra import frequency_grid
from railwatch.vibration.stream import SimulatedFibre

DAS = Path(__file__).resolve().parents[3] / "shared/data/das"
needs_das = pytest.mark.skipif(not DAS.is_dir(), reason=f"{DAS} not present")
PROFILE = np.array([0.4, 0.7, 1.0, 0.8, 0.6, 0.4])  # SP-A..SP-F amplitudes: the third point is nearest the impact


def impact(fs: float = 2000.0, amplitude: float = 20.0, freq: float = 110.0, seconds: float = 0.4) -> np.ndarray:
    """Six adjacent channels of a decaying sinusoid (time constant 50 ms), strongest on the third."""
    t = np.arange(int(seconds * fs)) / fs
    return PROFILE[:, None] * amplitude * np.exp(-t / 0.05) * np.sin(2 * np.pi * freq * t)


def constant(value: float = 1.5):
    """A scorer that records the spectra it is given and returns ``value`` for every event."""
    calls: list[np.ndarray] = []

    def score(spectra: np.ndarray) -> np.ndarray:
        calls.append(spectra)
        return np.full(len(spectra), value)

    score.calls = calls
    return score


def run(fibre: SimulatedFibre, score=None, **settings) -> tuple[list[MonitorEvent], MonitorSummary]:
    summary = MonitorSummary()
    events = list(monitor(fibre.chunks(), score or constant(), MonitorSettings(**settings), summary))
    return events, summary


PLANTED = [(0.8, 100), (1.4, 1000), (1.9, 1500), (2.3, 1990 - 6)]  # time s, first channel


@pytest.fixture(scope="module")
def found() -> tuple[list[MonitorEvent], MonitorSummary]:
    fibre = SimulatedFibre(duration_s=3.0, length_m=2000.0)
    for time_s, channel in PLANTED:
        fibre.plant(time_s, channel, impact())
    return run(fibre)


def test_sta_lta_finds_planted_events_at_their_channel_and_time(found):
    events, summary = found
    assert len(events) == len(PLANTED) and summary.events == len(PLANTED) and summary.skipped == 0
    for event, (time_s, channel) in zip(events, PLANTED):
        assert event.channel == channel + 2 and event.distance_m == channel + 2.0
        assert abs(event.time_s - time_s) < 0.003
        assert event.section == int((channel + 2) // 25) and event.ratio > 50
        assert event.ffi == 1.5 and event.level == 2


def test_summary_counts_the_stream(found):
    _, summary = found
    assert summary.chunks == 6 and summary.data_s == pytest.approx(3.0) and summary.channels == 2000
    assert summary.wall_s > 0 and summary.source_s > 0 and summary.real_time_factor == pytest.approx(3.0 / summary.wall_s)
    assert summary.to_dict()["events"] == 4 and summary.notes == []


def test_noise_and_hum_alone_raise_nothing():
    events, summary = run(SimulatedFibre(duration_s=2.0, length_m=500.0, hum_amplitude=3.0, seed=3))
    assert events == [] and summary.skipped == 0


@pytest.mark.parametrize("chunk_s", [0.5, 0.37, 1.0, 3.0])
def test_event_across_a_chunk_boundary_is_found_once(chunk_s):
    fibre = SimulatedFibre(duration_s=2.0, length_m=300.0, chunk_s=chunk_s, seed=1)
    fibre.plant(0.95, 40, impact())  # its 0.2 s window spans the boundary at 1 s of 0.5 s chunks
    fibre.plant(0.96, 200, impact())  # another section, same moment: a second event
    events, _ = run(fibre)
    assert [(e.channel, round(e.time_s, 2)) for e in events] == [(42, 0.95), (202, 0.96)]


def test_repeated_triggers_in_a_section_within_min_gap_are_one_event():
    fibre = SimulatedFibre(duration_s=3.0, length_m=200.0)
    fibre.plant(1.0, 50, impact())
    fibre.plant(1.2, 51, impact())  # same section, 0.2 s later: part of the first event
    fibre.plant(1.8, 50, impact())  # 0.8 s later: a new event
    events, _ = run(fibre, min_gap_s=0.5)
    assert [round(e.time_s, 1) for e in events] == [1.0, 1.8]


def test_events_too_near_the_end_are_skipped_and_counted():
    fibre = SimulatedFibre(duration_s=2.0, length_m=300.0)
    fibre.plant(1.0, 100, impact())
    fibre.plant(1.9, 200, impact())  # only 0.1 s left: no 0.2 s window
    events, summary = run(fibre)
    assert [e.channel for e in events] == [102] and summary.skipped == 1 and summary.events == 1


def test_dc_offset_does_not_hide_an_event():
    fibre = SimulatedFibre(duration_s=2.0, length_m=100.0, chunk_s=2.0)
    fibre.plant(1.0, 30, impact(amplitude=10.0))
    data = next(fibre.chunks()).data + np.float32(500.0)  # a large constant offset on every channel
    events = list(monitor(iter_chunks(data, fs=2000.0, chunk_s=0.5, dx=1.0), constant(), MonitorSettings()))
    assert [(e.channel, round(e.time_s, 2)) for e in events] == [(32, 1.0)]


def test_scorer_gets_one_batch_of_peak_normalised_spectra_per_chunk():
    fibre = SimulatedFibre(duration_s=2.0, length_m=400.0, chunk_s=1.0)
    fibre.plant(0.6, 10, impact())
    fibre.plant(0.65, 300, impact())
    score = constant()
    events, _ = run(fibre, score)
    assert len(events) == 2 and len(score.calls) == 1
    spectra = score.calls[0]
    assert spectra.shape == (2, 6, len(frequency_grid())) and spectra.dtype == np.float32
    np.testing.assert_allclose(spectra.reshape(2, -1).max(axis=1), 1.0)
    peak_bin = frequency_grid()[spectra[0, 2].argmax()]
    assert peak_bin == pytest.approx(110.0, abs=5.0)  # the planted 110 Hz ring


def test_scorer_must_give_one_value_per_event():
    fibre = SimulatedFibre(duration_s=2.0, length_m=100.0)
    fibre.plant(1.0, 20, impact())
    with pytest.raises(InputError, match="scorer gave 2 values for 1 events"):
        run(fibre, lambda s: np.zeros(len(s) + 1))


def test_levels_are_rounded_ffi_clipped_to_zero_three():
    fibre = SimulatedFibre(duration_s=2.0, length_m=100.0)
    fibre.plant(1.0, 20, impact())
    assert [e.level for e in run(fibre, constant(3.7))[0]] == [3]
    assert [e.level for e in run(fibre, constant(-0.4))[0]] == [0]


def test_chunk_memory_is_bounded():
    fibre = SimulatedFibre(duration_s=1.2, length_m=3000.0, chunk_s=0.25)
    limit = 0.25 * fibre.fs * fibre.n_channels
    assert all(c.data.size <= limit and c.data.dtype == np.float32 for c in fibre.chunks())

    def peak_bytes(duration_s: float) -> int:
        fibre = SimulatedFibre(duration_s=duration_s, length_m=3000.0)
        tracemalloc.start()
        list(monitor(fibre.chunks(), constant(), MonitorSettings()))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    short, long = peak_bytes(2.0), peak_bytes(8.0)
    stream_bytes = 8.0 * 2000 * 3000 * 4
    assert long < 1.2 * short and long < 0.4 * stream_bytes  # a chunk and the STA/LTA state, whatever the length


def test_chunks_that_skip_samples_are_refused():
    fibre = SimulatedFibre(duration_s=2.0, length_m=50.0)
    chunks = list(fibre.chunks())
    with pytest.raises(InputError, match="the stream is at 0.500000 s"):
        list(monitor([chunks[0], chunks[2]], constant()))


def test_settings_are_checked():
    with pytest.raises(ValidationError, match="shorter than lta_s"):
        MonitorSettings(sta_s=0.6)
    with pytest.raises(ValidationError, match="two STAs"):
        MonitorSettings(sta_s=0.15)
    with pytest.raises(InputError, match="needs 6 adjacent sensing points"):
        list(monitor(iter_chunks(np.zeros((100, 4), np.float32), fs=1000.0), constant()))


def test_write_events_is_jsonl_and_atomic(tmp_path: Path, found):
    events, _ = found
    out = tmp_path / "runs" / "events.jsonl"
    assert write_events(events, out) == 4
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["channel"] for r in rows] == [e.channel for e in events]
    assert set(rows[0]) == {"time_s", "channel", "distance_m", "section", "ratio", "ffi", "level", "source"}

    def broken():
        yield events[0]
        raise RuntimeError("stream died")

    with pytest.raises(RuntimeError):
        write_events(broken(), out)
    assert len(out.read_text().splitlines()) == 4  # the old file is untouched
    assert [p.name for p in out.parent.iterdir()] == ["events.jsonl"]  # no temporary left behind


@needs_das
def test_monitor_runs_on_a_real_file_with_any_chunking():
    record = read_das(DAS / "iDAS005_hdf5_example.626.h5")
    summary = MonitorSummary("iDAS")
    events = list(monitor(iter_chunks(record, chunk_s=0.25), constant(0.0), MonitorSettings(), summary, "iDAS"))
    assert summary.chunks == chunk_count(record.n_time, record.fs, 0.25) == 4
    assert summary.data_s == pytest.approx(record.duration_s) and summary.channels == 1152 and summary.fs_hz == 1000.0
    assert summary.events == len(events) and summary.wall_s > 0 and summary.real_time_factor > 0
    assert all(0 <= e.channel < 1152 and 0 <= e.time_s < 1.0 and e.source == "iDAS" for e in events)
    carried = list(monitor(iter_chunks(record, chunk_s=0.3, carry_s=0.2), constant(0.0), MonitorSettings(), None, "iDAS"))
    assert [e.to_dict() for e in carried] == [e.to_dict() for e in events]


@needs_das
def test_low_rate_and_short_files_are_noted():
    summary = MonitorSummary()
    record = read_das(DAS / "ap_sensing_1.hdf5")
    assert list(monitor(iter_chunks(record), constant(), MonitorSettings(), summary)) == []
    notes = " ".join(summary.notes)
    assert "above 250 Hz (Nyquist) are zero" in notes and "too short for an event window" in notes


# ---------------------------------------------------------------------------------------------
# railwatch vibration monitor


class FakePredictor:
    """Stands in for a trained DAS model: the API of railwatch.vibration.infer.VibrationPredictor."""

    reads, channels, window_s, max_freq, path = "das", 6, 0.2, 500.0, Path("model.pt")
    monitor_settings = VibrationPredictor.monitor_settings

    def predict_spectra(self, spectra: np.ndarray) -> np.ndarray:
        assert spectra.shape[1:] == (6, len(frequency_grid()))
        return np.full(len(spectra), 2.2)


@pytest.fixture
def fake_model(monkeypatch):
    module = types.ModuleType("railwatch.vibration.infer")
    module.load_predictor = lambda path: FakePredictor()
    monkeypatch.setitem(sys.modules, "railwatch.vibration.infer", module)


def _write_dasdae(path: Path) -> None:
    import dascore

    fibre = SimulatedFibre(duration_s=2.0, length_m=120.0, dx=2.0, chunk_s=2.0)
    fibre.plant(1.1, 20, impact())
    data = next(fibre.chunks()).data
    times = dascore.to_datetime64(0) + np.arange(data.shape[0]) * np.timedelta64(500, "us")
    patch = dascore.Patch(data=data, coords={"time": times, "distance": 100.0 + 2.0 * np.arange(60)}, dims=("time", "distance"))
    patch.io.write(path, "dasdae")


def test_cli_monitor_folder_writes_events(tmp_path: Path, fake_model):
    folder = tmp_path / "fibre"
    folder.mkdir()
    _write_dasdae(folder / "site.h5")
    (folder / "junk.bin").write_bytes(b"not das")
    out = tmp_path / "events.jsonl"
    result = runner_invoke(["vibration", "monitor", str(folder), "--checkpoint", "model.pt", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (
        report["events"] == 1
        and report["levels"]["2"] == 1
        and [Path(u["file"]).name for u in report["unreadable"]] == ["junk.bin"]
    )
    assert report["files"][0]["source"] == "site.h5" and report["files"][0]["chunks"] == 4
    (event,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert event["channel"] == 22 and event["distance_m"] == pytest.approx(144.0) and event["section"] == 5
    assert event["time_s"] == pytest.approx(1.1, abs=0.003) and event["ffi"] == 2.2 and event["source"] == "site.h5"
    table = runner_invoke(
        ["vibration", "monitor", str(folder / "site.h5"), "--checkpoint", "m.pt", "--out", str(out), "--chunk-s", "0.3"]
    )
    assert table.exit_code == 0 and "1 events" in table.output


def test_cli_monitor_bad_settings_and_files(tmp_path: Path, fake_model):
    bad = runner_invoke(["vibration", "monitor", str(tmp_path), "--checkpoint", "m.pt"])
    assert bad.exit_code == 2 and "holds no DAS files" in bad.output
    (tmp_path / "x.h5").write_bytes(b"nope")
    bad = runner_invoke(["vibration", "monitor", str(tmp_path / "x.h5"), "--checkpoint", "m.pt"])
    assert bad.exit_code == 2 and "DASCore cannot read it" in bad.output
    bad = runner_invoke(["vibration", "monitor", str(tmp_path / "x.h5"), "--checkpoint", "m.pt", "--trigger", "0.5"])
    assert bad.exit_code == 2 and "vibration.monitor.trigger" in bad.output


def runner_invoke(args: list[str]):
    return CliRunner().invoke(app, args)
