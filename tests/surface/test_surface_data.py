"""Rail-surface data: the strip generator, RSDDs and folder readers, tiles, normalisation, splits, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from railwatch.data.surface_strips import RAIL_TYPES, render_strip, write_rsdds
from railwatch.errors import InputError
from railwatch.surface.data import (
    Normalisation,
    TileDataset,
    cut_tiles,
    find_pairs,
    holdout_split,
    kfold_splits,
    load_pair,
    load_tiles,
    read_defect_mask,
    rsdds_pairs,
)
from railwatch.surface.metrics import DefectScores, error_locations, snapped_to_cells


@pytest.mark.parametrize("rail_type, shape", [("type1", (1000, 160)), ("type2", (1250, 55))])
def test_strips_have_rsdds_shapes_and_about_one_percent_defects(rail_type, shape):
    fractions = []
    for i in range(4):
        strip = render_strip(np.random.default_rng(i), rail_type)
        assert strip.image.shape == strip.mask.shape == shape and strip.image.dtype == np.uint8
        fractions.append(strip.mask.mean())
        # defects are darker than the rail around them
        assert strip.image[strip.mask].mean() < strip.image[~strip.mask].mean() - 20
    assert 0.008 < np.mean(fractions) < 0.02


def test_strips_are_seeded():
    a, b = (render_strip(np.random.default_rng(7), "type2") for _ in range(2))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.image, render_strip(np.random.default_rng(8), "type2").image)


def test_rsdds_layout_round_trip_with_jpeg_masks_thresholded(tmp_path):
    write_rsdds(tmp_path, "type2", 2, seed=5)
    pairs = rsdds_pairs(tmp_path, "type2")
    assert [p.image.name for p in pairs] == ["rail_1.jpg", "rail_2.jpg"]
    assert pairs[0].image.parent.parent.name == "Type-II RSDDs dataset" and pairs[0].mask.parent.name == "GroundTruth"
    image, mask = load_pair(pairs[0])
    truth = render_strip(np.random.default_rng([5, 1, 1]), "type2").mask
    grey = np.asarray(Image.open(pairs[0].mask))
    assert ((grey > 0) & (grey < 255)).any()  # JPEG left noise in the mask ...
    assert (mask == truth).mean() > 0.999  # ... that the 127 threshold removes
    assert find_pairs(tmp_path, "type2") == pairs


def test_folder_of_image_mask_pairs(tmp_path):
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    strip = render_strip(np.random.default_rng(0), "type1")
    Image.fromarray(strip.image).save(tmp_path / "images" / "a.png")
    Image.fromarray(strip.mask.astype(np.uint8) * 255).save(tmp_path / "masks" / "a.png")
    tiles = load_tiles(find_pairs(tmp_path, "type1"))
    assert tiles.images.shape == (10, 100, 160) and np.array_equal(tiles.masks.reshape(1000, 160), strip.mask)
    assert tiles.sources[3] == ("a.png", 300)


def test_tiles_drop_the_rows_left_over():
    tiles = cut_tiles(np.arange(1250 * 55).reshape(1250, 55), 100)
    assert tiles.shape == (12, 100, 55) and tiles[-1, -1, -1] == 1200 * 55 - 1


def test_normalisation_uses_the_training_tiles_and_replicates_grey():
    images = np.random.default_rng(0).integers(0, 256, (5, 10, 12), dtype=np.uint8)
    norm = Normalisation.fit(images)
    assert norm.mean == pytest.approx(images.mean()) and norm.std == pytest.approx(images.std())
    x = norm.apply(images)
    assert x.shape == (5, 3, 10, 12) and float(x.mean()) == pytest.approx(0, abs=1e-5)
    assert float(x.std(unbiased=False)) == pytest.approx(1, abs=1e-4) and bool((x[:, 0] == x[:, 2]).all())


def test_holdout_and_kfold_splits_are_disjoint_and_cover():
    train, test = holdout_split(100, 0.1, seed=3)
    assert len(test) == 10 and not set(train) & set(test) and len(set(train) | set(test)) == 100
    assert np.array_equal(test, holdout_split(100, 0.1, seed=3)[1])
    folds = kfold_splits(23, 5, seed=1)
    vals = [set(v) for _, v in folds]
    assert sum(len(v) for v in vals) == 23 and set().union(*vals) == set(range(23))
    assert all(not set(t) & set(v) for t, v in folds)


def test_tile_dataset_gives_network_inputs_and_class_maps():
    strip = render_strip(np.random.default_rng(0), "type2")
    tiles = load_tiles_from(strip)
    image, target = TileDataset(tiles, Normalisation.fit(tiles.images), flips=True)[0]
    assert image.shape == (3, 100, 55) and target.shape == (100, 55) and set(target.unique().tolist()) <= {0, 1}


def load_tiles_from(strip):
    from railwatch.surface.data import SurfaceTiles

    images, masks = cut_tiles(strip.image, 100), cut_tiles(strip.mask, 100)
    return SurfaceTiles(images, masks, [("s", 100 * i) for i in range(len(images))])


def test_defect_scores_from_counts():
    s = DefectScores(tp=8, fp=2, tn=88, fn=2)
    assert s.accuracy == pytest.approx(0.96) and s.precision == pytest.approx(0.8) and s.recall == pytest.approx(0.8)
    assert s.f1 == pytest.approx(0.8) and s.iou == pytest.approx(8 / 12)
    assert DefectScores(0, 0, 10, 0).f1 == 1.0


def test_error_locations_find_outline_errors_and_their_row_phase():
    truth = np.zeros((2, 12, 12), bool)
    truth[0, 4:8, 4:8] = True  # one 4x4 coarse cell
    predicted = np.zeros_like(truth)
    predicted[0, 5:9, 4:8] = True  # drawn a row late: row 4 missed, row 8 false, both phase 0
    predicted[0, 0, 11] = True  # far from any outline
    predicted[1, 5, 5] = True  # where tile 0 has a defect: tiles are not neighbours
    found = error_locations(predicted, truth)
    assert (found.false_positives, found.false_negatives, found.in_band) == (6, 4, 8)
    assert found.by_row_phase == [9, 1, 0, 0] and found.by_column_phase == [2, 3, 2, 3]
    assert found.band_share == pytest.approx(0.8)
    with pytest.raises(ValueError, match="one shape"):
        error_locations(predicted[0], truth[0])


def test_snapped_to_cells_draws_each_cell_by_majority():
    truth = np.zeros((1, 9, 3), bool)
    truth[0, 1:3, 0] = True  # half of cell 0: kept whole
    truth[0, 3:5, 1] = True  # a quarter of each of cells 0 and 1: dropped
    truth[0, 5:8, 2] = True  # three quarters of cell 1, and row 8 past the last whole cell, kept as it is
    rows = snapped_to_cells(truth, 4, axis=1)
    assert rows[0, :4, 0].all() and not rows[0, 4:, 0].any()
    assert not rows[0, :, 1].any()
    assert rows[0, 4:8, 2].all() and not rows[0, :4, 2].any() and not rows[0, 8, 2]
    assert (snapped_to_cells(truth.transpose(0, 2, 1), 4, axis=2) == rows.transpose(0, 2, 1)).all()
    assert (snapped_to_cells(truth, 1, axis=1) == truth).all()


# bad inputs ---------------------------------------------------------------------------------


def _pair(tmp_path, image: np.ndarray, mask: np.ndarray):
    for folder, array in (("images", image), ("masks", mask)):
        (tmp_path / folder).mkdir(exist_ok=True)
        Image.fromarray(array).save(tmp_path / folder / "x.png")
    return find_pairs(tmp_path, "type1")


def test_mask_of_another_size_is_refused_naming_the_mask(tmp_path):
    pairs = _pair(tmp_path, np.zeros((200, 160), np.uint8), np.zeros((200, 150), np.uint8))
    with pytest.raises(InputError, match=r"masks/x.png: mask is 150x200 px but its image x.png is 160x200"):
        load_tiles(pairs)


def test_mask_that_is_not_binary_is_refused(tmp_path):
    photo = render_strip(np.random.default_rng(0), "type1").image[:200]
    pairs = _pair(tmp_path, photo, photo)
    with pytest.raises(InputError, match=r"x.png: not a binary mask: \d+% of its pixels"):
        load_tiles(pairs)
    with pytest.raises(InputError, match="not a binary mask"):
        read_defect_mask(pairs[0].mask)


def test_empty_and_missing_folders_are_refused(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(InputError, match=r"images: no images"):
        find_pairs(tmp_path, "type1")
    with pytest.raises(InputError, match="neither an RSDDs folder"):
        find_pairs(tmp_path / "images", "type1")
    with pytest.raises(InputError, match="folder not found"):
        find_pairs(tmp_path / "nothing", "type1")
    (tmp_path / RAIL_TYPES["type1"].folder / "Rail surface images").mkdir(parents=True)
    with pytest.raises(InputError, match="GroundTruth: folder not found"):
        find_pairs(tmp_path, "type1")


def test_image_without_mask_and_short_image_are_refused(tmp_path):
    pairs = _pair(tmp_path, np.zeros((50, 160), np.uint8), np.zeros((50, 160), np.uint8))
    with pytest.raises(InputError, match="50 px high, shorter than one 100-px tile"):
        load_tiles(pairs)
    Image.fromarray(np.zeros((200, 160), np.uint8)).save(tmp_path / "images" / "y.png")
    with pytest.raises(InputError, match=r"y.png: no mask of the same name"):
        find_pairs(tmp_path, "type1")
