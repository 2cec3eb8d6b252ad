"""Issue 11, files: hostile and odd files never hang, explode memory or read outside the model.

Real files throughout: FIFOs made with ``os.mkfifo`` (no writer, so an ``open()`` would block
forever), sparse files made with ``truncate``, crafted PyTorch zips, YAML bombs. Commands that
could hang run as real ``python -m ppinfer`` processes under a timeout.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from skimage import data as skdata

from ppinfer.checkpoints.torch_reader import read_torch_checkpoint
from ppinfer.cli import cli
from ppinfer.errors import CheckpointError, ImageError
from ppinfer.pipeline.decode import load_image
from ppinfer.pipeline.image_headers import header_size

from .test_faults import (
    CLASSES,
    assert_one_sentence_error,
    json_lines,
    run_ppinfer,
    small_models,
    stderr_lines,
)
from .test_torch_reader import _dict, _tensor, _write_zip


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return small_models(tmp_path_factory)


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(skdata.chelsea(), cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def model_copy(models, tmp_path: Path) -> Path:
    return Path(shutil.copytree(models.model, tmp_path / "model"))


def program_of(model: Path) -> Path:
    """The program predict runs (a Paddle 3 export holds two)."""
    from ppinfer.modelfiles.formats import RUN_PREFERENCE, detect_directory

    return detect_directory(model, prefer=RUN_PREFERENCE).program


def predict(model: Path, image: Path, *extra: str):
    return CliRunner().invoke(cli, ["predict", "-i", str(image), "--model", str(model), *extra])


# --- images: FIFOs, sparse files, TIFF tricks ------------------------------------------------


def test_fifo_images_given_or_walked_get_an_error_line_and_the_rest_results(tmp_path, jpeg,
                                                                             models):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg)
    os.mkfifo(folder / "b.jpg")  # met in the walk; nobody ever writes to it
    (folder / "c.jpg").write_bytes(jpeg)
    given = tmp_path / "given.png"
    os.mkfifo(given)
    proc = run_ppinfer("predict", "-i", str(folder), "-i", str(given), "--model",
                       str(models.model), "--json", "-b", "2")
    lines = {Path(r["file_name"]).name: r for r in json_lines(proc.stdout)}
    assert list(lines) == ["a.jpg", "b.jpg", "c.jpg", "given.png"], proc.stderr
    assert "is a FIFO (named pipe), not a regular file." in lines["b.jpg"]["error"]
    assert "is a FIFO (named pipe), not a regular file." in lines["given.png"]["error"]
    assert len(lines["a.jpg"]["class_ids"]) == len(lines["c.jpg"]["class_ids"]) == CLASSES
    assert proc.returncode == 1


def test_errors_name_a_relative_image_path_exactly_as_given(tmp_path, jpeg, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkdir("photos")
    os.mkfifo("photos/pipe.jpg")
    Path("photos/big.jpg").write_bytes(jpeg)
    with pytest.raises(ImageError) as fifo:
        load_image("photos/pipe.jpg")
    with pytest.raises(ImageError) as big:
        load_image("photos/big.jpg", max_bytes=100)
    assert str(fifo.value) == "photos/pipe.jpg is a FIFO (named pipe), not a regular file."
    assert str(big.value).startswith("photos/big.jpg is ")  # never "Photos/..."


def test_sparse_30_gb_image_is_refused_unread_between_two_good_ones(tmp_path, jpeg, models):
    (tmp_path / "a.jpg").write_bytes(jpeg)
    with open(tmp_path / "b.jpg", "wb") as fh:
        fh.truncate(30 << 30)  # sparse: 30 GB that take no disk
    (tmp_path / "c.jpg").write_bytes(jpeg)
    proc = run_ppinfer("predict", "-i", str(tmp_path), "--model", str(models.model), "--json")
    lines = json_lines(proc.stdout)
    assert [Path(r["file_name"]).name for r in lines] == ["a.jpg", "b.jpg", "c.jpg"]
    assert lines[1]["error"] == (f"{tmp_path / 'b.jpg'} is 32.2 GB, over the limit of 537 MB: "
                                 "change the limit with --max-image-bytes.")
    assert "class_ids" in lines[0] and "class_ids" in lines[2]
    assert proc.returncode == 1


def test_max_image_bytes_option_sets_the_file_size_limit(tmp_path, jpeg, models):
    (tmp_path / "a.jpg").write_bytes(jpeg)
    result = predict(models.model, tmp_path / "a.jpg", "--json",
                     "--max-image-bytes", str(len(jpeg) - 1))
    assert "over the limit of" in json_lines(result.stdout)[0]["error"]
    result = predict(models.model, tmp_path / "a.jpg", "--json",
                     "--max-image-bytes", str(len(jpeg)))
    assert "class_ids" in json_lines(result.stdout)[0]


def tiff_with_duplicate_size_tags(first: int, last: int) -> bytes:
    """An uncompressed 8-bit gray TIFF whose width and height tags appear twice: ``first`` x
    ``first`` then ``last`` x ``last`` (libtiff believes the first, naive readers the last)."""
    entries = [(256, 4, first), (257, 4, first), (256, 4, last), (257, 4, last),
               (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 0), (277, 3, 1),
               (278, 4, last), (279, 4, last * last)]
    ifd_size = 2 + 12 * len(entries) + 4
    pixels_at = 8 + ifd_size
    body = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        value = pixels_at if tag == 273 else value
        if kind == 3:  # SHORT: the value in the first two bytes of the field
            body += struct.pack("<HHIHH", tag, kind, 1, value, 0)
        else:
            body += struct.pack("<HHII", tag, kind, 1, value)
    return b"II*\x00" + struct.pack("<I", 8) + body + b"\x00" * 4 + bytes(last * last)


def test_tiff_with_duplicate_size_tags_is_refused_from_its_header(tmp_path, monkeypatch):
    path = tmp_path / "twice.tif"
    path.write_bytes(tiff_with_duplicate_size_tags(20000, 2))
    assert header_size(path.read_bytes()) == (20000, 20000)  # the larger of the two

    def no_decode(*_args):
        raise AssertionError("decoded although the header is over the limit")

    monkeypatch.setattr(cv2, "imdecode", no_decode)
    with pytest.raises(ImageError, match=r"is 20000x20000 pixels \(400 megapixels\), over"):
        load_image(path)


def test_opencv_own_pixel_limit_backs_up_the_header_check(tmp_path):
    """In a fresh process: ppinfer sets OPENCV_IO_MAX_IMAGE_PIXELS (from --max-pixels) before
    OpenCV's first decode, so OpenCV itself refuses a bigger image whatever its header said."""
    ok, buf = cv2.imencode(".png", np.zeros((40, 40, 3), np.uint8))
    (tmp_path / "a.png").write_bytes(buf.tobytes())
    code = (
        "import sys, numpy as np\n"
        "from ppinfer.pipeline.limits import set_decoder_pixel_limit\n"
        "set_decoder_pixel_limit(1000)\n"
        "import cv2\n"
        "data = np.fromfile(sys.argv[1], np.uint8)\n"
        "try:\n"
        "    img = cv2.imdecode(data, cv2.IMREAD_COLOR)\n"
        "except cv2.error:\n"
        "    img = None\n"
        "print('refused' if img is None else img.shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.png")],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "refused", out.stderr


# --- model files that are not regular files --------------------------------------------------


def test_program_that_is_a_fifo_is_refused_not_waited_for(models, tmp_path, jpeg):
    model = model_copy(models, tmp_path)
    program = program_of(model)
    program.unlink()
    os.mkfifo(program)
    (tmp_path / "a.jpg").write_bytes(jpeg)
    proc = run_ppinfer("predict", "-i", str(tmp_path / "a.jpg"), "--model", str(model))
    assert proc.returncode == 2
    assert stderr_lines(proc)[-1] == (
        f"Error: Program file {program} is a FIFO (named pipe), not a regular file.")


def test_params_that_are_a_directory_are_named_as_such(models, tmp_path, jpeg):
    model = model_copy(models, tmp_path)
    params = model / "inference.pdiparams"
    params.unlink()
    params.mkdir()
    (tmp_path / "a.jpg").write_bytes(jpeg)
    assert_one_sentence_error(predict(model, tmp_path / "a.jpg"),
                              f"Parameters file {params} is a directory, not a regular file.")


def test_empty_program_is_one_sentence(models, tmp_path, jpeg):
    model = model_copy(models, tmp_path)
    program = program_of(model)
    program.write_bytes(b"")
    (tmp_path / "a.jpg").write_bytes(jpeg)
    assert_one_sentence_error(predict(model, tmp_path / "a.jpg"),
                              f"Program file {program} is empty (0 bytes)")


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_card_that_is_a_directory_or_fifo_is_refused_not_ignored(models, tmp_path, jpeg, kind):
    model = model_copy(models, tmp_path)
    card = model / "inference.yml"
    card.unlink()
    card.mkdir() if kind == "directory" else os.mkfifo(card)
    (tmp_path / "a.jpg").write_bytes(jpeg)
    proc = run_ppinfer("predict", "-i", str(tmp_path / "a.jpg"), "--model", str(model))
    what = "a directory" if kind == "directory" else "a FIFO (named pipe)"
    assert proc.returncode == 2
    assert stderr_lines(proc)[-1] == f"Error: Model card {card} is {what}, not a regular file."


# --- cards: YAML bombs, odd values, paths outside the model ---------------------------------

ALIAS_BOMB = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def write_card_section(model: Path, section: str) -> None:
    text = (model / "inference.yml").read_text(encoding="utf-8")
    head = text.split("PostProcess:")[0] if section.startswith("PostProcess") else text
    (model / "inference.yml").write_text(head + section, encoding="utf-8")


@pytest.mark.parametrize("where", ["label_list", "transform_ops"])
def test_yaml_alias_bomb_is_refused_in_one_short_line(models, tmp_path, jpeg, where):
    model = model_copy(models, tmp_path)
    card = (model / "inference.yml").read_text(encoding="utf-8")
    bomb = ALIAS_BOMB.replace("\n", "\n  ")
    if where == "label_list":
        card = card.split("PostProcess:")[0] + f"bomb:\n  {bomb}\nPostProcess:\n  Topk:\n" \
            "    label_list: *i\n"
    else:
        card = f"bomb:\n  {bomb}\n" + card.replace("transform_ops:", "transform_ops: *i\n  x:")
    (model / "inference.yml").write_text(card, encoding="utf-8")
    (tmp_path / "a.jpg").write_bytes(jpeg)
    tracemalloc.start()
    result = predict(model, tmp_path / "a.jpg")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    message = assert_one_sentence_error(result, "which ppinfer does not expand")
    assert len(message) < 300 and peak < 50e6, (len(message), peak)


def test_yaml_nested_10000_deep_is_refused(models, tmp_path, jpeg):
    model = model_copy(models, tmp_path)
    with open(model / "inference.yml", "a", encoding="utf-8") as fh:
        fh.write("deep: " + "[" * 10000 + "]" * 10000 + "\n")
    (tmp_path / "a.jpg").write_bytes(jpeg)
    assert_one_sentence_error(predict(model, tmp_path / "a.jpg"), "nests deeper than 64 levels")


CARD_FAULTS = [
    ("too-few-labels", "PostProcess:\n  Topk:\n    label_list: [a, b, c]\n",
     "lists 3 labels and the model has 4 classes"),
    ("labels-that-are-dicts", "PostProcess:\n  Topk:\n    label_list: [{a: 1}, b, c, d]\n",
     "label_list holds a dict, not a name"),
]


@pytest.mark.parametrize(("row", "section", "fragment"), CARD_FAULTS,
                         ids=[r[0] for r in CARD_FAULTS])
def test_card_labels_that_do_not_fit_are_refused(models, tmp_path, jpeg, row, section, fragment):
    model = model_copy(models, tmp_path)
    text = (model / "inference.yml").read_text(encoding="utf-8")
    text = text.split("PostProcess:")[0] + section + "ppinfer:" + text.split("ppinfer:")[1]
    if row == "too-few-labels":  # no class_num to compare with: the model's width decides
        text = text.replace("  class_num: 4\n", "")
    (model / "inference.yml").write_text(text, encoding="utf-8")
    (tmp_path / "a.jpg").write_bytes(jpeg)
    assert_one_sentence_error(predict(model, tmp_path / "a.jpg"), fragment)


def test_nan_in_std_is_refused(models, tmp_path, jpeg):
    model = model_copy(models, tmp_path)
    card = model / "inference.yml"
    text = card.read_text(encoding="utf-8")
    start = text.index("std:")
    end = text.index("order:", start)
    card.write_text(text[:start] + "std: [.nan, 0.224, 0.225]\n      " + text[end:],
                    encoding="utf-8")
    (tmp_path / "a.jpg").write_bytes(jpeg)
    assert_one_sentence_error(predict(model, tmp_path / "a.jpg"), "is not finite (NaN or inf)")


@pytest.mark.parametrize(("old", "new", "fragment"), [
    ("resize_short: 256", "resize_short: 1000000000", "over ppinfer's limit of 8192"),
    ("topk: 5", "topk: .inf", "cannot convert float infinity to integer"),
], ids=["gigapixel-resize", "infinite-topk"])
def test_card_numbers_that_would_exhaust_the_machine_are_refused(models, tmp_path, jpeg, old,
                                                                 new, fragment):
    model = model_copy(models, tmp_path)
    card = model / "inference.yml"
    text = card.read_text(encoding="utf-8")
    assert old in text
    card.write_text(text.replace(old, new), encoding="utf-8")
    (tmp_path / "a.jpg").write_bytes(jpeg)
    assert_one_sentence_error(predict(model, tmp_path / "a.jpg"), fragment)


@pytest.mark.parametrize("how", ["absolute", "dot-dot", "symlink-out"])
def test_class_id_map_file_outside_the_model_is_refused(models, tmp_path, jpeg, how):
    secret = tmp_path / "secret.txt"
    secret.write_text("".join(f"{i} password-{i}\n" for i in range(CLASSES)))
    model = model_copy(models, tmp_path)
    named = {"absolute": str(secret), "dot-dot": "../secret.txt", "symlink-out": "labels.txt"}[how]
    if how == "symlink-out":
        os.symlink(secret, model / "labels.txt")
    text = (model / "inference.yml").read_text(encoding="utf-8")
    text = text.split("PostProcess:")[0] + \
        f"PostProcess:\n  Topk:\n    class_id_map_file: {named}\n"
    (model / "inference.yml").write_text(text, encoding="utf-8")
    (tmp_path / "a.jpg").write_bytes(jpeg)
    result = predict(model, tmp_path / "a.jpg")
    assert "password" not in result.output
    assert_one_sentence_error(result, "which is outside the model directory")


def test_class_id_map_file_inside_the_model_is_used(models, tmp_path, jpeg):
    model = model_copy(models, tmp_path)
    (model / "labels.txt").write_text("".join(f"{i} kind-{i}\n" for i in range(CLASSES)))
    text = (model / "inference.yml").read_text(encoding="utf-8")
    text = text.split("PostProcess:")[0] + \
        "PostProcess:\n  Topk:\n    class_id_map_file: labels.txt\n"
    (model / "inference.yml").write_text(text, encoding="utf-8")
    (tmp_path / "a.jpg").write_bytes(jpeg)
    result = predict(model, tmp_path / "a.jpg", "--json")
    assert all(name.startswith("kind-") for name in json_lines(result.stdout)[0]["label_names"])


# --- PyTorch files that claim more than they hold ------------------------------------------


def test_torch_tensor_with_stride_zero_cannot_claim_gigabytes(tmp_path):
    pickled = _dict({"w": _tensor("FloatStorage", "0", 1, 0, (100000, 100000), (0, 0))})
    path = _write_zip(tmp_path / "tiny.pth", pickled, {"0": np.ones(1, "<f4").tobytes()})
    assert path.stat().st_size < 1000
    with pytest.raises(CheckpointError, match="claims 10000000000 elements from a storage of 1"):
        read_torch_checkpoint(path)


def test_torch_zip_entry_is_read_no_further_than_numel_needs(tmp_path):
    """A deflated storage entry that inflates to 256 MB, for a tensor of one element."""
    path = tmp_path / "inflating.pth"
    pickled = _dict({"w": _tensor("FloatStorage", "0", 1, 0, (1,), (1,))})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02" + pickled + b".")
        zf.writestr("archive/byteorder", b"little")
        info = zipfile.ZipInfo("archive/data/0")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as entry:
            entry.write(np.float32(2.5).tobytes())
            zeros = bytes(16 << 20)
            for _ in range(16):
                entry.write(zeros)
    assert path.stat().st_size < 2_000_000
    tracemalloc.start()
    state = read_torch_checkpoint(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert state["w"].tolist() == [2.5]
    assert peak < 20e6, peak
