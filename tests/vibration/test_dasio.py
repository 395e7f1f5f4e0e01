"""Real DAS files through DASCore: reading, describing, drawing, chunking, bad inputs, ``vibration inspect``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from railwatch.cli import app
from railwatch.errors import InputError
from railwatch.vibration.dasio import (
    DasRecord,
    chunk_count,
    das_files,
    describe,
    iter_chunks,
    read_das,
    scan_folder,
    waterfall_figure,
)

DAS = Path(__file__).resolve().parents[3] / "shared/data/das"  # ../shared beside the repository, as tests/fasteners does
needs_das = pytest.mark.skipif(not DAS.is_dir(), reason=f"{DAS} not present")
UNREADABLE = {"geofon_9N_HSF.mseed", "xdas_netcdf.nc"}
runner = CliRunner()


@pytest.fixture
def nan_file(tmp_path: Path) -> Path:
    """A copy of h5_simple_1.h5 (DASCore's simplest format) with one NaN sample."""
    path = tmp_path / "h5_simple_nan.h5"
    shutil.copy(DAS / "h5_simple_1.h5", path)
    with h5py.File(path, "r+") as f:
        f["raw"][7, 3] = np.nan
    return path


# ---------------------------------------------------------------------------------------------
# the shared recordings


@needs_das
def test_dascore_reads_twelve_shared_files_and_names_the_two_it_cannot():
    found = scan_folder(DAS)
    assert {p.name for p, _ in found} == {p.name for p in DAS.iterdir()} - {"README.md", "LICENSE"}
    records = {p.name: r for p, r in found if isinstance(r, DasRecord)}
    reasons = {p.name: r for p, r in found if isinstance(r, str)}
    assert len(records) == 12 and set(reasons) == UNREADABLE
    for name, reason in reasons.items():
        assert name in reason and "DASCore cannot read it" in reason and "\n" not in reason
    for name, r in records.items():
        assert r.data.dtype == np.float32 and r.data.ndim == 2 and np.isfinite(r.data).all(), name
        assert r.data.shape == (r.n_time, r.n_channels) == (r.n_time, r.distance.size), name
        assert 200 <= r.fs <= 3300 and r.duration_s == pytest.approx(r.n_time / r.fs), name
        json.dumps(describe(r))


@needs_das
def test_describe_ap_sensing():
    info = describe(read_das(DAS / "ap_sensing_1.hdf5"))
    assert info["format"].startswith("APSensing")
    assert info["fs_hz"] == 500.0 and info["dt_s"] == pytest.approx(0.002)
    assert info["shape"] == [150, 4082] and info["n_channels"] == 4082 and info["dims"] == ["time", "distance"]
    assert info["duration_s"] == pytest.approx(0.3)
    assert info["channel_spacing_m"] == pytest.approx(1.2261, abs=1e-3) and info["distance_units"] == "m"
    assert info["distance"][0] == pytest.approx(124.15, abs=0.01) and info["start"].startswith("2023-09-24T12:46:31")


@needs_das
def test_distance_first_file_is_put_time_first():
    import dascore

    record = read_das(DAS / "dispersion_event.h5")
    patch = dascore.spool(DAS / "dispersion_event.h5")[0]
    assert patch.dims == ("distance", "time") and record.dims == ("distance", "time")
    assert record.data.shape == (2500, 101) and record.fs == pytest.approx(2000.0)
    np.testing.assert_array_equal(record.data, np.asarray(patch.data, np.float32).T)


@needs_das
def test_numbered_channels_have_no_spacing_and_dead_channels_read_as_zeros():
    simple = read_das(DAS / "h5_simple_1.h5")
    assert simple.dx is None and describe(simple)["distance_units"] == "channel"
    np.testing.assert_array_equal(simple.distance, np.arange(100))
    febus = read_das(DAS / "febus_2.h5")  # channel 98 holds only NaN in the file
    assert febus.dead_channels == (98,) and not febus.data[:, 98].any() and febus.data[:, 97].any()


@needs_das
def test_waterfall_png_is_written(tmp_path: Path):
    record = read_das(DAS / "iDAS005_hdf5_example.626.h5")
    out = waterfall_figure(record, tmp_path / "plots" / "w.png")
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200
    with pytest.raises(InputError, match="clip_percentile"):
        waterfall_figure(record, tmp_path / "x.png", clip_percentile=0)


# ---------------------------------------------------------------------------------------------
# bad inputs


def test_missing_file_and_folder_are_named(tmp_path: Path):
    with pytest.raises(InputError, match=r"nope\.h5: no such file"):
        read_das(tmp_path / "nope.h5")
    with pytest.raises(InputError, match="is a folder"):
        read_das(tmp_path)
    with pytest.raises(InputError, match="no such folder"):
        scan_folder(tmp_path / "absent")


def test_garbage_bytes_are_not_a_das_file(tmp_path: Path):
    path = tmp_path / "garbage.h5"
    path.write_bytes(b"\x89HDF\r\n not really" * 50)
    with pytest.raises(InputError) as err:
        read_das(path)
    assert str(path) in str(err.value) and "DASCore cannot read it" in str(err.value) and "\n" not in str(err.value)


def test_folder_with_nothing_readable(tmp_path: Path):
    (tmp_path / "a.h5").write_bytes(b"nothing")
    (tmp_path / "b.tdms").write_bytes(b"")
    (tmp_path / "README.md").write_text("not data")
    (tmp_path / ".hidden").write_bytes(b"x")
    assert [p.name for p in das_files(tmp_path)] == ["a.h5", "b.tdms"]
    assert all(isinstance(r, str) and p.name in r for p, r in scan_folder(tmp_path))
    result = runner.invoke(app, ["vibration", "inspect", str(tmp_path)])
    assert result.exit_code == 2 and "no file DASCore can read among its 2 files" in result.output


@needs_das
def test_nan_sample_is_an_error_naming_the_file(nan_file: Path):
    with pytest.raises(InputError, match=r"h5_simple_nan\.h5: signal holds NaN or infinity \(first at index \(7, 3\)\)"):
        read_das(nan_file)


@needs_das
def test_a_channel_of_only_nan_is_dead_not_an_error(nan_file: Path):
    with h5py.File(nan_file, "r+") as f:
        f["raw"][:, 3] = np.nan
    record = read_das(nan_file)
    assert record.dead_channels == (3,) and np.isfinite(record.data).all()


# ---------------------------------------------------------------------------------------------
# chunks


def test_chunks_cover_the_stream_and_carry_the_previous_tail():
    data = np.arange(1000 * 3, dtype=np.float32).reshape(1000, 3)
    chunks = list(iter_chunks(data, fs=100.0, chunk_s=0.3, carry_s=0.05, dx=2.0, distance0=10.0))
    assert len(chunks) == chunk_count(1000, 100.0, 0.3) == 34
    np.testing.assert_array_equal(np.concatenate([c.new for c in chunks]), data)
    assert chunks[0].carry == 0 and all(c.carry == 5 for c in chunks[1:])
    for before, after in zip(chunks, chunks[1:]):
        np.testing.assert_array_equal(after.data[: after.carry], before.data[-after.carry :])
        assert after.t0_s == pytest.approx(before.t0_s + (before.data.shape[0] - after.carry) / 100.0)
    assert all(np.shares_memory(c.data, data) for c in chunks)  # views, no copy
    assert max(c.data.shape[0] for c in chunks) <= round((0.3 + 0.05) * 100)
    assert all(c.dx == 2.0 and c.distance0 == 10.0 and c.fs == 100.0 for c in chunks)


def test_chunks_convert_other_dtypes_per_chunk_and_need_a_rate():
    data = np.ones((50, 2), np.int16)
    chunks = list(iter_chunks(data, fs=10.0, chunk_s=1.0))
    assert [c.data.dtype for c in chunks] == [np.float32] * 5
    with pytest.raises(InputError, match="needs its sampling rate"):
        next(iter_chunks(data))
    with pytest.raises(InputError, match="chunk_s"):
        next(iter_chunks(data, fs=10.0, chunk_s=0.0))


@needs_das
def test_chunks_of_a_record_take_its_rate_and_positions():
    record = read_das(DAS / "iDAS005_hdf5_example.626.h5")
    chunks = list(iter_chunks(record, chunk_s=0.25))
    assert len(chunks) == 4 and all(c.fs == 1000.0 and c.dx == record.dx for c in chunks)
    assert chunks[0].distance0 == pytest.approx(record.distance[0])
    with pytest.raises(InputError, match="not at the fs=500"):
        next(iter_chunks(record, fs=500.0))


# ---------------------------------------------------------------------------------------------
# railwatch vibration inspect


@needs_das
def test_cli_inspect_file_json_and_plot(tmp_path: Path):
    png = tmp_path / "ap.png"
    result = runner.invoke(app, ["vibration", "inspect", str(DAS / "ap_sensing_1.hdf5"), "--json", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["shape"] == [150, 4082] and info["fs_hz"] == 500.0 and info["plot"] == str(png) and png.is_file()


@needs_das
def test_cli_inspect_folder_lists_what_it_cannot_read(tmp_path: Path):
    result = runner.invoke(app, ["vibration", "inspect", str(DAS), "--json", "--plot", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert len(report["files"]) == 12 and {Path(u["file"]).name for u in report["unreadable"]} == UNREADABLE
    assert len(list(tmp_path.glob("*_waterfall.png"))) == 12
    table = runner.invoke(app, ["vibration", "inspect", str(DAS)])
    assert table.exit_code == 0 and "12 of 14 files read" in table.output and "xdas_netcdf.nc" in table.output


def test_cli_inspect_bad_file_is_one_line_error(tmp_path: Path):
    result = runner.invoke(app, ["vibration", "inspect", str(tmp_path / "missing.h5")])
    assert result.exit_code == 2
    assert result.output.startswith("error:") and "missing.h5: no such file" in result.output
