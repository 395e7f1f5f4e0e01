"""Fastener data: padding and resizing, crops from YOLO and VOC annotations, crop folders, MNIST, splits, augmentation."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from railwatch.errors import InputError
from railwatch.fasteners.cropping import crop_boxes, crops_from_annotations
from railwatch.fasteners.data import (
    IMAGE_SIZE,
    CropDataset,
    CropSet,
    augment_batch,
    read_crop_folder,
    split_generated,
    square_resize,
)
from railwatch.fasteners.mnist import disorder_digit, erase_digit_part, mnist_protocol, read_mnist

MNIST = Path(__file__).resolve().parents[3] / "shared/data/mnist"


def _track(path: Path, width: int = 80, height: int = 40) -> np.ndarray:
    """A grey track image with a bright 20x10 block at x 10-30, y 5-15 and a mid-grey 10x20 one at x 50-60, y 10-30."""
    image = np.zeros((height, width), np.uint8)
    image[5:15, 10:30] = 200
    image[10:30, 50:60] = 100
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).convert("RGB").save(path)
    return image


def _pool(n: int, label: int, kind: str | list[str], size: int = 8) -> CropSet:
    kinds = [kind] * n if isinstance(kind, str) else kind
    images = np.arange(n, dtype=np.uint8)[:, None, None] * np.ones((1, size, size), np.uint8)
    return CropSet(images, np.full(n, label), tuple(kinds), tuple(f"{kind}#{i}" for i, kind in enumerate(kinds)))


# ---------------------------------------------------------------------------------------------
# square_resize and crop_boxes


def test_square_resize_pads_the_short_side_with_zeros_and_keeps_the_aspect():
    wide = np.full((20, 40), 255, np.uint8)  # 2:1 -> a 40x40 square with 10 black rows above and below
    out = square_resize(wide, size=80, resample="bilinear")
    assert out.shape == (80, 80) and out.dtype == np.uint8
    rows = np.flatnonzero(out.max(axis=1) > 0)
    assert rows[0] >= 19 and rows[-1] <= 60 and 38 <= len(rows) <= 42  # content 40 px high, centred
    assert (out[:18] == 0).all() and (out[62:] == 0).all() and (out[30:50] == 255).all()
    tall = square_resize(np.full((40, 20), 255, np.uint8), size=80)
    assert np.array_equal(tall, out.T)  # the same padding across the other axis


def test_square_resize_greys_colour_by_luma_and_leaves_a_square_of_the_right_size_alone():
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[..., 1] = 200  # pure green: luma 0.587 * 200
    assert square_resize(rgb, size=10)[0, 0] == round(0.587 * 200)
    rgba = np.concatenate([rgb, np.zeros((10, 10, 1), np.uint8)], axis=2)
    assert np.array_equal(square_resize(rgba, size=10), square_resize(rgb, size=10))
    grey = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    assert np.array_equal(square_resize(grey, size=16), grey)
    assert square_resize(np.zeros((28, 28), np.uint8), resample="bicubic").shape == (IMAGE_SIZE, IMAGE_SIZE)
    with pytest.raises(InputError, match="unknown resampling"):
        square_resize(grey, resample="lanczos7")


def test_crop_boxes_cuts_clips_and_pads_each_box(tmp_path):
    image = _track(tmp_path / "t.png")
    a, b, c = crop_boxes(image, np.array([[10, 5, 30, 15], [50, 10, 60, 30], [70, 30, 200, 90]]), size=40)
    assert a.shape == b.shape == (40, 40)
    assert (a[12:28] == 200).all() and (a[:9] == 0).all() and (a[31:] == 0).all()  # wide box: bands above and below
    assert (b[:, 12:28] == 100).all() and (b[:, :9] == 0).all() and (b[:, 31:] == 0).all()  # tall box: left and right
    assert c.shape == (40, 40)  # clipped to 10x10 px of the image
    with_margin = crop_boxes(image, np.array([[10, 5, 30, 15]]), size=40, margin=0.5)[0]
    assert (with_margin == 0).mean() > (a == 0).mean()  # the margin brings in the dark surroundings
    assert crop_boxes(image, np.zeros((0, 4))) == []
    with pytest.raises(InputError, match="box 0 .*empty after clipping"):
        crop_boxes(image, np.array([[100, 0, 120, 10]]))


# ---------------------------------------------------------------------------------------------
# crops_from_annotations


def test_crops_from_a_yolo_layout_with_names_and_a_class_filter(tmp_path):
    root = tmp_path / "yolo"
    _track(root / "images" / "train" / "a.jpg")
    _track(root / "images" / "train" / "b.png")  # no label file: no boxes
    (root / "labels" / "train").mkdir(parents=True)
    # a: the bright block (class 0) and the mid-grey block (class 1); normalised cx cy w h on 80x40
    (root / "labels" / "train" / "a.txt").write_text("0 0.25 0.25 0.25 0.25\n\n1 0.6875 0.5 0.125 0.5 0.93\n")
    (root / "data.yaml").write_text(yaml.safe_dump({"names": ["fastener", "broken_clip"]}))
    calls = []
    written = crops_from_annotations(root, tmp_path / "out", size=32, progress=lambda done, total: calls.append((done, total)))
    assert [p.name for p in written] == ["a_0.png", "a_1.png"] and calls == [(1, 1)]  # b has no annotation
    first = np.asarray(Image.open(written[0]))
    assert first.shape == (32, 32) and first.dtype == np.uint8 and first.max() > 190
    assert not list((tmp_path / "out").glob(".tmp-*"))
    only = crops_from_annotations(root, tmp_path / "only", classes=["Broken_Clip"], size=32)
    assert [p.name for p in only] == ["a_1.png"]
    with pytest.raises(InputError, match="no box of class"):
        crops_from_annotations(root, tmp_path / "none", classes=["bolt"])


def test_crops_from_yolo_labels_beside_the_images_without_names(tmp_path):
    root = tmp_path / "flat"
    _track(root / "x.png")
    (root / "x.txt").write_text("3 0.25 0.25 0.25 0.25\n")
    out = root / "crops"  # inside root: its crops are not taken for track images on the second run
    assert [p.name for p in crops_from_annotations(root, out, classes=["3"])] == ["x_0.png"]
    assert [p.name for p in crops_from_annotations(root, out)] == ["x_0.png"]


def _voc_xml(filename: str, objects: list[tuple[str, tuple[int, int, int, int]]]) -> str:
    body = "".join(
        f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for name, (x1, y1, x2, y2) in objects
    )
    return f"<annotation><filename>{filename}</filename>{body}</annotation>"


def test_crops_from_a_voc_layout_and_from_xml_beside_images(tmp_path):
    root = tmp_path / "voc"
    image = _track(root / "JPEGImages" / "t1.png")
    (root / "Annotations").mkdir()
    # VOC corners are 1-based and inclusive: pixels 10..29 x 5..14 are xmin 11, xmax 30
    objects = [("normal", (11, 6, 30, 15)), ("missing_bolt", (51, 11, 60, 30))]
    (root / "Annotations" / "t1.xml").write_text(_voc_xml("t1.png", objects))
    written = crops_from_annotations(root, tmp_path / "out", size=40)
    assert [p.name for p in written] == ["t1_0.png", "t1_1.png"]
    assert np.array_equal(np.asarray(Image.open(written[0])), crop_boxes(image, np.array([[10, 5, 30, 15]]), size=40)[0])
    beside = tmp_path / "beside"
    _track(beside / "t2.jpg")
    (beside / "t2.xml").write_text(_voc_xml("t2.jpg", [("missing_bolt", (51, 11, 60, 30))]))
    assert [p.name for p in crops_from_annotations(beside, tmp_path / "out2", classes=["missing_bolt"])] == ["t2_0.png"]


def test_crops_from_annotations_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="folder not found"):
        crops_from_annotations(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images in folder"):
        crops_from_annotations(tmp_path / "empty", tmp_path / "out")
    _track(tmp_path / "bare" / "a.png")
    with pytest.raises(InputError, match="no annotations found"):
        crops_from_annotations(tmp_path / "bare", tmp_path / "out")
    root = tmp_path / "bad"
    _track(root / "a.png")
    for text, message in [
        ("0 0.5 0.5 0.2\n", r"a\.txt:1: expected 'class cx cy w h'"),
        ("0 0.5 0.5 0.2 0.2\nx 0.5 0.5 0.2 0.2\n", r"a\.txt:2: not a number"),
        ("0 1.5 1.5 0.2 0.2\n", r"a\.txt: box 0 .*empty after clipping"),
    ]:
        (root / "a.txt").write_text(text)
        with pytest.raises(InputError, match=message) as err:
            crops_from_annotations(root, tmp_path / "out")
        assert "\n" not in str(err.value) and str(root / "a.txt") in str(err.value)
    (root / "a.txt").unlink()
    (root / "a.xml").write_text("<annotation><object>")
    with pytest.raises(InputError, match=r"a\.xml: not a readable VOC annotation"):
        crops_from_annotations(root, tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# read_crop_folder


def _crop_folder(root: Path) -> None:
    for rel, value, shape in [
        ("normal/n1.png", 10, (128, 128)),
        ("normal/n0.jpg", 20, (64, 32)),  # not square: padded and resized
        ("abnormal/broken_clip/b0.png", 30, (128, 128)),
        ("abnormal/missing_bolt/m0.bmp", 40, (128, 128)),
        ("abnormal/loose.png", 50, (128, 128)),
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full(shape, value, np.uint8)).save(root / rel)
    (root / "normal" / "notes.txt").write_text("not an image")


def test_read_crop_folder_reads_normal_and_anomaly_kinds_in_sorted_order(tmp_path):
    _crop_folder(tmp_path)
    crops = read_crop_folder(tmp_path)
    assert crops.images.shape == (5, 128, 128) and crops.images.dtype == np.uint8 and crops.labels.dtype == np.int64
    assert [Path(s).name for s in crops.sources] == ["n0.jpg", "n1.png", "loose.png", "b0.png", "m0.bmp"]
    assert crops.kinds == ("normal", "normal", "abnormal", "broken_clip", "missing_bolt")
    assert crops.labels.tolist() == [0, 0, 1, 1, 1] and crops.has_anomalies and not crops.normal().has_anomalies
    assert (crops.images[0][:, :30] == 0).all() and abs(int(crops.images[0][64, 64]) - 20) <= 2  # padded left and right
    assert len(crops.subset([4, 0])) == 2 and crops.subset([4, 0]).kinds == ("missing_bolt", "normal")
    both = crops.concat(crops.normal())
    assert len(both) == 7 and both.sources[5:] == crops.sources[:2]


def test_read_crop_folder_errors(tmp_path):
    with pytest.raises(InputError, match="folder not found"):
        read_crop_folder(tmp_path / "missing")
    with pytest.raises(InputError, match="empty folder"):
        read_crop_folder(tmp_path)
    (tmp_path / "abnormal" / "broken_clip").mkdir(parents=True)
    Image.fromarray(np.zeros((128, 128), np.uint8)).save(tmp_path / "abnormal" / "broken_clip" / "b.png")
    with pytest.raises(InputError, match="no normal images"):
        read_crop_folder(tmp_path)
    (tmp_path / "normal").mkdir()
    with pytest.raises(InputError, match="no normal images"):
        read_crop_folder(tmp_path)
    (tmp_path / "normal" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(InputError, match=r"broken\.png: not a readable image") as err:
        read_crop_folder(tmp_path)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# MNIST


def _idx(path: Path, magic: int, shape: tuple[int, ...], data: bytes) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in shape)
    path.write_bytes(gzip.compress(header + data))


def test_read_mnist_reads_tiny_idx_files_and_refuses_bad_ones(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28)
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", 2051, (3, 28, 28), images.tobytes())
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2049, (3,), bytes([7, 0, 9]))
    x, y = read_mnist(tmp_path)
    assert np.array_equal(x, images) and y.tolist() == [7, 0, 9] and y.dtype == np.int64
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2051, (3,), bytes([7, 0, 9]))
    with pytest.raises(InputError, match=r"labels-idx1-ubyte\.gz: wrong magic number"):
        read_mnist(tmp_path)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2049, (4,), bytes([7, 0, 9]))
    with pytest.raises(InputError, match=r"labels-idx1-ubyte\.gz: truncated"):
        read_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0\0\x08\x01\0\0\0\x03abc")[:-6])
    with pytest.raises(InputError, match=r"labels-idx1-ubyte\.gz: truncated gzip"):
        read_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(InputError, match="file not found"):
        read_mnist(tmp_path)


@pytest.fixture(scope="module")
def mnist_splits():
    if not MNIST.is_dir():
        pytest.skip(f"{MNIST}: MNIST test split not present")
    return mnist_protocol(MNIST, seed=0), mnist_protocol(MNIST, seed=0), mnist_protocol(MNIST, seed=1)


def test_mnist_protocol_matches_section_3_1_1(mnist_splits):
    splits, again, other = mnist_splits
    counts = {name: np.bincount(getattr(splits, name).labels, minlength=2).tolist() for name in ("train", "val", "test")}
    assert counts == {"train": [1200, 0], "val": [600, 40], "test": [200, 60]}
    assert not splits.train.has_anomalies and set(splits.train.kinds) == {"normal"}
    assert {k: splits.test.kinds.count(k) for k in ("digit-0", "disorder", "missing")} == {"digit-0": 20, "disorder": 20, "missing": 20}
    assert splits.val.images.shape == (640, 128, 128) and splits.val.images.dtype == np.uint8
    sources = [set(getattr(splits, name).sources) for name in ("train", "val", "test")]
    assert sum(map(len, sources)) == 2100 and len(set.union(*sources)) == 2100  # no overlap
    digits = {s.split("/")[0] for s in set.union(*sources)}
    assert len(digits) == 2100  # a made anomaly starts from a digit used nowhere else
    assert all(s.startswith("mnist-t10k#") for s in sources[0])
    assert again.test.sources == splits.test.sources and np.array_equal(again.test.images, splits.test.images)
    assert other.test.sources != splits.test.sources


def _strokes(rng: np.random.Generator) -> np.ndarray:
    """A 28 x 28 "digit": a few thick random strokes, MNIST-like grey values."""
    image = np.zeros((28, 28), np.uint8)
    for _ in range(3):
        y, x = rng.integers(6, 22, 2)
        dy, dx = rng.integers(-1, 2, 2)
        for t in range(8):
            yy, xx = np.clip([y + t * dy, x + t * dx], 1, 26)
            image[yy - 1 : yy + 2, xx - 1 : xx + 2] = 255
    return image


def test_disorder_swaps_two_parts_and_erase_only_blanks_one():
    rng = np.random.default_rng(0)
    for _ in range(20):
        digit = _strokes(rng)
        ink = float(digit.sum())
        disordered = disorder_digit(digit, rng)
        assert np.array_equal(np.sort(disordered, axis=None), np.sort(digit, axis=None))  # pixels only move
        changed = np.argwhere(disordered != digit)
        moved = np.clip(digit.astype(float) - disordered, 0, None).sum() / ink
        blocks = {(y // 7, x // 7) for y, x in changed}
        assert len(blocks) <= 2 and 0 < moved <= 0.6 + 1e-9  # two 7 x 7 blocks of a 4 x 4 grid trade places
        erased = erase_digit_part(digit, rng)
        assert (erased <= digit).all() and not np.array_equal(erased, digit)  # only set to black
        assert 0 < 1 - erased.sum() / ink <= 0.6 + 1e-9
    assert np.array_equal(disorder_digit(digit, np.random.default_rng(5)), disorder_digit(digit, np.random.default_rng(5)))


def test_mnist_protocol_makes_figure_7_anomalies_from_unused_digits(tmp_path):
    rng = np.random.default_rng(1)
    n = 2300  # 230 zeros; 2070 other digits: 2000 normal and 70 spare for the made anomalies
    images = np.stack([_strokes(rng) for _ in range(n)])
    labels = bytes(i % 10 for i in range(n))
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", 2051, (n, 28, 28), images.tobytes())
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2049, (n,), labels)
    splits = mnist_protocol(tmp_path, seed=0, size=32)
    assert {k: splits.val.kinds.count(k) for k in ("normal", "digit-0", "disorder", "missing")} == {
        "normal": 600, "digit-0": 14, "disorder": 13, "missing": 13}  # fmt: skip
    assert {k: splits.test.kinds.count(k) for k in ("normal", "digit-0", "disorder", "missing")} == {
        "normal": 200, "digit-0": 20, "disorder": 20, "missing": 20}  # fmt: skip
    normal_digits = {s for part in (splits.train, splits.val, splits.test) for s, k in zip(part.sources, part.kinds) if k == "normal"}
    made = [(s, k) for s, k in zip(splits.test.sources, splits.test.kinds) if k in ("disorder", "missing")]
    assert all(s.endswith("/" + k) and s.split("/")[0] not in normal_digits for s, k in made)
    assert all(int(s.split("#")[1].split("/")[0]) % 10 != 0 for s, _ in made)  # made from digits 1-9
    zeros_only = mnist_protocol(tmp_path, seed=0, size=32, anomalies=("digit",))
    assert set(zeros_only.test.kinds) == {"normal", "digit-0"} and zeros_only.test.labels.sum() == 60
    assert zeros_only.train.sources == splits.train.sources  # the normal draw does not depend on the anomalies
    with pytest.raises(InputError, match="anomaly kinds must be some of"):
        mnist_protocol(tmp_path, anomalies=("rotated",))


# ---------------------------------------------------------------------------------------------
# split_generated


def test_split_generated_follows_table_4_per_kind():
    kinds = ["broken_clip"] * 37 + ["missing_bolt"] * 30 + ["occlusion"] * 33
    splits = split_generated(_pool(2100, 0, "normal"), _pool(100, 1, kinds), seed=3)
    assert [len(splits.train), len(splits.val), len(splits.test)] == [1200, 640, 260]
    assert not splits.train.has_anomalies
    val_kinds = {k: splits.val.kinds.count(k) for k in ("normal", "broken_clip", "missing_bolt", "occlusion")}
    test_kinds = {k: splits.test.kinds.count(k) for k in ("normal", "broken_clip", "missing_bolt", "occlusion")}
    assert val_kinds == {"normal": 600, "broken_clip": 15, "missing_bolt": 12, "occlusion": 13}
    assert test_kinds == {"normal": 200, "broken_clip": 22, "missing_bolt": 18, "occlusion": 20}
    used = splits.train.sources + splits.val.sources + splits.test.sources
    assert len(set(used)) == len(used) == 2100
    assert split_generated(_pool(2100, 0, "normal"), _pool(100, 1, kinds), seed=3).val.sources == splits.val.sources
    small = split_generated(_pool(10, 0, "normal"), _pool(5, 1, "x"), train=4, val_normal=3, test_normal=3)
    assert [len(small.train), small.val.labels.sum(), small.test.labels.sum()] == [4, 2, 3]
    with pytest.raises(InputError, match="too few"):
        split_generated(_pool(10, 0, "normal"), _pool(5, 1, "x"))


# ---------------------------------------------------------------------------------------------
# augmentation and the data set


def test_augment_batch_flips_and_brightens_within_range_and_repeats():
    ramp = torch.linspace(0.1, 0.5, 8).repeat(64, 1, 8, 1)  # (64, 1, 8, 8), brighter to the right
    out = augment_batch(ramp, torch.Generator().manual_seed(0))
    flipped = out[:, 0, 0, 0] > out[:, 0, 0, -1]
    assert 10 < int(flipped.sum()) < 54  # about half are mirrored
    ratio = out.sum(dim=(1, 2, 3)) / ramp.sum(dim=(1, 2, 3))
    assert ratio.min() >= 0.8 - 1e-5 and ratio.max() <= 1.2 + 1e-5 and ratio.max() - ratio.min() > 0.2
    assert torch.equal(out, augment_batch(ramp, torch.Generator().manual_seed(0)))
    assert not torch.equal(out, augment_batch(ramp, torch.Generator().manual_seed(1)))
    bright = augment_batch(torch.full((4, 1, 2, 2), 0.95), torch.Generator().manual_seed(0), flip=False)
    assert bright.max() <= 1.0 and bright.min() >= 0.0
    same = augment_batch(ramp, torch.Generator().manual_seed(0), brightness=0.0, flip=False)
    assert torch.equal(same, ramp)


def test_crop_dataset_items_are_unit_range_tensors_and_augmentation_repeats_per_epoch():
    pixels = np.random.default_rng(0).integers(0, 256, (3, 16, 16), dtype=np.uint8)
    crops = CropSet(pixels, np.array([0, 1, 0]), ("normal", "x", "normal"), ("a", "b", "c"))
    image, label = CropDataset(crops)[1]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32 and isinstance(label, int) and label == 1
    assert torch.allclose(image[0], torch.from_numpy(crops.images[1]).float() / 255)
    data = CropDataset(crops, augment=True, seed=5)
    first = [data[i][0] for i in range(3)]
    assert all(0 <= x.min() and x.max() <= 1 for x in first)
    assert all(torch.equal(a, data[i][0]) for i, a in enumerate(first))
    data.epoch = 1
    assert any(not torch.equal(a, data[i][0]) for i, a in enumerate(first))
    loader = torch.utils.data.DataLoader(data, batch_size=3)
    images, labels = next(iter(loader))
    assert images.shape == (3, 1, 16, 16) and labels.tolist() == [0, 1, 0]


def test_crop_command_writes_square_crops(tmp_path):
    from typer.testing import CliRunner

    from railwatch.cli import app

    root = tmp_path / "track"
    _track(root / "images" / "t1.png")
    (root / "labels").mkdir()
    (root / "labels" / "t1.txt").write_text("0 0.25 0.5 0.2 0.4\n1 0.75 0.5 0.2 0.4\n")
    (root / "classes.txt").write_text("fastener\nsleeper\n")
    result = CliRunner().invoke(app, ["fasteners", "crop", str(root), "--out", str(tmp_path / "crops"), "--classes", "fastener"])
    assert result.exit_code == 0, result.output
    written = sorted((tmp_path / "crops").glob("*.png"))
    assert [p.name for p in written] == ["t1_0.png"]
    assert Image.open(written[0]).size == (128, 128)
