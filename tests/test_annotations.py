"""YOLO and Pascal VOC annotation files: what they hold, and one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from railwatch.annotations import (
    parse_yolo_line,
    read_data_yaml,
    read_voc_objects,
    read_yolo_lines,
    voc_image_path,
    yolo_class_names,
    yolo_label_path,
)
from railwatch.errors import InputError


def _voc(path: Path, objects: str, filename: str = "a.png") -> Path:
    path.write_text(f"<annotation><filename>{filename}</filename>{objects}</annotation>", encoding="utf-8")
    return path


def _object(name: str, corners: tuple[object, ...], difficult: int = 0) -> str:
    xmin, ymin, xmax, ymax = corners
    return (
        f"<object><name> {name} </name><difficult>{difficult}</difficult>"
        f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
    )


def test_yolo_line_gives_class_and_normalised_box_and_takes_a_confidence_only_when_asked():
    assert parse_yolo_line("2 0.5 0.25 0.1 0.2", "a.txt:1") == (2, (0.5, 0.25, 0.1, 0.2))
    assert parse_yolo_line("2 0.5 0.25 0.1 0.2 0.93", "a.txt:1", confidence_field=True) == (2, (0.5, 0.25, 0.1, 0.2))
    with pytest.raises(InputError, match=r"a\.txt:1: expected 'class cx cy w h' \(5 fields\), got 6"):
        parse_yolo_line("2 0.5 0.25 0.1 0.2 0.93", "a.txt:1")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 0.5 0.5 0.2", "expected 'class cx cy w h'"),
        ("0 0.5 half 0.2 0.2", "not a number in '0 0.5 half 0.2 0.2'"),
        ("0 0.5 nan 0.2 0.2", "every field must be a finite number"),
        ("1.5 0.5 0.5 0.2 0.2", "class id must be an integer >= 0"),
        ("-1 0.5 0.5 0.2 0.2", "class id must be an integer >= 0"),
    ],
)
def test_bad_yolo_lines_are_refused_naming_file_and_line(line, message):
    with pytest.raises(InputError, match=rf"x\.txt:7: {message}"):
        parse_yolo_line(line, "x.txt:7")


def test_label_lines_skip_blanks_and_keep_their_numbers(tmp_path):
    label = tmp_path / "a.txt"
    label.write_text("0 0.5 0.5 0.1 0.1\n\n  \n1 0.2 0.2 0.1 0.1\n", encoding="utf-8")
    assert [where for where, _ in read_yolo_lines(label)] == [f"{label}:1", f"{label}:4"]
    label.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match=r"a\.txt: not a readable label file"):
        read_yolo_lines(label)


def test_label_path_mirrors_the_last_images_folder_or_sits_beside_the_image():
    assert yolo_label_path(Path("/d/images/train/x.png")) == Path("/d/labels/train/x.txt")
    assert yolo_label_path(Path("/images/d/images/x.jpg")) == Path("/images/d/labels/x.txt")
    assert yolo_label_path(Path("/d/photos/x.jpg")) == Path("/d/photos/x.txt")


def test_class_names_from_a_list_or_a_mapping(tmp_path):
    spec_path = tmp_path / "data.yaml"
    assert yolo_class_names({"names": ["person", "car"]}, spec_path) == {0: "person", 1: "car"}
    assert yolo_class_names({"names": {"0": "person", 3: "stone"}}, spec_path) == {0: "person", 3: "stone"}
    assert yolo_class_names({"train": "images/train"}, spec_path) is None
    with pytest.raises(InputError, match=r"data\.yaml: names must map integer class ids to names"):
        yolo_class_names({"names": {"first": "person"}}, spec_path)


def test_data_yaml_must_be_a_readable_mapping(tmp_path):
    spec_path = tmp_path / "data.yaml"
    with pytest.raises(InputError, match=r"data\.yaml: data set description not found"):
        read_data_yaml(spec_path)
    spec_path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"data\.yaml: expected a mapping"):
        read_data_yaml(spec_path)
    spec_path.write_text("names: [a, b\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"data\.yaml: not a readable YAML file"):
        read_data_yaml(spec_path)


def test_voc_boxes_are_pixel_edges_from_one_based_inclusive_corners(tmp_path):
    xml = _voc(tmp_path / "a.xml", _object("car", (11, 21, 30, 40)) + _object("person", (1, 1, 5, 9), difficult=1))
    voc = read_voc_objects(xml)
    assert voc.filename == "a.png" and voc.names == ("car", "person")
    np.testing.assert_array_equal(voc.boxes, [[10, 20, 30, 40], [0, 0, 5, 9]])
    assert read_voc_objects(xml, skip_difficult=True).names == ("car",)
    empty = read_voc_objects(_voc(tmp_path / "b.xml", ""))
    assert empty.boxes.shape == (0, 4) and empty.names == ()


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        (_object("car", (11, 21, "nan", 40)), "object bndbox xmax is 'nan', not a finite number"),
        (_object("car", (11, 21, "wide", 40)), "object bndbox has no number xmax"),
        (_object("car", (30, 21, 11, 40)), "object 'car' has xmax < xmin"),
        ("<object><name>car</name></object>", "an object lacks its name or bndbox"),
    ],
)
def test_bad_voc_objects_are_refused_naming_the_file(tmp_path, objects, message):
    with pytest.raises(InputError, match=rf"a\.xml: {message}"):
        read_voc_objects(_voc(tmp_path / "a.xml", objects))


def test_voc_image_by_file_name_then_by_id(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "JPEGImages" / "000001.jpg").write_bytes(b"")
    xml = tmp_path / "Annotations" / "000001.xml"
    assert voc_image_path(tmp_path, "000001", "000001.jpg", xml) == tmp_path / "JPEGImages" / "000001.jpg"
    assert voc_image_path(tmp_path, "000001", None, xml) == tmp_path / "JPEGImages" / "000001.jpg"
    with pytest.raises(InputError, match=r"000002\.xml: its image 000002 is not in"):
        voc_image_path(tmp_path, "000002", None, tmp_path / "Annotations" / "000002.xml")
