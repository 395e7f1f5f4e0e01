"""The scene renderer: deterministic, and its images, masks and truth agree with the camera model."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from railwatch.camera import Camera
from railwatch.cli import app
from railwatch.data.rail_masks import SceneObject, Track
from railwatch.data.scene_render import RAIL_HEAD_M
from railwatch.data.scenes import (
    SEMANTIC_CLASSES,
    WEATHERS,
    SceneSpec,
    SceneTrack,
    check_weathers,
    make_scene,
    random_scene_spec,
    render_scene,
    scene_truth,
    write_scene_dataset,
    yolo_lines,
)
from railwatch.errors import InputError

SMALL = Camera(width_px=256, height_px=128, focal_px=187.0)
MEDIUM = Camera(width_px=512, height_px=256, focal_px=374.0)  # rails at least 2 px wide in the near half


@pytest.fixture(scope="module")
def samples():
    return [make_scene(seed, SMALL) for seed in range(8)]


def test_same_seed_same_scene():
    a, b, c = make_scene(7, SMALL), make_scene(7, SMALL), make_scene(8, SMALL)
    assert a.spec == b.spec
    for name in ("image", "rail_mask", "track_mask", "semantic"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert not np.array_equal(a.image, c.image)
    again = render_scene(a.spec, seed=3)
    assert np.array_equal(again.image, render_scene(a.spec, seed=3).image)
    assert not np.array_equal(again.image, render_scene(a.spec, seed=4).image)


def test_scene_independent_of_data_set_size(tmp_path):
    small = write_scene_dataset(tmp_path / "five", 5, seed=3, camera=SMALL, progress=False).parent
    large = write_scene_dataset(tmp_path / "ten", 10, seed=3, camera=SMALL, progress=False).parent
    for folder in ("images", "masks/rail", "masks/semantic"):
        path = f"{folder}/train/scene_000003.png"
        assert (small / path).read_bytes() == (large / path).read_bytes(), path
    assert (small / "labels/train/scene_000003.txt").read_bytes() == (large / "labels/train/scene_000003.txt").read_bytes()
    meta = [json.loads((root / "meta/train/scene_000003.json").read_text()) for root in (small, large)]
    assert meta[0] == meta[1]


def test_boxes_inside_image_and_yolo_normalised(samples):
    for sample in samples:
        cam = sample.spec.camera
        for obj in sample.objects:
            u0, v0, u1, v1 = obj.box
            assert -0.5 <= u0 <= u1 <= cam.width_px - 0.5 and -0.5 <= v0 <= v1 <= cam.height_px - 0.5
        for line in yolo_lines(sample):
            cls, *values = line.split()
            assert 0 <= int(cls) < 4 and len(values) == 4
            cx, cy, w, h = map(float, values)
            assert all(0 <= value <= 1 for value in (cx, cy, w, h))
            assert cx - w / 2 >= -1e-6 and cx + w / 2 <= 1 + 1e-6 and cy - h / 2 >= -1e-6 and cy + h / 2 <= 1 + 1e-6


def test_rail_mask_matches_rail_geometry():
    for seed in range(6):
        sample = make_scene(seed, MEDIUM)
        cam = MEDIUM
        covered = sample.semantic >= 3
        near_half = (math.ceil(cam.horizon_row) + cam.height_px) // 2
        for rail in sample.rails:
            for row, col in zip(rail.rows, rail.cols):
                c = int(round(col))
                if row >= near_half and not covered[row, max(c - 1, 0) : c + 2].any():
                    assert sample.rail_mask[row, c], (seed, rail.track, rail.side, row, col)
        rows, cols = np.nonzero(sample.rail_mask)
        _, z = cam.ground_point(cam.cx, rows)
        half_head = cam.focal_px * RAIL_HEAD_M / 2 / cam.depth(z)
        # a rail whose centre lies just outside the image has no truth there
        inside = (cols > half_head + 1) & (cols < cam.width_px - 1 - half_head - 1)
        gaps = np.full(rows.shape, np.inf)
        for rail in sample.rails:
            if rail.rows.size >= 2:
                gaps = np.fmin(gaps, np.abs(cols - rail.x_at(rows)))
        assert np.all(gaps[inside] <= half_head[inside] * 1.05 + 1), seed


def test_json_object_truth_agrees_with_camera(samples):
    checked = 0
    for sample in samples:
        truth = json.loads(json.dumps(scene_truth(sample)))
        cam = Camera(**truth["camera"])
        ego = sample.spec.tracks[truth["ego_index"]]
        for obj in truth["objects"]:
            d, offset = obj["distance_m"], obj["offset_mm"] / 1000
            u, v = cam.project(ego.centre_x(d) + offset, d)
            assert float(u) == pytest.approx(obj["foot_u"], rel=1e-6)
            assert float(v) == pytest.approx(obj["foot_v"], rel=1e-6)
            x, z = cam.ground_point(obj["foot_u"], obj["foot_v"])
            assert float(z) == pytest.approx(d, rel=1e-6)
            assert float(x - ego.centre_x(float(z))) == pytest.approx(offset, rel=1e-6, abs=1e-6)
            assert obj["depth_m"] == pytest.approx(float(cam.depth(d)), rel=1e-9)
            assert SEMANTIC_CLASSES[3 + obj["class_id"]] == obj["class"]
            checked += 1
    assert checked > 0


def test_semantic_mask_consistent(samples):
    for sample in samples:
        objects = sample.semantic >= 3
        assert sample.semantic.max() < len(SEMANTIC_CLASSES)
        assert np.array_equal(sample.semantic == 2, sample.rail_mask)
        assert np.array_equal(sample.semantic == 1, sample.track_mask & ~sample.rail_mask)
        assert not (sample.rail_mask & ~sample.track_mask & ~objects).any()
        assert not ((sample.rail_mask | sample.track_mask) & objects).any()
    assert any(sample.rail_mask.any() for sample in samples)
    assert any((sample.semantic >= 3).any() for sample in samples)


def test_every_weather_renders_and_night_is_darker():
    spec = random_scene_spec(np.random.default_rng(2), SMALL)
    means = {}
    for weather in WEATHERS:
        image = render_scene(replace(spec, weather=weather), seed=1).image
        assert image.shape == (128, 256, 3) and image.dtype == np.uint8
        assert image.astype(float).std() > 3, weather
        means[weather] = image.mean()
    assert means["night"] < 0.5 * means["clear"]


def test_object_hides_rails_and_bed():
    spec = SceneSpec(camera=SMALL, objects=(SceneObject("car", 0.0, 12.0),), max_distance_m=100)
    sample = render_scene(spec)
    car = sample.semantic == 4
    assert car.any() and not (sample.rail_mask & car).any() and not (sample.track_mask & car).any()
    u0, v0, u1, v1 = sample.objects[0].box
    rows, cols = np.nonzero(car)
    assert u0 - 1 <= cols.min() and cols.max() <= u1 + 1 and v0 - 1 <= rows.min() and rows.max() <= v1 + 1


def test_scene_track_geometry():
    circle, reference = SceneTrack(offset_m=0.3, radius_m=-600.0), Track(offset_m=0.3, radius_m=-600.0)
    z = np.linspace(0, 150, 31)
    np.testing.assert_allclose(circle.centre_x(z), reference.centre_x(z), atol=2e-4)
    np.testing.assert_allclose(circle.heading(z), reference.heading(z), atol=1e-5)
    spiral = SceneTrack(radius_m=500.0, curve_start_m=20.0, transition_m=60.0)
    assert float(spiral.heading(20.0)) == pytest.approx(0.0, abs=1e-9)
    assert float(spiral.heading(spiral._profile[0][np.searchsorted(spiral._profile[3], 80.0)])) == pytest.approx(
        60.0 / (2 * 500.0), rel=1e-3
    )
    branch = SceneTrack(radius_m=300.0, curve_length_m=30.0, branch_of=0, branch_start_m=25.0, parent=circle)
    near = np.array([0.0, 10.0, 25.0])
    np.testing.assert_allclose(branch.centre_x(near), circle.centre_x(near), atol=1e-9)
    assert float(branch.centre_x(100.0) - circle.centre_x(100.0)) > 5.0
    assert float(branch.arc_length(100.0)) > 100.0


def test_write_scene_dataset_layout(tmp_path):
    data_yaml = write_scene_dataset(
        tmp_path / "set", 4, seed=1, camera=SMALL, weathers="fog,night", val_fraction=0.25, image_format="jpg"
    )
    root = data_yaml.parent
    data = yaml.safe_load(data_yaml.read_text())
    assert data["path"] == str(root) and data["nc"] == 4 and data["names"] == ["person", "car", "animal", "stone"]
    assert data["train"] == "images/train" and data["val"] == "images/val" and data["weathers"] == ["fog", "night"]
    assert data["semantic_classes"] == list(SEMANTIC_CLASSES) and data["camera"]["width_px"] == 256
    splits = {"train": [0, 1, 2], "val": [3]}
    for split, indices in splits.items():
        assert sorted(p.name for p in (root / "images" / split).iterdir()) == [f"scene_{i:06d}.jpg" for i in indices]
        for i in indices:
            name = f"scene_{i:06d}"
            for line in (root / "labels" / split / f"{name}.txt").read_text().splitlines():
                assert len(line.split()) == 5 and 0 <= int(line.split()[0]) < 4
            for kind in ("rail", "track"):
                mask = np.asarray(Image.open(root / "masks" / kind / split / f"{name}.png"))
                assert mask.shape == (128, 256) and set(np.unique(mask)) <= {0, 255}
            semantic = Image.open(root / "masks" / "semantic" / split / f"{name}.png")
            assert semantic.mode == "L" and np.asarray(semantic).max() < len(SEMANTIC_CLASSES)
            meta = json.loads((root / "meta" / split / f"{name}.json").read_text())
            assert meta["index"] == i and meta["weather"] in ("fog", "night")
            assert len(meta["rails"]) == 2 * len(meta["tracks"])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda out: write_scene_dataset(out, 0, progress=False), "count must be at least 1"),
        (lambda out: write_scene_dataset(out, 2, val_fraction=1.5, progress=False), "val fraction must be in [0, 1]"),
        (lambda out: write_scene_dataset(out, 2, weathers=["snow"], progress=False), "unknown weather 'snow'"),
        (lambda out: write_scene_dataset(out, 2, image_format="gif", progress=False), "unknown image format 'gif'"),
        (lambda out: SceneSpec(weather="hail"), "unknown weather 'hail'"),
        (lambda out: SceneSpec(objects=(SceneObject("dog", 0, 10),)), "unknown object type 'dog'"),
        (lambda out: check_weathers(""), "no weather given"),
    ],
)
def test_bad_inputs(tmp_path, call, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        call(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_scenes(tmp_path):
    runner = CliRunner()
    args = ["data", "synth", "scenes", "--out", str(tmp_path / "set"), "-n", "3", "--seed", "2"]
    args += ["--width", "256", "--height", "128", "--focal-px", "187", "--weather", "clear,rain"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 3 images (3 train, 0 val)" in result.output and "boxes" in result.output
    assert yaml.safe_load((tmp_path / "set" / "data.yaml").read_text())["weathers"] == ["clear", "rain"]
    for bad, message in (
        (["--weather", "clear,snow"], "unknown weather 'snow'"),
        (["-n", "0"], "count must be at least 1"),
        (["--val-fraction", "1.5"], "val fraction must be in [0, 1]"),
        (["--format", "bmp"], "unknown image format 'bmp'"),
    ):
        bad_result = runner.invoke(app, ["data", "synth", "scenes", "--out", str(tmp_path / "bad"), *bad])
        assert bad_result.exit_code == 2, bad_result.output
        lines = [line for line in bad_result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
