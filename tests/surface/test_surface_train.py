"""Training, scoring, predicting, cross-validating and exporting surface models on tiny generated strips."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from railwatch.cli import app
from railwatch.config import SurfaceTrainConfig
from railwatch.data.surface_strips import write_rsdds
from railwatch.errors import ConfigError, InputError
from railwatch.surface.cv import SCORES_FILE, cross_validate, tables_markdown
from railwatch.surface.data import Normalisation, find_pairs, load_tiles
from railwatch.surface.evaluate import evaluate_surface
from railwatch.surface.infer import SurfaceSegmenter, find_defects
from railwatch.surface.models import build_surface_model, load_backbone_weights
from railwatch.surface.train import fit_surface
from tests.test_cli import one_line_error

runner = CliRunner()
STEPS = 100  # of the tiny overfit
TINY = dict(rail_type="type2", lr=1e-3, accelerator="cpu", num_workers=0)


@pytest.fixture(scope="module")
def strips(tmp_path_factory):
    """Two Type-2 strips (24 tiles of 100x55) in the RSDDs layout."""
    root = tmp_path_factory.mktemp("rsdds")
    write_rsdds(root, "type2", 2, seed=11)
    return root


@pytest.fixture(scope="module")
def trained(strips, tmp_path_factory):
    """The FCN overfitted on the six tiles with the most defects (a tiny task it must learn)."""
    tiles = load_tiles(find_pairs(strips, "type2"))
    idx = np.sort(np.argsort(tiles.masks.sum(axis=(1, 2)))[-6:])
    cfg = SurfaceTrainConfig(**TINY, batch_size=6, max_steps=STEPS, val_every_steps=STEPS // 2)
    return fit_surface(tiles, idx, idx, cfg, tmp_path_factory.mktemp("surface_run"), progress=False), tiles, idx


def test_tiny_overfit_learns_the_defects(trained):
    result, _, _ = trained
    assert result.checkpoint.is_file() and result.step_ms > 0
    assert result.metrics["val/f1"] > 0.6 and result.metrics["val/iou"] > 0.4
    payload = torch.load(result.checkpoint, weights_only=True)
    assert payload["task"] == "surface-seg" and payload["model"]["name"] == "fcn-type2"
    assert payload["model"]["tile_height"] == 100 and payload["model"]["tile_width"] == 55


def test_normalisation_is_stored_and_reused(trained):
    result, tiles, idx = trained
    expected = Normalisation.fit(tiles.images[idx])
    segmenter = SurfaceSegmenter.load(result.checkpoint)
    assert segmenter.net.mean == pytest.approx(expected.mean) and segmenter.net.std == pytest.approx(expected.std)
    assert expected.mean != pytest.approx(Normalisation.fit(tiles.images).mean)  # the training tiles', not all
    grey = tiles.images[:2]
    with torch.no_grad():
        direct = segmenter.net.net(expected.apply(grey))
        wrapped = segmenter.net(torch.as_tensor(grey, dtype=torch.float32).unsqueeze(1))
    assert torch.allclose(direct, wrapped, atol=1e-5)


def test_eval_scores_the_tiles_it_was_trained_on_as_training_did(trained, strips):
    result, tiles, idx = trained
    evaluation = evaluate_surface(SurfaceSegmenter.load(result.checkpoint), strips, "type2")
    assert evaluation.tiles == len(tiles) == 24
    found = SurfaceSegmenter.load(result.checkpoint).probabilities(tiles.images[idx]) > 0.5
    truth = tiles.masks[idx]
    tp, fp, fn = (found & truth).sum(), (found & ~truth).sum(), (~found & truth).sum()
    assert 2 * tp / (2 * tp + fp + fn) == pytest.approx(result.metrics["val/f1"], abs=1e-3)
    with pytest.raises(InputError, match="records no held-out split"):
        evaluate_surface(SurfaceSegmenter.load(result.checkpoint), strips, "type2", split="test")


def test_train_holds_out_ten_percent_and_eval_finds_them_again(strips, tmp_path):
    trained = runner.invoke(app, ["surface", "train", str(strips), "--rail-type", "type2", "--out", str(tmp_path),
                                  "--max-steps", "1", "--batch-size", "2", "--quiet"])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    meta = torch.load(tmp_path / "best.pt", weights_only=True)["meta"]
    assert (meta["train_tiles"], meta["val_tiles"]) == (22, 2)
    scored = runner.invoke(app, ["surface", "eval", str(tmp_path / "best.pt"), str(strips), "--split", "test", "--json"])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.output)["tiles"] == 2


def test_predict_stitches_a_full_strip(trained, strips):
    result, _, _ = trained
    segmenter = SurfaceSegmenter.load(result.checkpoint)
    from railwatch.surface.data import read_grey

    image = read_grey(next(iter(find_pairs(strips, "type2"))).image)
    out = segmenter.segment(image)
    assert out.probability.shape == out.mask.shape == (1250, 55)
    assert out.defects and all(d.area_px >= 4 and d.length_px == d.row_end - d.row_start for d in out.defects)


def test_find_defects_lists_connected_regions_top_to_bottom():
    mask = np.zeros((50, 10), bool)
    mask[5:8, 2:4] = True
    mask[30:40, 6] = True
    mask[45, 0] = True
    defects = find_defects(mask, mask.astype(np.float32), min_area_px=2)
    assert [(d.row_start, d.row_end, d.area_px, d.length_px) for d in defects] == [(5, 8, 6, 3), (30, 40, 10, 10)]


def test_cross_validation_trains_every_model_on_every_fold(strips, tmp_path):
    tiles = load_tiles(find_pairs(strips, "type2"))
    cfg = SurfaceTrainConfig(**TINY, folds=2, batch_size=4, max_steps=2)
    seen = []
    results = cross_validate(tiles, ["fcn-type2", "segnet"], cfg, tmp_path, progress=False, on_fold=lambda m, s: seen.append((m, s.fold)))
    assert seen == [("fcn-type2", 1), ("fcn-type2", 2), ("segnet", 1), ("segnet", 2)]
    table = tables_markdown({"type2": results})
    assert "| type2 | segnet |" in table and "Subset 2" in table and "Table 7" in table
    assert all(0 <= f.f1 <= 1 and f.step_ms > 0 for r in results for f in r.folds)


def test_cross_validation_skips_folds_already_done(strips, tmp_path):
    tiles = load_tiles(find_pairs(strips, "type2"))
    cfg = SurfaceTrainConfig(**TINY, folds=3, batch_size=4, max_steps=1)
    seen = []
    results = cross_validate(tiles, ["fcn-type2"], cfg, tmp_path, progress=False, on_fold=lambda m, s: seen.append(s.fold), done={"fcn-type2": [1, 3]})
    assert seen == [2] and [f.fold for f in results[0].folds] == [2]
    assert "| type2 | fcn-type2 | - | " in tables_markdown({"type2": results})  # folds 1 and 3 shown as not run here


def test_an_interrupted_surface_run_resumes_to_the_same_model(strips, tmp_path, monkeypatch):
    from railwatch.surface.lightning import SurfaceSegmentationTask

    tiles = load_tiles(find_pairs(strips, "type2"))
    cfg = SurfaceTrainConfig(**TINY, batch_size=6, max_steps=6, val_every_steps=3, lr_schedule="cosine", resume_every_s=0)
    train_idx, val_idx = np.arange(12), np.arange(12, 24)
    whole = fit_surface(tiles, train_idx, val_idx, cfg, tmp_path / "whole", progress=False)

    def power_cut(task):
        if task.current_epoch == 2:
            raise KeyboardInterrupt  # Lightning turns Ctrl-C into SystemExit after its own clean-up

    with monkeypatch.context() as patch:
        patch.setattr(SurfaceSegmentationTask, "on_train_epoch_start", power_cut)
        with pytest.raises(SystemExit):
            fit_surface(tiles, train_idx, val_idx, cfg, tmp_path / "cut", progress=False)
    assert (tmp_path / "cut" / "last.ckpt").is_file()
    resumed = fit_surface(tiles, train_idx, val_idx, cfg.model_copy(update={"resume": True}), tmp_path / "cut", progress=False)
    assert resumed.last_metrics == whole.last_metrics and resumed.metrics == whole.metrics
    a, b = (torch.load(r.checkpoint, weights_only=True)["state_dict"] for r in (whole, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "cut" / "last.ckpt").exists()


def test_cross_validation_resumed_trains_only_the_unfinished_folds(strips, tmp_path, monkeypatch):
    import railwatch.surface.cv as cv

    tiles = load_tiles(find_pairs(strips, "type2"))
    cfg = SurfaceTrainConfig(**TINY, folds=2, batch_size=4, max_steps=1, resume=True)
    first = cross_validate(tiles, ["fcn-type2"], cfg, tmp_path, progress=False)
    (tmp_path / "fcn-type2" / "fold2" / SCORES_FILE).unlink()  # as if cut off during fold 2
    trained = []
    fit = cv.fit_surface

    def counted_fit(tiles, train_idx, val_idx, run_cfg, out, meta, progress):
        trained.append(meta["fold"])
        return fit(tiles, train_idx, val_idx, run_cfg, out, meta, progress)

    monkeypatch.setattr(cv, "fit_surface", counted_fit)
    again = cross_validate(tiles, ["fcn-type2"], cfg, tmp_path, progress=False)
    assert trained == [2] and again[0].folds[0] == first[0].folds[0]  # fold 1 read back, step time and all
    redone, before = again[0].folds[1], first[0].folds[1]
    assert (redone.f1, redone.loss) == (before.f1, before.loss)  # fold 2 trained again, to the same model
    with pytest.raises(ConfigError, match=r"fold1/scores.json was trained with other settings \(max_steps: 1 -> 2\)"):
        cross_validate(tiles, ["fcn-type2"], cfg.model_copy(update={"max_steps": 2}), tmp_path, progress=False)


def test_cosine_schedule_anneals_the_learning_rate_to_its_floor(strips, tmp_path, monkeypatch):
    from railwatch.surface.lightning import SurfaceSegmentationTask

    tiles = load_tiles(find_pairs(strips, "type2"))
    cfg = SurfaceTrainConfig(**(TINY | {"lr": 1e-3}), batch_size=4, max_steps=4, lr_schedule="cosine", lr_min=1e-5)
    seen: list[float] = []
    original = SurfaceSegmentationTask.on_train_batch_end

    def record(task, *args):
        seen.append(task.optimizers().param_groups[0]["lr"])
        original(task, *args)

    monkeypatch.setattr(SurfaceSegmentationTask, "on_train_batch_end", record)
    fit_surface(tiles, np.arange(12), np.arange(12, 24), cfg, tmp_path, progress=False)
    # the rate after each of the 4 steps: 1e-5 + (1e-3 - 1e-5) (1 + cos(pi t / 4)) / 2
    expected = [1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(1, 5)]
    assert seen == pytest.approx(expected) and seen[-1] == pytest.approx(1e-5)
    assert SurfaceTrainConfig().lr_schedule == "constant"  # the paper's constant rate stays the default


def test_backbone_weights_come_from_a_local_vgg_file(tmp_path):
    from torchvision.models import vgg19

    torch.manual_seed(0)
    reference = vgg19(weights=None).state_dict()
    torch.save(reference, tmp_path / "vgg19.pth")
    net = build_surface_model("fcn-type1")
    assert load_backbone_weights(net, "fcn-type1", tmp_path / "vgg19.pth") == 24
    assert torch.equal(net.block3[0].weight, reference["features.10.weight"])
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match=r"bad.pth: not a torchvision vgg19 state dict"):
        load_backbone_weights(net, "fcn-type1", tmp_path / "bad.pth")
    with pytest.raises(InputError, match="backbone weights not found"):
        load_backbone_weights(net, "fcn-type1", tmp_path / "none.pth")


def test_cli_predict_export(trained, strips, tmp_path):
    result, _, _ = trained
    ckpt = str(result.checkpoint)
    folder = strips / "Type-II RSDDs dataset" / "Rail surface images"
    predicted = runner.invoke(app, ["surface", "predict", ckpt, str(folder), "--out", str(tmp_path), "--mm-per-px", "0.5", "--json"])
    assert predicted.exit_code == 0, predicted.output
    record = json.loads((tmp_path / "rail_1_defects.json").read_text())
    assert record["height"] == 1250 and all("position_mm" in d for d in record["defects"])
    assert (tmp_path / "rail_1_overlay.png").is_file() and (tmp_path / "rail_2_mask.png").is_file()
    exported = runner.invoke(app, ["surface", "export", ckpt, "--out", str(tmp_path / "s.onnx")])
    assert exported.exit_code == 0, exported.output
    diff = float(exported.output.split("=")[-1])
    assert diff < 1e-3


def test_cli_refuses_bad_inputs(trained, tmp_path):
    result, _, _ = trained
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    assert "no images" in one_line_error(runner.invoke(app, ["surface", "train", str(tmp_path), "--max-steps", "1"]))
    assert "checkpoint not found" in one_line_error(runner.invoke(app, ["surface", "predict", str(tmp_path / "x.pt"), str(tmp_path)]))
    assert "no images" in one_line_error(runner.invoke(app, ["surface", "predict", str(result.checkpoint), str(tmp_path / "images")]))
    from PIL import Image

    Image.fromarray(np.zeros((60, 55), np.uint8)).save(tmp_path / "short.png")
    error = one_line_error(runner.invoke(app, ["surface", "predict", str(result.checkpoint), str(tmp_path / "short.png")]))
    assert "short.png: 60 rows is shorter than one 100-row tile" in error
    assert "unknown surface model" in one_line_error(runner.invoke(app, ["surface", "cv", str(tmp_path), "--models", "unet"]))
