"""Class names (ppinfer.pipeline.labels)."""

from __future__ import annotations

import pytest

from ppinfer.errors import ConfigError
from ppinfer.pipeline.labels import imagenet_labels, load_labels, parse_label_lines

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py


def test_imagenet_labels_shipped_in_paddleclas_order():
    labels = imagenet_labels()
    assert len(labels) == 1000 and len(set(labels)) == 999  # "crane" is two classes (134, 517)
    assert labels[0] == "tench, Tinca tinca"
    assert labels[281] == "tabby, tabby cat"
    assert labels[282] == "tiger cat"
    assert labels[285] == "Egyptian cat"
    assert labels[287] == "lynx, catamount"
    assert labels[904] == "window screen"
    assert labels[999] == "toilet tissue, toilet paper, bathroom tissue"
    assert all(label and label == label.strip() for label in labels)
    assert not any(label.split(" ", 1)[0].isdigit() for label in labels)  # no id prefix
    assert imagenet_labels() is labels  # cached


def test_default_labels():
    labels = load_labels(None, 1000)
    assert labels == list(imagenet_labels())
    labels.append("mutated")  # a copy: the cache is untouched
    assert len(imagenet_labels()) == 1000
    assert load_labels(None, 3) == ["class_0", "class_1", "class_2"]


def test_plain_label_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeffcat\r\ndog 2\r\n  bird, small  \r\n\r\n\n".encode())
    assert load_labels(str(path), 3) == ["cat", "dog 2", "bird, small"]


def test_paddleclas_id_name_file(tmp_path):
    path = tmp_path / "imagenet1k_label_list.txt"
    path.write_text("0 tench, Tinca tinca\n2 great white shark\n1 goldfish\n", encoding="utf-8")
    assert load_labels(str(path), 3) == ["tench, Tinca tinca", "goldfish", "great white shark"]


def test_numbers_that_are_not_ids_stay_in_the_name():
    assert parse_label_lines(["3 wheeler", "10 speed"]) == ["3 wheeler", "10 speed"]
    assert parse_label_lines(["0", "1", "2"]) == ["0", "1", "2"]  # digit labels, no names
    assert parse_label_lines(["0 a", "1 b", "1 c"]) == ["0 a", "1 b", "1 c"]  # ids repeat


def test_wrong_length_is_a_config_error(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("cat\ndog\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"has 2 labels but the model has 1000 classes"):
        load_labels(str(path), 1000)


def test_unreadable_label_file(tmp_path):
    with pytest.raises(ConfigError, match="Cannot read label file"):
        load_labels(str(tmp_path / "missing.txt"), 2)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00\x80garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_labels(str(binary), 1)
