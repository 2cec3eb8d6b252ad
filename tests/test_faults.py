"""Issue 7's fault table: bad input never crashes ppinfer or loses work.

Every row of docs/faults.md's "What happens when..." tables has a test here (images, paths, model
files), in tests/test_interrupts.py (Ctrl-C, killed exports) or tests/test_safe_loading.py
(pickles that carry code). They run the real command line: click's CliRunner in this process,
and a real ``python -m ppinfer`` subprocess where the process matters (permissions, locale,
stdout carrying only JSON). The model is small and real: MobileNetV3_small_x0_35 with 4 classes,
exported once per session.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from skimage import data as skdata

from ppinfer.cli import cli
from ppinfer.errors import ModelFormatError
from ppinfer.modelfiles.formats import detect_directory, verify_layout
from ppinfer.runtime.paddle_env import paddle_env

from .conftest import save_persistable
from .test_preprocess import huge_png

ARCH = "MobileNetV3_small_x0_35"
CLASSES = 4
NATIVE = paddle_env().native_format


# --- the small model, its damaged twins, and a checkpoint ---------------------------------------


@dataclass
class SmallModels:
    ckpt: Path  # persistable checkpoint (one file per variable)
    ckpt_b: Path  # the same architecture with other weights (tests/test_interrupts.py)
    model: Path  # exported from ckpt in the installed Paddle's native format
    uncombined: Path  # legacy program ``model`` + one file per variable
    other_class_params: bytes  # a combined params file of the same architecture, 7 classes
    other_arch_params: bytes  # ... of MobileNetV3_small_x0_5, 4 classes


_MODELS: dict[str, SmallModels] = {}


def small_models(tmp_path_factory) -> SmallModels:
    """Built once per session, shared with the other fault test modules."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _MODELS:
        _MODELS[key] = _build_models(tmp_path_factory.mktemp("fault-models"))
    return _MODELS[key]


def _build_models(root: Path) -> SmallModels:
    import paddle

    from ppinfer.checkpoints import sha256
    from ppinfer.export import export_model
    from ppinfer.models import get_model
    from ppinfer.models.program import build_static_model

    def build(name: str = ARCH, classes: int = CLASSES, seed: int = 7):
        paddle.seed(seed)
        return build_static_model(get_model(name), classes, ir="legacy")

    def params_bytes(static_model) -> bytes:
        with static_model.guard():
            return paddle.static.serialize_persistables(
                [static_model.feed], [static_model.fetch], static_model.executor,
                program=static_model.program)

    main = build()
    ckpt = save_persistable(main, root / "ckpt")
    uncombined = save_persistable(main, root / "uncombined")
    with main.guard():
        program = paddle.static.serialize_program([main.feed], [main.fetch], program=main.program)
    (uncombined / "model").write_bytes(program)
    ckpt_b = save_persistable(build(seed=8), root / "ckpt_b")
    assert sha256(ckpt) != sha256(ckpt_b)
    model = export_model(ARCH, ckpt, root / "model", class_num=CLASSES).output
    return SmallModels(
        ckpt=ckpt, ckpt_b=ckpt_b, model=model, uncombined=uncombined,
        other_class_params=params_bytes(build(classes=7)),
        other_arch_params=params_bytes(build("MobileNetV3_small_x0_5")),
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> SmallModels:
    return small_models(tmp_path_factory)


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def params_file(model_dir: Path) -> Path:
    return next(p for p in model_dir.iterdir() if p.suffix == ".pdiparams" or p.name == "params")


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


# --- helpers for the command line -----------------------------------------------------------------


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def assert_one_sentence_error(result, fragment: str = "") -> str:
    """exit 2, and stderr is exactly ``Error: <one sentence>`` with no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stdout == ""
    message = result.stderr
    assert message.startswith("Error: ") and message.endswith(".\n"), message
    assert message.count("\n") == 1 and "Traceback" not in message, message
    assert fragment in message, message
    return message


def is_glog(line: str) -> bool:
    """Paddle's C++ log lines (I1125 18:41:32.39 ...) and its deprecation notes on stderr."""
    return (len(line) > 5 and line[0] in "IWEF" and line[1:5].isdigit()) or "WARNING:" in line


def run_ppinfer(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ppinfer", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=300)


def stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip() and not is_glog(line)]


# --- 1. images and paths ------------------------------------------------------------------------


def _encode(img: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def _cmyk_jpeg(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    """A folder of good and bad inputs; tests run in it, so file names stay short."""
    root = tmp_path_factory.mktemp("zoo")
    cat = cv2.cvtColor(skdata.chelsea(), cv2.COLOR_RGB2BGR)
    jpeg = _encode(cat, ".jpg")
    files = {
        "good.jpg": jpeg,
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "notes.jpg": b"shopping list: milk, eggs\n",
        "alpha.png": _encode(np.dstack([cat, np.full(cat.shape[:2], 90, np.uint8)]), ".png"),
        "deep16.png": _encode(cat.astype(np.uint16) * 257, ".png"),
        "gray.png": _encode(skdata.camera(), ".png"),
        "cmyk.jpg": _cmyk_jpeg(skdata.chelsea()),
        "one.png": _encode(np.array([[[30, 120, 200]]], np.uint8), ".png"),
        "huge.png": huge_png(20000, 20000),
        "chat noir ĉ 猫.jpg": jpeg,
        "with space.png": _encode(cat, ".png"),
    }
    for name, payload in files.items():
        (root / name).write_bytes(payload)
    (root / "noimg").mkdir()
    (root / "noimg" / "readme.txt").write_text("no pictures here\n")
    (root / "loop" / "sub").mkdir(parents=True)
    (root / "loop" / "sub" / "inner.jpg").write_bytes(jpeg)
    os.symlink("..", root / "loop" / "sub" / "up")  # loop/sub/up -> loop
    os.symlink(".", root / "loop" / "self")
    return root


SPECS = ["good.jpg", "empty.jpg", "truncated.jpg", "notes.jpg", "alpha.png", "deep16.png",
         "gray.png", "cmyk.jpg", "one.png", "huge.png", "chat noir ĉ 猫.jpg", "with space.png",
         "noimg", "missing.jpg", "loop"]


@pytest.fixture(scope="module")
def mixed_run(models, zoo):
    """One predict over every input, good and bad mixed in batches of 4."""
    cwd = os.getcwd()
    os.chdir(zoo)
    try:
        result = CliRunner().invoke(cli, ["predict", *sum((["-i", s] for s in SPECS), []),
                                          "--model", str(models.model), "-b", "4", "--json",
                                          "--save", "saved.jsonl"])
        saved = (zoo / "saved.jsonl").read_text(encoding="utf-8")
    finally:
        os.chdir(cwd)
    return result, {line["file_name"]: line for line in json_lines(result.stdout)}, saved


# (row id, input, expected: None for a result, else a fragment of the error sentence)
IMAGE_ROWS = [
    ("empty-file", "empty.jpg", "empty.jpg is empty (0 bytes)."),
    ("truncated-jpeg", "truncated.jpg", "its JPEG data ends before the end marker."),
    ("text-file-named-jpg", "notes.jpg", "is not an image OpenCV can decode"),
    ("png-with-alpha", "alpha.png", None),
    ("16-bit-png", "deep16.png", None),
    ("grayscale", "gray.png", None),
    ("cmyk-jpeg", "cmyk.jpg", None),
    ("1x1-image", "one.png", None),
    ("20000x20000-image", "huge.png",
     "huge.png is 20000x20000 pixels (400 megapixels), over the limit of 100 megapixels."),
    ("non-ascii-name", "chat noir ĉ 猫.jpg", None),
    ("space-in-name", "with space.png", None),
    ("directory-without-images", "noimg",
     "Directory noimg holds no images (jpg jpeg png bmp webp tif tiff)."),
    ("path-does-not-exist", "missing.jpg", "missing.jpg does not exist: check the path."),
    ("symlink-loop-in-walk", "loop/sub/inner.jpg", None),
]


@pytest.mark.parametrize(("row", "name", "expected"), IMAGE_ROWS, ids=[r[0] for r in IMAGE_ROWS])
def test_image_fault(mixed_run, row, name, expected):
    _, lines, _ = mixed_run
    line = lines[name]
    if expected is None:
        assert set(line) == {"file_name", "class_ids", "scores", "label_names"}, line
        assert len(line["class_ids"]) == CLASSES and sorted(line["class_ids"]) == [0, 1, 2, 3]
        assert abs(sum(line["scores"]) - 1) < 1e-3
    else:
        assert set(line) == {"file_name", "error"}, line
        assert expected in line["error"], line
        assert line["error"].endswith(".") or line["error"].startswith("No "), line


def test_mixed_run_keeps_good_results_and_exits_1(mixed_run):
    result, lines, saved = mixed_run
    assert result.exit_code == 1, result.output
    assert result.stderr == "6 of 15 inputs failed; their lines say why.\n"
    # One line per input, in input order; the symlink loop walked once, not forever.
    assert list(lines) == [s if s != "loop" else "loop/sub/inner.jpg" for s in SPECS]
    assert saved == result.stdout  # --save holds exactly the lines printed
    assert sum("error" not in line for line in lines.values()) == 9


def test_huge_image_is_refused_from_its_header_without_decoding(models, zoo, monkeypatch):
    decoded = []
    real_imdecode = cv2.imdecode

    def spy(buf, flags):
        decoded.append(len(buf))
        return real_imdecode(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", spy)
    result = CliRunner().invoke(cli, ["predict", "-i", str(zoo / "huge.png"), "-i",
                                      str(zoo / "good.jpg"), "--model", str(models.model),
                                      "--json"])
    assert result.exit_code == 1
    huge, good = json_lines(result.stdout)
    assert "20000x20000 pixels" in huge["error"] and "over the limit" in huge["error"]
    assert "class_ids" in good
    assert decoded == [(zoo / "good.jpg").stat().st_size]  # only the good image was decoded


def test_max_pixels_option_sets_the_limit(models, zoo):
    result = CliRunner().invoke(cli, ["predict", "-i", str(zoo / "good.jpg"), "-i",
                                      str(zoo / "one.png"), "--model", str(models.model),
                                      "--json", "--max-pixels", "1000"])
    assert result.exit_code == 1
    good, one = json_lines(result.stdout)
    assert good["error"].endswith(
        "good.jpg is 451x300 pixels (0.135 megapixels), over the limit of 0.001 megapixels.")
    assert "class_ids" in one


def test_odd_file_names_print_in_table_and_json(models, tmp_path, monkeypatch):
    """Names that are not UTF-8, or look like rich markup, once crashed the output."""
    monkeypatch.chdir(tmp_path)
    good = (Path(__file__).parent.parent / "src/ppinfer/data/chelsea.jpg").read_bytes()
    folder = tmp_path / "odd"
    folder.mkdir()
    for raw, payload in ((b"caf\xe9.jpg", good), (b"nul\xff.jpg", b""),
                         (b"b[bold]x.jpg", good), (b"c[1].jpg", b"")):
        with open(os.path.join(os.fsencode(folder), raw), "wb") as fh:
            fh.write(payload)
    (folder / "x[").mkdir()
    (folder / "x[" / "[red]y.jpg").write_bytes(b"")  # "x[/[red]y.jpg": closes a markup tag
    runner = CliRunner(env={"COLUMNS": "160"})
    table = runner.invoke(cli, ["predict", "-i", "odd", "--model", str(models.model)])
    assert table.exit_code == 1, table.output
    for shown in ("caf\\xe9.jpg", "nul\\xff.jpg", "b[bold]x.jpg", "c[1].jpg", "x[/[red]y.jpg"):
        assert f"odd/{shown}" in table.stdout, shown
    result = runner.invoke(cli, ["predict", "-i", "odd", "--model", str(models.model),
                                 "--json", "--save", str(tmp_path / "odd.jsonl")])
    assert result.exit_code == 1, result.output
    names = [line["file_name"] for line in json_lines(result.stdout)]
    assert names == [f"odd/{n}" for n in ("b[bold]x.jpg", "c[1].jpg", "caf\\xe9.jpg",
                                          "nul\\xff.jpg", "x[/[red]y.jpg")]
    assert (tmp_path / "odd.jsonl").read_text(encoding="utf-8") == result.stdout


def test_a_name_that_is_not_utf8_is_told_apart_from_one_spelling_its_escape(models, tmp_path,
                                                                           monkeypatch):
    """``file_name`` shows a non-UTF-8 byte as ``\\xff``, exactly as it shows a name made of a
    backslash, an x and two f's: ``file_name_base64`` holds the bytes of the first only."""
    import base64

    monkeypatch.chdir(tmp_path)
    good = (Path(__file__).parent.parent / "src/ppinfer/data/chelsea.jpg").read_bytes()
    (tmp_path / "odd").mkdir()
    for raw in (b"odd/a\xff.jpg", b"odd/b\\xff.jpg"):  # a byte 0xff; a literal backslash
        Path(os.fsdecode(raw)).write_bytes(good)
    result = CliRunner().invoke(cli, ["predict", "-i", "odd", "--model", str(models.model),
                                      "--json"])
    assert result.exit_code == 0, result.output
    byte, text = json_lines(result.stdout)
    assert byte["file_name"] == "odd/a\\xff.jpg" and text["file_name"] == "odd/b\\xff.jpg"
    assert base64.b64decode(byte["file_name_base64"]) == b"odd/a\xff.jpg"
    assert "file_name_base64" not in text  # valid UTF-8: the name is file_name itself
    assert list(byte)[:2] == ["file_name", "file_name_base64"]


# Run as root, chmod 000 stops nothing: root reads any file. This launcher drops the two
# capabilities that let it (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) from its bounding set, then
# execs ppinfer, which so starts without them: permissions then apply as to any other user.
AS_ROOT_WITHOUT_READ_ANYTHING = """
import ctypes, os, sys
prctl = ctypes.CDLL(None, use_errno=True).prctl
for cap in (1, 2):
    if prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
        sys.exit(f"prctl failed: {os.strerror(ctypes.get_errno())}")
os.execv(sys.executable, [sys.executable, "-m", "ppinfer", *sys.argv[1:]])
"""


def ppinfer_without_root_reads(*args: str, env: dict) -> subprocess.CompletedProcess:
    if os.geteuid() != 0:
        return run_ppinfer(*args, env=env)
    return subprocess.run([sys.executable, "-c", AS_ROOT_WITHOUT_READ_ANYTHING, *args],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=300)


def test_unreadable_files_in_a_real_process(models, zoo, tmp_path):
    """A real ``python -m ppinfer`` under LC_ALL=C: unreadable file and folder get error lines,
    the rest results; stdout carries only JSON; exit 1; stderr ends in one sentence."""
    if not sys.platform.startswith("linux"):
        pytest.skip("permissions are simulated with Linux capabilities")
    folder = tmp_path / "perm"
    folder.mkdir()
    shutil.copy(zoo / "good.jpg", folder / "a good.jpg")
    shutil.copy(zoo / "chat noir ĉ 猫.jpg", folder / "ĉat.jpg")
    shutil.copy(zoo / "good.jpg", folder / "locked.jpg")
    (folder / "locked dir").mkdir()
    shutil.copy(zoo / "good.jpg", folder / "locked dir" / "hidden.jpg")
    (folder / "locked.jpg").chmod(0)
    (folder / "locked dir").chmod(0)
    try:
        proc = ppinfer_without_root_reads("predict", "-i", str(folder), "--model",
                                          str(models.model), "--json",
                                          env={"LC_ALL": "C", "LANG": "C"})
    finally:
        (folder / "locked.jpg").chmod(0o644)
        (folder / "locked dir").chmod(0o755)
    if "prctl failed" in proc.stderr:
        pytest.skip(f"running as root and cannot drop capabilities ({proc.stderr.strip()}): "
                    "chmod 000 cannot stop reading")
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]  # every stdout line is JSON
    by_name = {Path(line["file_name"]).name: line for line in lines}
    assert set(by_name) == {"a good.jpg", "ĉat.jpg", "locked.jpg", "locked dir"}
    assert "class_ids" in by_name["a good.jpg"] and "class_ids" in by_name["ĉat.jpg"]
    assert by_name["locked.jpg"]["error"] == f"Cannot read {folder}/locked.jpg: Permission denied."
    assert by_name["locked dir"]["error"] == (
        f"Cannot read directory {folder}/locked dir: Permission denied")
    assert "Traceback" not in proc.stderr
    assert stderr_lines(proc)[-1] == "2 of 4 inputs failed; their lines say why."


def test_predict_200_images_batch_16(models, tmp_path):
    """The light version of benchmarks/predict_load.py: every image gets its line."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(200):
        cv2.imwrite(str(folder / f"img{i:03d}.png"), rng.integers(0, 256, (24, 32, 3), np.uint8))
    result = CliRunner().invoke(cli, ["predict", "-i", str(folder), "--model",
                                      str(models.model), "-b", "16", "--json"])
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    assert [Path(line["file_name"]).name for line in lines] == [
        f"img{i:03d}.png" for i in range(200)]
    assert all(len(line["class_ids"]) == CLASSES for line in lines)


# --- 2. model files ---------------------------------------------------------------------------

def _model_without_params(m: SmallModels, tmp: Path) -> list[str]:
    d = copy_model(m.model, tmp / "m")
    params_file(d).unlink()
    return ["predict", "-i", "x.jpg", "--model", str(d)]


def _params_without_program(m: SmallModels, tmp: Path) -> list[str]:
    d = copy_model(m.model, tmp / "m")
    for p in d.iterdir():
        if p.suffix in (".json", ".pdmodel") or p.name == "model":
            p.unlink()
    return ["predict", "-i", "x.jpg", "--model", str(d)]


def _predict_params_of(attr: str):
    def build(m: SmallModels, tmp: Path) -> list[str]:
        d = copy_model(m.model, tmp / "m")
        params_file(d).write_bytes(getattr(m, attr))
        return ["predict", "-i", str(tmp / "x.jpg"), "--model", str(d)]

    return build


def _predict_truncated_params(m: SmallModels, tmp: Path) -> list[str]:
    d = copy_model(m.model, tmp / "m")
    truncate(params_file(d))
    return ["predict", "-i", str(tmp / "x.jpg"), "--model", str(d)]


def _predict_truncated_variable_file(m: SmallModels, tmp: Path) -> list[str]:
    d = copy_model(m.uncombined, tmp / "m")
    truncate(d / "fc_weights")
    return ["predict", "-i", str(tmp / "x.jpg"), "-d", str(d)]


def _export(m: SmallModels, tmp: Path, ckpt: Path, *extra: str) -> list[str]:
    return ["export", "-m", ARCH, "-p", str(ckpt), "-o", str(tmp / "out"), "--class-num",
            str(CLASSES), *extra]


def _export_other_arch(m: SmallModels, tmp: Path) -> list[str]:
    args = _export(m, tmp, m.ckpt)
    args[2] = "MobileNetV3_small_x0_5"
    return args


def _export_other_class(m: SmallModels, tmp: Path) -> list[str]:
    return [*_export(m, tmp, m.ckpt)[:-2], "--class-num", "7"]


def _export_truncated_variable_file(m: SmallModels, tmp: Path) -> list[str]:
    d = copy_model(m.ckpt, tmp / "ckpt")
    truncate(d / "fc_weights")
    return _export(m, tmp, d)


def _export_truncated_pdparams(m: SmallModels, tmp: Path) -> list[str]:
    import pickle

    from ppinfer.checkpoints import read_persistable_dir

    path = tmp / "best.pdparams"
    path.write_bytes(pickle.dumps(read_persistable_dir(m.ckpt), protocol=4))
    truncate(path)
    return _export(m, tmp, path)


def _pir_program_on_paddle_26(m: SmallModels, tmp: Path) -> list[str]:
    d = tmp / "m"
    d.mkdir()
    (d / "inference.json").write_text('{"base_code": {"magic": "pir", "version": 1}}')
    shutil.copy(params_file(m.model), d / "inference.pdiparams")
    return ["predict", "-i", "x.jpg", "--model", str(d)]


def _corrupt_card(text: str):
    def build(m: SmallModels, tmp: Path) -> list[str]:
        d = copy_model(m.model, tmp / "m")
        (d / "inference.yml").write_text(text)
        return ["predict", "-i", "x.jpg", "--model", str(d)]

    return build


ON_26_ONLY = pytest.mark.skipif(paddle_env().can_run_pir,
                                reason="this Paddle runs PIR programs; the row is for Paddle 2.6")

# (row id, arguments builder, fragment of the one-sentence error, marks)
MODEL_ROWS = [
    ("program-without-params", _model_without_params, "holds a program (inference.", ()),
    ("params-without-program", _params_without_program,
     "holds parameters (inference.pdiparams) but no program file", ()),
    ("predict-params-of-another-class-count", _predict_params_of("other_class_params"),
     "fc_offset is [7] in ", ()),
    ("predict-params-of-another-architecture", _predict_params_of("other_arch_params"),
     "the parameters come from a model with another class count or architecture",
     ()),
    ("predict-truncated-pdiparams", _predict_truncated_params, "inference.pdiparams is truncated",
     ()),
    ("predict-truncated-variable-file", _predict_truncated_variable_file,
     "fc_weights is truncated", ()),
    ("export-checkpoint-of-another-class-count", _export_other_class,
     "MobileNetV3_small_x0_35 makes [1280, 7]: pass --class-num 4.", ()),
    ("export-checkpoint-of-another-architecture", _export_other_arch,
     "more variables differ too): check --model-name matches the checkpoint.", ()),
    ("export-truncated-variable-file", _export_truncated_variable_file,
     "fc_weights is not a readable Paddle tensor file (file ends after", ()),
    ("export-truncated-pdparams", _export_truncated_pdparams,
     "best.pdparams is not a readable pickle or is truncated", ()),
    ("json-program-on-paddle-2.6", _pir_program_on_paddle_26,
     "is a PIR (.json) program, which needs Paddle 3", (ON_26_ONLY,)),
    ("corrupt-inference-yml", _corrupt_card("Global: {model_name: x\nPreProcess: [[[\n"),
     "inference.yml is not valid YAML", ()),
    ("inference-yml-with-bad-values", _corrupt_card("ppinfer: {class_num: four}\n"),
     "ppinfer.class_num is 'four', not a positive integer", ()),
]


@pytest.mark.parametrize(
    ("row", "build", "fragment"),
    [pytest.param(*r[:3], marks=r[3], id=r[0]) for r in MODEL_ROWS],
)
def test_model_fault_is_one_sentence_and_exit_2(models, tmp_path, row, build, fragment):
    args = build(models, tmp_path)
    result = CliRunner().invoke(cli, args)
    assert_one_sentence_error(result, fragment)
    assert not (tmp_path / "out").exists()  # a failed export leaves nothing behind
    debug = CliRunner().invoke(cli, ["--debug", *args])  # --debug: traceback, same status
    assert debug.exit_code == 2 and "Traceback" in debug.stderr, debug.output
    assert fragment in debug.stderr


def test_debug_shows_the_traceback_in_a_real_process(models, tmp_path):
    args = _corrupt_card("[unclosed\n")(models, tmp_path)
    quiet = run_ppinfer(*args)
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    assert stderr_lines(quiet) == [stderr_lines(quiet)[-1]]
    assert stderr_lines(quiet)[-1].startswith("Error: ") and "is not valid YAML" in quiet.stderr
    loud = run_ppinfer("--debug", *args)
    assert loud.returncode == 2
    assert "Traceback (most recent call last)" in loud.stderr
    assert "ModelFormatError" in loud.stderr


# verify_layout itself, on real files: what the predict rows above rely on.


def test_verify_layout_passes_every_good_layout(models, tmp_path):
    verify_layout(detect_directory(models.model, prefer=NATIVE))
    verify_layout(detect_directory(models.uncombined))
    seed = copy_model(models.uncombined, tmp_path / "seed")
    for p in list(seed.iterdir()):
        if p.name != "model":
            p.unlink()
    import paddle

    from ppinfer.models import get_model
    from ppinfer.models.program import build_static_model

    legacy = build_static_model(get_model(ARCH), CLASSES, ir="legacy")
    legacy.load_checkpoint(models.ckpt)
    with legacy.guard():
        (seed / "params").write_bytes(paddle.static.serialize_persistables(
            [legacy.feed], [legacy.fetch], legacy.executor, program=legacy.program))
    verify_layout(detect_directory(seed))


VERIFY_CASES = [
    ("truncate-half", "inference.pdiparams is truncated: tensor "),
    ("truncate-in-header", "is truncated: it ends inside the header of tensor "),
    ("trailing-bytes", "has no valid header"),
    ("empty", "holds 0 tensors and "),
    ("other-class", "fc_offset is [7] in "),
    ("other-arch", "more differ): the parameters come from a model with another class"),
]


@pytest.mark.parametrize(("damage", "fragment"), VERIFY_CASES, ids=[c[0] for c in VERIFY_CASES])
def test_verify_layout_names_what_does_not_fit(models, tmp_path, damage, fragment):
    d = copy_model(models.model, tmp_path / "m")
    params = params_file(d)
    data = params.read_bytes()
    payload = {
        "truncate-half": data[: len(data) // 2],
        "truncate-in-header": data + data[:10],
        "trailing-bytes": data + b"\x07" * 64,
        "empty": b"",
        "other-class": models.other_class_params,
        "other-arch": models.other_arch_params,
    }[damage]
    params.write_bytes(payload)
    with pytest.raises(ModelFormatError) as info:
        verify_layout(detect_directory(d, prefer=NATIVE))
    message = str(info.value)
    assert fragment in message and message.endswith(".") and "\n" not in message, message


def test_verify_layout_names_a_missing_or_cut_variable_file(models, tmp_path):
    d = copy_model(models.uncombined, tmp_path / "m")
    truncate(d / "fc_weights", 0.9)
    with pytest.raises(ModelFormatError, match=r"fc_weights is truncated: tensor 1 needs"):
        verify_layout(detect_directory(d))
    (d / "fc_weights").unlink()
    with pytest.raises(ModelFormatError, match=r"lacks the file of variable fc_weights"):
        verify_layout(detect_directory(d))


def test_program_parameters_match_paddles_own_parser(models):
    """The protobuf walker agrees with Paddle's ProgramDesc on every persistable variable."""
    framework_pb2 = pytest.importorskip("paddle.base.proto.framework_pb2")
    from ppinfer.checkpoints.integrity import program_parameters

    data = (models.uncombined / "model").read_bytes()
    desc = framework_pb2.ProgramDesc.FromString(data)
    fields = framework_pb2.VarType.DESCRIPTOR.fields_by_name
    dense = "dense_tensor" if "dense_tensor" in fields else "lod_tensor"  # renamed in Paddle 3
    expected = {
        v.name: tuple(getattr(v.type, dense).tensor.dims) for v in desc.blocks[0].vars
        if v.persistable and v.type.type not in (9, 10, 17)
    }
    assert program_parameters(models.uncombined / "model") == expected
    assert len(expected) > 100


# --- --save and the output --------------------------------------------------------------------


def test_setup_error_leaves_an_earlier_save_file_alone(models, tmp_path):
    earlier = tmp_path / "results.jsonl"
    earlier.write_text('{"file_name": "yesterday.jpg", "class_ids": [1]}\n')
    d = copy_model(models.model, tmp_path / "m")
    params_file(d).write_bytes(models.other_arch_params)  # fails when the engine is built
    result = CliRunner().invoke(cli, ["predict", "-i", str(tmp_path / "x.jpg"), "--model",
                                      str(d), "--save", str(earlier)])
    assert result.exit_code == 2, result.output
    assert earlier.read_text() == '{"file_name": "yesterday.jpg", "class_ids": [1]}\n'
    new = tmp_path / "new.jsonl"
    result = CliRunner().invoke(cli, ["predict", "-i", str(tmp_path / "x.jpg"), "--model",
                                      str(d), "--save", str(new)])
    assert result.exit_code == 2 and not new.exists()  # no empty file left behind


def test_save_file_in_a_missing_folder_is_one_sentence(models, tmp_path):
    result = CliRunner().invoke(cli, ["predict", "-i", "x.jpg", "--model", str(models.model),
                                      "--save", str(tmp_path / "no" / "such" / "r.jsonl")])
    assert_one_sentence_error(
        result, f"Cannot write the --save file {tmp_path}/no/such/r.jsonl: No such file or "
                "directory.")
