"""Typed settings: defaults from the papers, YAML files, overrides and clear errors."""

from __future__ import annotations

import pytest

from railwatch.config import RailwatchConfig, config_from_dict, dump_yaml, load_config, override
from railwatch.errors import ConfigError


def test_paper_defaults():
    cfg = RailwatchConfig().intrusion
    assert cfg.gauge.half_gauge_mm == 717.5
    assert cfg.gauge.clearance_edge_mm == 3157.5
    assert cfg.risk.type_weights == {"person": 1.1, "car": 1.2, "animal": 0.9, "stone": 0.7}
    assert cfg.risk.level_thresholds == (1.2, 0.8, 0.5, 0.2)
    assert cfg.railfit.degree == 3


def test_yaml_round_trip(tmp_path):
    path = tmp_path / "settings.yaml"
    changed = override(RailwatchConfig(), {"intrusion.camera.focal_px": 2000.0})
    path.write_text(dump_yaml(changed))
    assert load_config(path) == changed


def test_partial_file_keeps_other_defaults(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("intrusion:\n  gauge:\n    gauge_mm: 1520\n")
    cfg = load_config(path)
    assert cfg.intrusion.gauge.gauge_mm == 1520 and cfg.intrusion.camera.focal_px == 1400.0


def test_override_skips_unset_flags():
    assert override(RailwatchConfig(), {"intrusion.camera.focal_px": None}) == RailwatchConfig()


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("intrusion:\n  camera:\n    focal_px: -3\n", "intrusion.camera.focal_px"),
        ("intrusion:\n  risk:\n    level_thresholds: [0.2, 0.5, 0.8, 1.2]\n", "strictly descending"),
        ("intrusion: [1, 2\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("telemetry: {}\n", "telemetry"),
        ("surface:\n  train:\n    rail_type: type3\n", "surface.train.rail_type"),
    ],
)
def test_bad_files(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert fragment in str(err.value) and str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_surface_training_defaults_are_the_papers():
    cfg = RailwatchConfig().surface.train
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.tile_height, cfg.mask_threshold, cfg.val_fraction, cfg.folds) == (
        1e-4, 16, 300, 100, 127, 0.1, 5
    )
    assert cfg.model_name == "fcn-type1"
    assert cfg.model_copy(update={"rail_type": "type2"}).model_name == "fcn-type2"


def test_fastener_training_defaults_are_the_papers():
    cfg = RailwatchConfig().fasteners.train
    assert (cfg.lr, cfg.lr_min, cfg.batch_size, cfg.weight_decay, cfg.model) == (1e-4, 2e-5, 16, 1e-5, "kd-gan")
    assert (cfg.arch.image_size, cfg.arch.grid, cfg.arch.ejpu_dilations, cfg.arch.msac_channels) == (128, 2, (1, 2, 3, 4), (128, 256, 512))
    assert cfg.steps == 1000 and cfg.model_copy(update={"profile": "quick"}).steps == 150
    assert cfg.model_copy(update={"max_steps": 7}).steps == 7
    with pytest.raises(ConfigError, match="divisible by 16"):
        config_from_dict({"fasteners": {"train": {"arch": {"image_size": 96, "grid": 4}}}})
