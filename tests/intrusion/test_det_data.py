"""Detection data: YOLO and VOC readers, letterboxing, augmentation invariants, collation, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from railwatch.camera import Camera
from railwatch.config import OBJECT_TYPES, DetAugmentConfig
from railwatch.data.scenes import write_scene_dataset
from railwatch.errors import InputError
from railwatch.intrusion.det.augment import hsv_jitter, mosaic4, random_affine, random_flip
from railwatch.intrusion.det.data import (
    DetectionDataset,
    DetectionRecord,
    collate_detections,
    letterbox,
    letterbox_boxes,
    read_detection_split,
    read_voc_split,
    read_yolo_split,
    unletterbox_boxes,
)

CAMERA = Camera(width_px=256, height_px=128, focal_px=187.0)
H, W = 128, 160  # network input: the 128x256 scenes are letterboxed with bands above and below
NO_AUGMENT = DetAugmentConfig(mosaic=0, hflip=0, vflip=0, hsv_h=0, hsv_s=0, hsv_v=0, scale=0, translate=0, min_box_px=0)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Eight clear-weather 128x256 scenes: six to train on, two to validate."""
    root = tmp_path_factory.mktemp("scenes")
    write_scene_dataset(root, 8, seed=3, camera=CAMERA, weathers=("clear",), val_fraction=0.25, progress=False)
    return root


@pytest.fixture(scope="module")
def records(scenes):
    return read_yolo_split(scenes, "train", OBJECT_TYPES)


def _image(path, width, height, colour=(90, 120, 60)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), colour).save(path)
    return path


def _yolo_set(root, labels, names=("person", "car"), width=40, height=20):
    """A hand-made YOLO set: one ``width x height`` image per entry of ``labels`` (text, or None for no file)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(yaml.safe_dump({"path": str(root), "train": "images/train", "names": names}))
    (root / "images" / "train").mkdir(parents=True, exist_ok=True)
    for name, text in labels.items():
        _image(root / "images" / "train" / f"{name}.png", width, height)
        if text is not None:
            (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
            (root / "labels" / "train" / f"{name}.txt").write_text(text)
    return root


VOC_XML = """<annotation><filename>{name}.jpg</filename><size><width>50</width><height>40</height></size>
{objects}</annotation>"""
VOC_OBJECT = """<object><name>{cls}</name><difficult>{difficult}</difficult>
<bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox></object>"""


def _voc_set(root, objects, split_list=True):
    """A hand-made VOC set: ``objects`` maps image id to ``[(class, (xmin, ymin, xmax, ymax), difficult)]``."""
    (root / "Annotations").mkdir(parents=True)
    for image_id, objs in objects.items():
        body = "".join(VOC_OBJECT.format(cls=c, box=b, difficult=d) for c, b, d in objs)
        (root / "Annotations" / f"{image_id}.xml").write_text(VOC_XML.format(name=image_id, objects=body))
        _image(root / "JPEGImages" / f"{image_id}.jpg", 50, 40)
    if split_list:
        (root / "ImageSets" / "Main").mkdir(parents=True)
        (root / "ImageSets" / "Main" / "train.txt").write_text("".join(f"{i}\n" for i in objects))
    return root


# ---- readers --------------------------------------------------------------------------------


def test_yolo_records_match_the_label_files(scenes, records):
    assert [r.image_path.stem for r in records] == [f"scene_{i:06d}" for i in range(6)]
    assert sum(len(r.boxes) for r in records) > 0
    for record in records:
        lines = (scenes / "labels" / "train" / f"{record.image_path.stem}.txt").read_text().split("\n")
        lines = [line.split() for line in lines if line.strip()]
        assert record.boxes.shape == (len(lines), 4) and record.boxes.dtype == np.float32
        assert record.class_ids.tolist() == [int(f[0]) for f in lines]
        assert ((record.boxes >= 0) & (record.boxes <= [256, 128, 256, 128])).all()
        assert (record.boxes[:, 2:] > record.boxes[:, :2]).all()
        for box, (_, cx, cy, w, h) in zip(record.boxes, lines):
            x1, y1 = (float(cx) - float(w) / 2) * 256, (float(cy) - float(h) / 2) * 128
            np.testing.assert_allclose(box[:2], [x1, y1], atol=1e-3)
    assert [r.image_path for r in read_detection_split(scenes, "val", OBJECT_TYPES)] == [
        p for p in sorted((scenes / "images" / "val").iterdir())
    ]


def test_yolo_names_as_mapping_with_synonyms_and_images_without_labels(tmp_path):
    labels = {"a": "0 0.5 0.5 0.5 0.5\n\n7 0.25 0.5 0.5 1.0\n", "b": None}
    root = _yolo_set(tmp_path, labels, names={0: "vehicle", 7: "Pedestrian"})
    a, b = read_detection_split(root, "train", OBJECT_TYPES)
    assert a.class_ids.tolist() == [1, 0]  # vehicle -> car, Pedestrian -> person
    np.testing.assert_allclose(a.boxes, [[10, 5, 30, 15], [0, 0, 20, 20]])
    assert b.boxes.shape == (0, 4) and b.class_ids.shape == (0,)


def test_voc_boxes_are_zero_based_and_classes_mapped(tmp_path):
    root = _voc_set(
        tmp_path / "voc",
        {
            "000001": [("pedestrian", (1, 1, 10, 20), 0), ("car", (5, 6, 50, 40), 1)],
            "000002": [("rock", (11, 21, 30, 40), 0)],
        },
    )
    first, second = read_detection_split(root, "train", OBJECT_TYPES)
    assert first.image_path.name == "000001.jpg"
    np.testing.assert_array_equal(first.boxes, [[0, 0, 10, 20], [4, 5, 50, 40]])
    assert first.class_ids.tolist() == [0, 1] and second.class_ids.tolist() == [3]
    np.testing.assert_array_equal(second.boxes, [[10, 20, 30, 40]])
    assert read_voc_split(root, "train", OBJECT_TYPES, skip_difficult=True)[0].class_ids.tolist() == [0]


def test_voc_without_split_lists_reads_everything_as_train(tmp_path):
    root = _voc_set(tmp_path / "voc", {"b": [("person", (1, 1, 5, 5), 0)], "a": []}, split_list=False)
    assert [r.image_path.stem for r in read_voc_split(root, "train", OBJECT_TYPES)] == ["a", "b"]
    with pytest.raises(InputError, match=r"val\.txt: split list not found"):
        read_voc_split(root, "val", OBJECT_TYPES)


# ---- letterbox ------------------------------------------------------------------------------


def test_letterbox_round_trip_of_boxes():
    image = np.random.default_rng(0).integers(0, 256, (50, 100, 3), dtype=np.uint8)
    out, scale, pad = letterbox(image, 64, 64)
    assert out.shape == (64, 64, 3) and scale == pytest.approx(0.64) and pad == (0.0, 16.0)
    assert (out[:16] == 114).all() and (out[-16:] == 114).all() and not (out[16:48] == 114).all()
    boxes = np.array([[0, 0, 100, 50], [12.5, 3.25, 40.75, 33.0]], np.float32)
    moved = letterbox_boxes(boxes, scale, pad)
    np.testing.assert_allclose(moved[0], [0, 16, 64, 48], atol=1e-5)
    np.testing.assert_allclose(unletterbox_boxes(moved, scale, pad), boxes, atol=1e-4)
    same, scale, pad = letterbox(image, 50, 100)
    assert np.array_equal(same, image) and scale == 1 and pad == (0, 0)


# ---- augmentation ---------------------------------------------------------------------------


def test_no_augmentation_gives_the_validation_item(records):
    val, train = DetectionDataset(records, H, W), DetectionDataset(records, H, W, augment=NO_AUGMENT)
    for i in range(len(records)):
        (vi, vt, vm), (ti, tt, tm) = val[i], train[i]
        assert vi.shape == (3, H, W) and vi.dtype == torch.float32 and 0 <= vi.min() and vi.max() <= 1
        assert torch.equal(vi, ti) and torch.equal(vt, tt) and vm == tm
        assert vm["orig_size"] == (128, 256) and vm["scale"] == pytest.approx(W / 256) and vm["pad"] == (0.0, 24.0)
        back = unletterbox_boxes(vt[:, 1:].numpy(), vm["scale"], vm["pad"])
        np.testing.assert_allclose(back, records[i].boxes, atol=1e-4)


def test_horizontal_flip_mirrors_image_and_boxes(records):
    val = DetectionDataset(records, H, W)
    flipped = DetectionDataset(records, H, W, augment=NO_AUGMENT.model_copy(update={"hflip": 1.0}))
    for i in range(len(records)):
        (vi, vt, _), (fi, ft, _) = val[i], flipped[i]
        assert torch.equal(fi, vi.flip(-1))
        assert torch.equal(ft[:, 0], vt[:, 0]) and torch.equal(ft[:, [2, 4]], vt[:, [2, 4]])
        assert torch.allclose(ft[:, 1], W - vt[:, 3]) and torch.allclose(ft[:, 3], W - vt[:, 1])


def test_augmented_boxes_stay_inside_and_large_enough(records):
    cfg = DetAugmentConfig(mosaic=0.5, vflip=0.5, min_box_px=3.0)
    data = DetectionDataset(records, H, W, augment=cfg, seed=1)
    seen = 0
    for epoch in range(3):
        data.set_epoch(epoch)
        for i in range(len(data)):
            image, targets, _ = data[i]
            assert image.shape == (3, H, W) and 0 <= image.min() and image.max() <= 1
            x1, y1, x2, y2 = targets[:, 1:].T
            assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= W).all() and (y2 <= H).all()
            assert (x2 - x1 >= 3).all() and (y2 - y1 >= 3).all()
            assert set(targets[:, 0].tolist()) <= set(range(len(OBJECT_TYPES)))
            seen += len(targets)
    assert seen > 0


def test_mosaic_gathers_boxes_from_several_images(tmp_path):
    # four plain images, each filled by one box of its own class
    recs = [
        DetectionRecord(_image(tmp_path / f"{k}.png", 64 + 32 * k, 96, (60 * k, 80, 200 - 40 * k)),
                        np.array([[0, 0, 64 + 32 * k, 96]], np.float32), np.array([k]))
        for k in range(4)
    ]  # fmt: skip
    data = DetectionDataset(recs, 96, 128, augment=NO_AUGMENT.model_copy(update={"mosaic": 1.0, "min_box_px": 2.0}))
    sources = [set(data[i][1][:, 0].int().tolist()) for i in range(4)]
    assert all(len(s) >= 2 for s in sources), sources
    assert set().union(*sources) == {0, 1, 2, 3}


def test_same_seed_index_and_epoch_give_the_same_item(records):
    cfg = DetAugmentConfig(mosaic=0.5)
    a, b = DetectionDataset(records, H, W, cfg, seed=5), DetectionDataset(records, H, W, cfg, seed=5)
    for i in range(3):
        assert all(torch.equal(x, y) for x, y in zip(a[i][:2], b[i][:2]))
    b.set_epoch(1)
    assert not any(torch.equal(a[i][0], b[i][0]) for i in range(3))
    a.set_epoch(1)
    assert torch.equal(a[2][0], b[2][0])


def test_augmentation_functions_are_pure_and_keep_shapes():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    boxes, ids = np.array([[4, 4, 20, 30]], np.float32), np.array([2])
    before = (image.copy(), boxes.copy())
    jittered = hsv_jitter(image, rng, 0.1, 0.5, 0.5)
    assert jittered.shape == image.shape and jittered.dtype == np.uint8 and not np.array_equal(jittered, image)
    flipped, fboxes = random_flip(image, boxes, rng, 0.0, 1.0)
    assert np.array_equal(flipped, image[::-1]) and fboxes.tolist() == [[4, 2, 20, 28]]
    zoomed, zboxes, zids = random_affine(image, boxes, ids, rng, 16, 24, scale=0.0, translate=0.0)
    assert zoomed.shape == (16, 24, 3) and zids.tolist() == [2]
    assert np.array_equal(zoomed, image[8:24, 12:36])  # zoom 1, no shift: the centre crop
    np.testing.assert_allclose(zboxes, [[0, 0, 8, 16]], atol=1e-5)
    canvas, mboxes, mids = mosaic4([image] * 4, [boxes] * 4, [ids] * 4, rng, 32, 48)
    assert canvas.shape == (64, 96, 3) and len(mboxes) == len(mids) <= 4
    assert np.array_equal(image, before[0]) and np.array_equal(boxes, before[1])


def test_random_affine_moves_boxes_with_the_pixels():
    image = np.zeros((60, 80, 3), np.uint8)
    image[10:30, 20:50] = 255  # a white block whose edges are the box
    box = np.array([[20, 10, 50, 30]], np.float32)
    for seed in range(5):
        out, boxes, _ = random_affine(image, box, np.array([0]), np.random.default_rng(seed), 48, 64, 0.5, 0.2)
        rows, cols = np.nonzero(out[..., 0] >= 128)
        x1, y1, x2, y2 = boxes[0]
        assert abs(cols.min() - x1) <= 1 and abs(cols.max() + 1 - x2) <= 1
        assert abs(rows.min() - y1) <= 1 and abs(rows.max() + 1 - y2) <= 1


def test_collate_stacks_images_and_numbers_targets(records):
    data = DetectionDataset(records, H, W)
    items = [data[i] for i in range(3)]
    images, targets, metas = collate_detections(items)
    assert images.shape == (3, 3, H, W) and len(metas) == 3
    assert targets.shape == (sum(len(t) for _, t, _ in items), 6)
    for b, (_, t, _) in enumerate(items):
        assert torch.equal(targets[targets[:, 0] == b, 1:], t)


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 0.5 0.5 0.2", r"expected 'class cx cy w h' \(5 fields\)"),
        ("5 0.5 0.5 0.2 0.2", "class id 5 out of range"),
        ("0 0.5 half 0.2 0.2", "not a number"),
        ("1 0.95 0.5 0.2 0.2", "box '1 0.95 0.5 0.2 0.2' is not inside"),
    ],
)
def test_bad_yolo_label_lines_name_file_and_line(tmp_path, line, message):
    root = _yolo_set(tmp_path, {"x": f"0 0.5 0.5 0.1 0.1\n{line}\n"})
    with pytest.raises(InputError, match=rf"x\.txt:2: {message}"):
        read_detection_split(root, "train", OBJECT_TYPES)


def test_yolo_class_name_without_match_names_data_yaml(tmp_path):
    root = _yolo_set(tmp_path, {"x": ""}, names=["person", "bicycle"])
    with pytest.raises(InputError, match=r"data\.yaml: class 'bicycle' is none of the detector's classes"):
        read_yolo_split(root, "train", OBJECT_TYPES)


def test_empty_split_folder_and_unknown_layout_are_named(tmp_path):
    root = _yolo_set(tmp_path / "yolo", {"x": ""})
    (root / "images" / "val").mkdir()
    with pytest.raises(InputError, match=r"images/val: no images in folder"):
        read_detection_split(root, "val", OBJECT_TYPES)
    (tmp_path / "other").mkdir()
    with pytest.raises(InputError, match=r"other: neither a YOLO data set \(data\.yaml\) nor Pascal VOC"):
        read_detection_split(tmp_path / "other", "train", OBJECT_TYPES)


def test_bad_voc_files_are_named(tmp_path):
    root = _voc_set(tmp_path / "unknown", {"a": [("bicycle", (1, 1, 5, 5), 0)]})
    with pytest.raises(InputError, match=r"a\.xml: class 'bicycle' is none of the detector's classes"):
        read_detection_split(root, "train", OBJECT_TYPES)
    root = _voc_set(tmp_path / "broken", {"b": [("person", (1, 1, 5, 5), 0)]})
    (root / "Annotations" / "b.xml").write_text("<annotation><object><name>person</name>")
    with pytest.raises(InputError, match=r"b\.xml: not a readable VOC annotation"):
        read_detection_split(root, "train", OBJECT_TYPES)
    no_corners = "<annotation><object><name>person</name><bndbox/></object></annotation>"
    (root / "Annotations" / "b.xml").write_text(no_corners)
    with pytest.raises(InputError, match=r"b\.xml: object bndbox has no number xmin"):
        read_detection_split(root, "train", OBJECT_TYPES)


def test_grey_images_are_refused_when_the_split_is_read(tmp_path):
    root = _yolo_set(tmp_path, {"x": ""})
    Image.new("L", (40, 20)).save(root / "images" / "train" / "x.png")
    with pytest.raises(InputError, match=r"x\.png: expected a 3-channel RGB image, got mode L"):
        read_yolo_split(root, "train", OBJECT_TYPES)
