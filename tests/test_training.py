"""The trainer every railwatch model shares: one device, one process, deterministic kernels."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from railwatch.config import SurfaceTrainConfig
from railwatch.errors import ConfigError, InputError
from railwatch.training import RESUME_FILE, KeepBest, SaveBest, fit, make_trainer, quiet_lightning


def _trainer(tmp_path, **settings):
    cfg = SurfaceTrainConfig(accelerator="cpu", **settings)
    loader = DataLoader(TensorDataset(torch.zeros(16, 1)), batch_size=4)
    return make_trainer(cfg, tmp_path, SaveBest("val/f1", lambda module, meta: None), loader, progress=False)


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
    L.seed_everything(0, verbose=False)
    x = torch.rand(32, 1, 6, 6)
    y = (x[:, 0] > 0.5).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    cfg = SurfaceTrainConfig(accelerator="cpu", max_steps=40, epochs=100, val_every_steps=40, channels_last=channels_last)
    best = SaveBest("val/f1", lambda module, meta: None)
    task = _TinyConvTask()
    with quiet_lightning():
        fit(make_trainer(cfg, tmp_path, best, loader, progress=False), task, best, loader, loader)
    return task, best.best


@pytest.mark.parametrize("channels_last", [True, False])
def test_training_runs_in_the_layout_asked_for_and_learns(tmp_path, channels_last):
    task, accuracy = _fit_tiny(tmp_path / "a", channels_last)
    assert task.layouts and all(layout == channels_last for layout in task.layouts)  # inputs are NCHW: the weights decide
    assert accuracy > 0.9  # thresholding one pixel: learnt in either layout
    again, _ = _fit_tiny(tmp_path / "b", channels_last)
    for a, b in zip(task.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)  # the same seed trains the same weights


class _PowerCut(Exception):
    pass


class _TinyDropoutTask(L.LightningModule):
    """A CNN with dropout that learns bright pixels under a cosine schedule; ``stop_at`` cuts it off at an epoch's start."""

    def __init__(self, train: dict, stop_at: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters("train")
        self.stop_at = stop_at
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Conv2d(8, 2, 1)
        )

    def on_train_epoch_start(self) -> None:
        if self.current_epoch == self.stop_at:
            raise _PowerCut

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/f1", (self.net(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        optimiser = torch.optim.Adam(self.parameters(), lr=self.hparams.train["lr"])
        return [optimiser], [torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=48)]


def _fit_resumable(
    out, resume: bool = False, stop_at: int | None = None, lr: float = 0.05, step_limited: bool = False
) -> tuple[_TinyDropoutTask, KeepBest]:
    """Six epochs of four shuffled batches validated after each, or 24 steps validated every 6.

    The resume point is written after every epoch.
    """
    L.seed_everything(0, verbose=False)
    x = torch.rand(32, 1, 6, 6)
    y = (x[:, 0] > 0.5).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    val_loader = DataLoader(TensorDataset(x, y), batch_size=32)
    schedule = dict(epochs=100, max_steps=24, val_every_steps=6) if step_limited else dict(epochs=6)
    cfg = SurfaceTrainConfig(accelerator="cpu", lr=lr, resume=resume, resume_every_s=0, **schedule)
    best = KeepBest("val/f1")
    task = _TinyDropoutTask({"lr": lr}, stop_at)
    with quiet_lightning():
        fit(make_trainer(cfg, out, best, loader, progress=False), task, best, loader, val_loader, cfg.resume)
    return task, best


@pytest.mark.parametrize("step_limited", [False, True])
def test_an_interrupted_run_resumed_trains_the_model_of_the_uninterrupted_one(tmp_path, step_limited):
    whole, whole_best = _fit_resumable(tmp_path / "whole", step_limited=step_limited)
    assert not (tmp_path / "whole" / RESUME_FILE).exists()  # a finished run leaves only what it saved
    with pytest.raises(_PowerCut):
        _fit_resumable(tmp_path / "cut", stop_at=3, step_limited=step_limited)
    saved = torch.load(tmp_path / "cut" / RESUME_FILE, weights_only=True)
    assert saved["global_step"] == 12 and not (tmp_path / "cut" / f"{RESUME_FILE}.part").exists()
    resumed, resumed_best = _fit_resumable(tmp_path / "cut", resume=True, step_limited=step_limited)
    assert resumed.global_step == whole.global_step == 24
    for name, weight in whole.state_dict().items():
        assert torch.equal(weight, resumed.state_dict()[name]), name  # shuffling, dropout and Adam all carried on
    assert resumed_best.best == whole_best.best and resumed_best.meta["epoch"] == whole_best.meta["epoch"]
    for name, weight in whole_best.weights.items():
        assert torch.equal(weight, resumed_best.weights[name]), name
    assert not (tmp_path / "cut" / RESUME_FILE).exists()


def test_resume_with_nothing_to_resume_trains_from_the_start(tmp_path):
    whole, _ = _fit_resumable(tmp_path / "whole")
    fresh, _ = _fit_resumable(tmp_path / "fresh", resume=True)
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), fresh.state_dict().values()))


def test_resume_refuses_other_settings_and_unreadable_checkpoints(tmp_path):
    with pytest.raises(_PowerCut):
        _fit_resumable(tmp_path, stop_at=2, lr=0.05)
    with pytest.raises(ConfigError, match=r"last.ckpt was written with other settings \(train.lr: 0.05 -> 0.01\)"):
        _fit_resumable(tmp_path, resume=True, lr=0.01)
    (tmp_path / RESUME_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="last.ckpt: not a readable training checkpoint"):
        _fit_resumable(tmp_path, resume=True)


def test_a_run_that_keeps_its_model_in_memory_only_cannot_resume(tmp_path):
    cfg = SurfaceTrainConfig(accelerator="cpu")
    loader = DataLoader(TensorDataset(torch.zeros(4, 1)), batch_size=4)
    best = KeepBest("val/f1")
    trainer = make_trainer(cfg, tmp_path, best, loader, progress=False, resumable=False)
    with pytest.raises(ConfigError, match="cannot resume"):
        fit(trainer, _TinyDropoutTask({"lr": 0.05}), best, loader, loader, resume=True)
