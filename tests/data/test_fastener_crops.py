"""Generated fastener crops: seeded, the right shapes, and defects that show exactly where their masks say."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from railwatch.cli import app
from railwatch.data.fastener_crops import (
    FASTENER_DEFECTS,
    FastenerCrop,
    generate_fastener_crops,
    render_fastener,
    write_fastener_folder,
)
from railwatch.errors import InputError

# share of the crop a defect's mask may cover: a snapped arm, the washer's footprint, a large object and its shadow
AREA_RANGE = {"broken_clip": (0.01, 0.25), "missing_bolt": (0.03, 0.12), "occlusion": (0.07, 0.4)}


def test_kinds():
    assert FASTENER_DEFECTS == ("broken_clip", "missing_bolt", "occlusion")


@pytest.mark.parametrize("defect", [None, *FASTENER_DEFECTS])
def test_same_seed_same_crop(defect):
    a, b = render_fastener(7, defect), render_fastener(7, defect)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)


def test_different_seeds_differ():
    images = [render_fastener(seed).image.astype(int) for seed in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(images[i] - images[j]).mean() > 3


@pytest.mark.parametrize("defect", [None, *FASTENER_DEFECTS])
def test_shapes_and_dtypes(defect):
    crop = render_fastener(3, defect)
    assert isinstance(crop, FastenerCrop) and crop.defect == defect
    assert crop.image.shape == (128, 128) and crop.image.dtype == np.uint8
    assert crop.mask.shape == (128, 128) and crop.mask.dtype == bool
    assert 40 < crop.image.mean() < 220 and crop.image.std() > 15  # a lit scene, not blank or saturated


def test_other_size():
    crop = render_fastener(1, "occlusion", size=64)
    assert crop.image.shape == crop.mask.shape == (64, 64)
    with pytest.raises(InputError, match="at least 32"):
        render_fastener(1, size=16)


def test_normal_masks_are_empty():
    for seed in range(3):
        assert not render_fastener(seed).mask.any()


def test_normal_crops_alike():
    """Normal crops differ in pose and light but show the same fastener: their mean is far from any one defect."""
    normals = np.stack([render_fastener(seed).image.astype(float) for seed in range(12)])
    assert np.abs(normals - normals.mean(axis=0)).mean() < 30


@pytest.mark.parametrize("defect", FASTENER_DEFECTS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_defect_changes_only_its_mask(defect, seed):
    normal, broken = render_fastener(seed), render_fastener(seed, defect)
    low, high = AREA_RANGE[defect]
    assert low <= broken.mask.mean() <= high
    diff = np.abs(broken.image.astype(int) - normal.image.astype(int))
    inside, outside = diff[broken.mask], diff[~broken.mask]
    assert inside.mean() > 8  # visible
    assert inside.mean() > 20 * (outside.mean() + 0.05)
    assert outside.max() <= 12  # the rest of the scene is the same


def test_broken_clip_removes_bar():
    """Where the bar is missing, the bright sleeper shows through: some masked pixels get much brighter."""
    for seed in range(3):
        normal, broken = render_fastener(seed), render_fastener(seed, "broken_clip")
        brighter = broken.image.astype(int) - normal.image.astype(int)
        assert (brighter[broken.mask] > 40).sum() > 40


def test_missing_bolt_leaves_a_dark_hole_in_the_middle():
    for seed in range(3):
        crop = render_fastener(seed, "missing_bolt")
        rows, cols = np.nonzero(crop.mask)
        assert abs(rows.mean() - 64) < 12 and abs(cols.mean() - 64) < 12
        assert crop.image[crop.mask].min() < 40


def test_unknown_kind():
    with pytest.raises(InputError, match="known kinds: broken_clip, missing_bolt, occlusion"):
        render_fastener(0, "rust")
    with pytest.raises(InputError, match="unknown fastener defect 'rust'"):
        generate_fastener_crops(2, 0, "rust")
    with pytest.raises(InputError, match="known kinds"):
        write_fastener_folder("unused", 1, 1, kinds=["occlusion", "rust"])
    with pytest.raises(InputError, match="seed"):
        render_fastener(-1)


def test_generate_fastener_crops():
    crops = generate_fastener_crops(3, seed=5, defect="missing_bolt")
    assert len(crops) == 3 and all(c.defect == "missing_bolt" and c.mask.any() for c in crops)
    again = generate_fastener_crops(2, seed=5, defect="missing_bolt")
    assert all(np.array_equal(a.image, b.image) for a, b in zip(crops, again))  # crop i does not depend on count
    assert not np.array_equal(crops[0].image, crops[1].image)
    other = generate_fastener_crops(1, seed=6, defect="missing_bolt")
    assert not np.array_equal(crops[0].image, other[0].image)
    assert generate_fastener_crops(0, seed=5) == []


def test_write_fastener_folder(tmp_path):
    calls = []
    counts = write_fastener_folder(
        tmp_path / "set", normal=2, per_kind=1, seed=3, kinds=("occlusion", "broken_clip"), progress=lambda d, t: calls.append((d, t))
    )
    assert counts == {"normal": 2, "occlusion": 1, "broken_clip": 1}
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    root = tmp_path / "set"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == [
        "abnormal/broken_clip/broken_clip_0000.png",
        "abnormal/occlusion/occlusion_0000.png",
        "masks/broken_clip/broken_clip_0000.png",
        "masks/occlusion/occlusion_0000.png",
        "normal/normal_0000.png",
        "normal/normal_0001.png",
    ]
    expected = generate_fastener_crops(2, seed=3)
    assert np.array_equal(np.asarray(Image.open(root / "normal/normal_0001.png")), expected[1].image)
    occlusion = generate_fastener_crops(1, seed=3, defect="occlusion")[0]
    assert np.array_equal(np.asarray(Image.open(root / "abnormal/occlusion/occlusion_0000.png")), occlusion.image)
    mask = np.asarray(Image.open(root / "masks/occlusion/occlusion_0000.png"))
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
    assert np.array_equal(mask == 255, occlusion.mask)


def test_cli_synth_fasteners(tmp_path):
    runner = CliRunner()
    out = tmp_path / "fasteners"
    args = ["data", "synth", "fasteners", "--out", str(out), "--normal", "2", "--per-kind", "1", "--seed", "4"]
    result = runner.invoke(app, [*args, "--kinds", "missing_bolt,occlusion"])
    assert result.exit_code == 0, result.output
    assert "wrote 4 fastener crops" in result.output
    assert len(list((out / "normal").glob("*.png"))) == 2
    assert (out / "abnormal/missing_bolt/missing_bolt_0000.png").is_file()
    assert (out / "masks/occlusion/occlusion_0000.png").is_file()
    assert not (out / "abnormal/broken_clip").exists()

    bad = runner.invoke(app, [*args, "--kinds", "occlusion,rust"])
    assert bad.exit_code == 2
    lines = [line for line in bad.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "known kinds" in lines[0]

    help_text = runner.invoke(app, ["data", "synth", "fasteners", "--help"])
    assert help_text.exit_code == 0 and "masks" in help_text.output
