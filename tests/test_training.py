"""The trainer every railwatch model shares: one device, one process, deterministic kernels."""

from __future__ import annotations

import pytest
import torch

from railwatch.config import SurfaceTrainConfig
from railwatch.errors import ConfigError
from railwatch.training import SaveBest, make_trainer


def _trainer(tmp_path, **settings):
    cfg = SurfaceTrainConfig(accelerator="cpu", **settings)
    return make_trainer(cfg, tmp_path, SaveBest("val/f1", lambda module, meta: None), steps_per_epoch=4, progress=False)


def test_one_device_by_default(tmp_path):
    assert _trainer(tmp_path).num_devices == 1


def test_several_devices_are_refused(tmp_path):
    # several processes would each score a share of validation and each save their own "best" model
    with pytest.raises(ConfigError, match="devices='2' gives 2 devices"):
        _trainer(tmp_path, devices="2")


def test_cpu_training_is_deterministic_without_filling_new_tensors(tmp_path):
    # the NaN fill of new tensors is a debugging trap that cost 10-20% of a step; determinism stays
    _trainer(tmp_path)
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.utils.deterministic.fill_uninitialized_memory
