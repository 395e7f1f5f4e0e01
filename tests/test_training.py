"""The trainer every railwatch model shares: one device, one process, deterministic kernels."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from railwatch.config import SurfaceTrainConfig
from railwatch.errors import ConfigError
from railwatch.training import SaveBest, fit, make_trainer, quiet_lightning


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


class _TinyConvTask(L.LightningModule):
    """A two-layer CNN that learns which pixels are brighter than 0.5, recording the layout of its class scores."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1))
        self.layouts: list[bool] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        scores = self.net(x)
        self.layouts.append(scores.is_contiguous(memory_format=torch.channels_last) and not scores.is_contiguous())
        return torch.nn.functional.cross_entropy(scores, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/f1", (self.net(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


def _fit_tiny(tmp_path, channels_last: bool) -> tuple[_TinyConvTask, float]:
    from torch.utils.data import DataLoader, TensorDataset

    L.seed_everything(0, verbose=False)
    x = torch.rand(32, 1, 6, 6)
    y = (x[:, 0] > 0.5).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    cfg = SurfaceTrainConfig(accelerator="cpu", max_steps=40, epochs=100, val_every_steps=40, channels_last=channels_last)
    best = SaveBest("val/f1", lambda module, meta: None)
    task = _TinyConvTask()
    with quiet_lightning():
        fit(make_trainer(cfg, tmp_path, best, steps_per_epoch=len(loader), progress=False), task, best, loader, loader)
    return task, best.best


@pytest.mark.parametrize("channels_last", [True, False])
def test_training_runs_in_the_layout_asked_for_and_learns(tmp_path, channels_last):
    task, accuracy = _fit_tiny(tmp_path / "a", channels_last)
    assert task.layouts and all(layout == channels_last for layout in task.layouts)  # inputs are NCHW: the weights decide
    assert accuracy > 0.9  # thresholding one pixel: learnt in either layout
    again, _ = _fit_tiny(tmp_path / "b", channels_last)
    for a, b in zip(task.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)  # the same seed trains the same weights
