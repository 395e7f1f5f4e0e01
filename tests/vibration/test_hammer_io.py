"""Hammer-test HDF5 files: round trip, atomic writes, one-line errors naming the file, and the CLI."""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from railwatch.cli import app
from railwatch.errors import InputError
from railwatch.vibration.hammer_io import read_hammer_h5, write_hammer_h5
from railwatch.vibration.simulate import HammerConfig, HammerDataset, rail_modes, simulate_hammer_tests

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset() -> HammerDataset:
    return simulate_hammer_tests(repeats=1, seed=0)


def raises_naming(path, what: str):
    """``pytest.raises`` for an :class:`InputError` whose one-line message names ``path`` and says ``what``."""
    return pytest.raises(InputError, match=rf"^{re.escape(str(path))}: .*{what}[^\n]*$")


def write_raw(path, **arrays) -> None:
    with h5py.File(path, "w") as f:
        for name, value in arrays.items():
            if name == "fs":
                f.attrs["fs"] = value
            else:
                f.create_dataset(name, data=value)


def valid_arrays(dataset: HammerDataset) -> dict:
    return {"accel": dataset.accel, "das": dataset.das, "ffi": dataset.ffi, "condition": dataset.condition, "fs": dataset.fs}


def test_round_trip(tmp_path, dataset):
    path = write_hammer_h5(tmp_path / "sub" / "hammer.h5", dataset, {"seed": 0, "site": {"name": "training"}})
    back = read_hammer_h5(path)
    np.testing.assert_array_equal(back.accel, dataset.accel)
    np.testing.assert_array_equal(back.das, dataset.das)
    np.testing.assert_array_equal(back.ffi, dataset.ffi)
    np.testing.assert_array_equal(back.condition, dataset.condition)
    assert (back.fs, back.site, back.das.dtype, back.ffi.dtype) == (2000.0, "training", np.float32, np.int64)
    with h5py.File(path, "r") as f:
        assert json.loads(f.attrs["settings"]) == {"seed": 0, "site": {"name": "training"}}
    assert [p.name for p in path.parent.iterdir()] == ["hammer.h5"]


def test_das_only_files_are_valid(tmp_path, dataset):
    das_only = HammerDataset(None, dataset.das, dataset.ffi, dataset.condition, dataset.fs, "field")
    back = read_hammer_h5(write_hammer_h5(tmp_path / "das.h5", das_only))
    assert back.accel is None and back.das.shape == dataset.das.shape and back.site == "field"
    assert len(back.subset(np.array([0, 2]))) == 2


def test_a_bad_data_set_is_refused_before_writing(tmp_path, dataset):
    path = tmp_path / "bad.h5"
    das = dataset.das.copy()
    das[3, 1, 100] = np.nan
    with raises_naming(path, r"das holds NaN or infinity \(first at index \(3, 1, 100\)\)"):
        write_hammer_h5(path, HammerDataset(dataset.accel, das, dataset.ffi, dataset.condition, dataset.fs, "x"))
    with raises_naming(path, "ffi"):
        write_hammer_h5(path, HammerDataset(dataset.accel, dataset.das, dataset.ffi[:2], dataset.condition, dataset.fs, "x"))
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_old_file_whole(tmp_path, dataset, monkeypatch):
    path = write_hammer_h5(tmp_path / "hammer.h5", dataset)
    before = path.read_bytes()

    def broken(self, name, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(h5py.Group, "create_dataset", broken)
    with pytest.raises(OSError, match="disk full"):
        write_hammer_h5(path, dataset.subset(np.array([0])))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["hammer.h5"]


def test_missing_file(tmp_path):
    with raises_naming(tmp_path / "none.h5", "not found"):
        read_hammer_h5(tmp_path / "none.h5")


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.h5"
    path.write_bytes(b"\x89HDF not really" + bytes(range(256)) * 4)
    with raises_naming(path, "not an HDF5 file"):
        read_hammer_h5(path)


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"ffi": None}, "missing array 'ffi'"),
        ({"fs": None}, "missing the sampling rate"),
        ({"condition": np.ones(4, np.int64)}, r"condition \(4,\)"),
        ({"accel": np.zeros((6, 5, 3, 1000), np.float32)}, "accel must be"),
        ({"ffi": np.full(6, 0.5)}, "whole numbers"),
        ({"das": np.array(["a"] * 6, dtype="S1")}, "cannot be read as numbers"),
    ],
)
def test_bad_arrays_are_named(tmp_path, dataset, change, what):
    path = tmp_path / "bad.h5"
    arrays = valid_arrays(dataset) | change
    write_raw(path, **{name: value for name, value in arrays.items() if value is not None})
    with raises_naming(path, what):
        read_hammer_h5(path)


def test_nan_inside_the_records(tmp_path, dataset):
    path = tmp_path / "nan.h5"
    accel = dataset.accel.copy()
    accel[5, 4, 2, 7] = np.inf
    write_raw(path, **valid_arrays(dataset) | {"accel": accel})
    with raises_naming(path, r"accel holds NaN or infinity \(first at index \(5, 4, 2, 7\)\)"):
        read_hammer_h5(path)


def test_cli_writes_a_readable_file(tmp_path):
    out = tmp_path / "hammer.h5"
    result = runner.invoke(app, ["data", "synth", "hammer", "--out", str(out), "--repeats", "2", "--seed", "4"])
    assert result.exit_code == 0, result.output
    data = read_hammer_h5(out)
    assert len(data) == 12 and data.site == "training" and data.accel.shape == (12, 5, 3, 1200)
    np.testing.assert_array_equal(data.das, simulate_hammer_tests(repeats=2, seed=4).das)
    summary = " ".join(result.output.split())
    assert "wrote 12 events (2 per condition C1..C6) at 2000 Hz, 1200 samples, site training" in summary
    tight, loose = rail_modes(HammerConfig(), 1, "lateral")[0], rail_modes(HammerConfig(), 6, "lateral")[0]
    assert f"first lateral mode {tight:.1f} Hz tight, {loose:.1f} Hz C6" in summary


def test_cli_takes_settings_from_yaml_and_flags(tmp_path):
    config = tmp_path / "settings.yaml"
    config.write_text("vibration:\n  simulator:\n    duration_s: 0.4\n  site:\n    coupling_freq: 65\n    hum_amplitude: 0.3\n")
    out = tmp_path / "hammer.h5"
    args = [
        "data",
        "synth",
        "hammer",
        "--out",
        str(out),
        "--repeats",
        "1",
        "--site",
        "other",
        "--config",
        str(config),
        "--noise",
        "0.1",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert read_hammer_h5(out).das.shape == (6, 6, 800)
    with h5py.File(out, "r") as f:
        settings = json.loads(f.attrs["settings"])
    site = settings["site"]
    assert (site["name"], site["coupling_freq"], site["hum_amplitude"], site["das_noise"], site["coupling_q"]) == (
        "other",
        65,
        0.3,
        0.1,
        8.0,
    )
    assert settings["simulator"]["duration_s"] == 0.4 and settings["repeats"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--site", "moon"], "unknown site 'moon'"),
        (["--config", "{config}"], r"vibration\.simulator\.k_vertical: Input should be greater than 0"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, message):
    config = tmp_path / "bad.yaml"
    config.write_text("vibration:\n  simulator:\n    k_vertical: -1\n")
    out = tmp_path / "hammer.h5"
    args = [a.format(config=config) for a in args]
    result = runner.invoke(app, ["data", "synth", "hammer", "--out", str(out), "--repeats", "1", *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and re.search(message, lines[0]), result.output
    assert not out.exists()
