"""The Python API (issue 13): ppinfer.load / Predictor / Result / export / bench, on the same
library path as the command line, light to import, and raising only ppinfer's own errors."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import ppinfer
from ppinfer import errors
from ppinfer.api.builtin_model import default_model_dir
from ppinfer.cli import cli

CAT_CLASSES = range(281, 286)


@pytest.fixture(scope="module")
def predictor():
    with ppinfer.load() as p:
        yield p


def rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_import_ppinfer_loads_neither_paddle_nor_the_api():
    code = ("import sys, ppinfer; ppinfer.ConfigError; dir(ppinfer); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('paddle', 'numpy', 'cv2', 'ppinfer') ))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out.replace("'", '"')) == ["ppinfer", "ppinfer.errors"]


def test_every_ppinfer_error_is_exported():
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.PPInferError)]
    assert len(classes) >= 8
    for cls in classes:
        assert getattr(ppinfer, cls.__name__) is cls
        assert cls.__name__ in ppinfer.__all__


def test_load_predict_gives_the_clis_json_for_a_path_and_an_array(predictor, photos):
    path = str(photos["chelsea"])
    cli_run = CliRunner().invoke(cli, ["predict", "-i", path, "--json"])
    assert cli_run.exit_code == 0, cli_run.output
    cli_line = json.loads(cli_run.output.splitlines()[0])

    from_path, from_array = predictor.predict([path, rgb(path)])
    assert isinstance(from_path, ppinfer.Result)
    assert from_path.to_dict() == cli_line
    assert from_path.class_ids[0] in CAT_CLASSES and from_path.error is None
    assert from_array.to_dict() == {**cli_line, "file_name": "<array 1>"}


def test_unreadable_inputs_become_results_with_an_error_in_input_order(predictor, photos,
                                                                      tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    inputs = [str(photos["coffee"]), np.zeros((4, 4), np.uint8), str(empty),
              np.zeros((8, 8, 3), np.float32), str(tmp_path / "missing.jpg"),
              np.zeros((0, 5, 3), np.uint8), rgb(photos["chelsea"])]
    results = predictor.predict(inputs)
    assert [r.file_name for r in results] == [
        str(photos["coffee"]), "<array 1>", str(empty), "<array 3>",
        str(tmp_path / "missing.jpg"), "<array 5>", "<array 6>"]
    assert [r.error is None for r in results] == [True, False, False, False, False, False, True]
    assert "not H x W x 3" in results[1].error
    assert "float32 values, not uint8" in results[3].error
    assert results[2].to_dict() == {"file_name": str(empty), "error": results[2].error}
    assert results[6].class_ids[0] in CAT_CLASSES


def test_a_wrong_kind_of_input_is_a_type_error_before_any_work(predictor):
    with pytest.raises(TypeError, match="input 1 is a int"):
        predictor.predict(["x.jpg", 3])


def test_predict_iter_streams_batches_in_input_order_and_can_stop_early(photos):
    paths = [str(photos[n]) for n in ("chelsea", "coffee", "astronaut")]
    with ppinfer.load(batch_size=2, top_k=2) as p:
        stream = p.predict_iter([*paths, rgb(paths[0])])
        first = next(stream)
        assert first.file_name == paths[0] and len(first.class_ids) == 2
        rest = list(stream)
        assert [r.file_name for r in rest] == [*paths[1:], "<array 3>"]
        assert rest[-1].to_dict()["scores"] == first.to_dict()["scores"]
        early = p.predict_iter(paths)
        next(early)
        early.close()  # stops the decode workers; the predictor stays usable
        assert [r.file_name for r in p.predict(photos["coffee"])] == [str(photos["coffee"])]


def test_predict_iter_reads_a_generator_only_a_few_batches_ahead(photos):
    from ppinfer.predict import PREFETCH_BATCHES

    image = cv2.resize(rgb(photos["chelsea"]), (64, 48))
    taken = []

    def endless():  # was: read whole before the first result, so this never yielded
        for i in itertools.count():
            taken.append(i)
            yield image

    batch = 2
    with ppinfer.load(batch_size=batch, top_k=1) as p:
        stream = p.predict_iter(endless())
        for done in range(1, 12):
            result = next(stream)
            assert result.file_name == f"<array {done - 1}>" and result.error is None
            assert len(taken) <= done + (PREFETCH_BATCHES + 1) * batch  # bounded memory
        stream.close()


def test_bytes_given_to_predict_get_a_sentence_saying_what_to_pass(predictor, photos):
    data = photos["chelsea"].read_bytes()
    with pytest.raises(TypeError, match=r"predict\(\) got bytes, not a path or an image "
                                        r"array: pass a path as str .*cv2.imdecode"):
        predictor.predict(data)  # was: "input 0 is a int"
    with pytest.raises(TypeError, match=r"input 1 is bytes: pass a path as str \(os.fsdecode"):
        predictor.predict([str(photos["coffee"]), os.fsencode(photos["chelsea"])])


def test_a_directory_and_a_glob_give_the_same_sorted_order(predictor, photos):
    folder = photos["chelsea"].parent
    by_dir = [r.file_name for r in predictor.predict(str(folder))]
    by_glob = [r.file_name for r in predictor.predict(str(folder / "*"))]
    assert by_dir == by_glob == sorted(by_dir)


def test_a_closed_predictor_says_so():
    with ppinfer.load() as p:
        assert "EfficientNet_lite0" in repr(p)
    with pytest.raises(ppinfer.ConfigError, match="closed"):
        p.predict([])


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"batchsize": 2}, ppinfer.ConfigError, "no option 'batchsize'. Did you mean batch_size?"),
    ({"batch_size": "8"}, ppinfer.ConfigError, "batch_size must be a whole number"),
    ({"batch_size": 0}, ppinfer.ConfigError, "batch-size must be at least 1"),
    ({"precision": "fp16"}, ppinfer.ConfigError, "fp16 needs a GPU"),
    ({"precision": "int4"}, ppinfer.ConfigError, "Unknown precision 'int4'"),
    ({"device": "tpu"}, ppinfer.ConfigError, "Unknown device 'tpu'"),
    ({"engine": "tensorflow"}, ppinfer.UnknownNameError, "Unknown engine 'tensorflow'"),
    ({"engine": "all"}, ppinfer.ConfigError, "engine='all' compares engines"),
    ({"image_shape": "3,224"}, ppinfer.ConfigError, "not C,H,W"),
    ({"model": "/nonexistent/model"}, ppinfer.ModelFormatError, "does not exist"),
])
def test_load_raises_ppinfer_errors_for_what_a_user_can_get_wrong(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace("?", r"\?")) as info:
        ppinfer.load(**kwargs)
    assert isinstance(info.value, ppinfer.PPInferError)


def test_load_takes_a_program_file_and_cli_options(photos):
    program = next(p for p in default_model_dir().iterdir() if p.suffix in (".json", ".pdmodel"))
    with ppinfer.load(program, top_k=1, cpu_threads=1, mkldnn=False) as p:
        assert p.config.cpu_threads == 1 and not p.config.mkldnn
        (result,) = p.predict(photos["chelsea"])
    assert result.class_ids[0] in CAT_CLASSES and len(result.scores) == 1


def test_export_returns_the_files_and_the_self_check_difference(tmp_path, photos):
    result = ppinfer.export("EfficientNet_lite0", None, tmp_path / "lite0", format="paddleclas1")
    assert set(result.files) == {"model", "params", "inference.yml"}
    assert {p.name for p in result.output.iterdir()} == set(result.files)
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-4
    with ppinfer.load(result.output) as p:
        assert p.predict(photos["chelsea"])[0].class_ids[0] in CAT_CLASSES
    with pytest.raises(ppinfer.ConfigError, match="ResNet50_vd needs a checkpoint"):
        ppinfer.export("ResNet50_vd", None, tmp_path / "r")


def test_cli_export_without_params_uses_the_installed_lite0_weights(tmp_path):
    out = tmp_path / "lite0"
    run = CliRunner().invoke(cli, ["export", "-m", "EfficientNet_lite0", "-o", str(out)])
    assert run.exit_code == 0, run.output
    assert "Exported EfficientNet_lite0" in run.output
    from ppinfer.modelfiles.modelcard import read_card

    card = read_card(out / "inference.yml")
    assert card.provenance["checkpoint"].endswith(".pth")


def test_bench_returns_the_rows_bench_json_writes(tmp_path):
    rows = ppinfer.bench(iterations=2, warmup=0, batch_size=[1, 2])
    assert [(r["batch_size"], r["status"]) for r in rows] == [(1, "ok"), (2, "ok")]
    target = tmp_path / "r.json"
    run = CliRunner().invoke(cli, ["bench", "--iterations", "2", "--warmup", "0",
                                   "--json", str(target)])
    assert run.exit_code == 0, run.output
    cli_rows = json.loads(target.read_text())["results"]
    assert set(cli_rows[0]) == set(rows[0])
    with pytest.raises(ppinfer.ConfigError, match="no option 'batch'"):
        ppinfer.bench(batch=2)


def test_export_and_bench_stay_callable_whatever_was_imported_first():
    import ppinfer.bench.report  # noqa: F401  (sets ppinfer.bench to the package)
    import ppinfer.export

    assert callable(ppinfer.export) and callable(ppinfer.bench)
    assert ppinfer.export is sys.modules["ppinfer.export"]
    assert ppinfer.export.export_model is not None


def test_the_callable_modules_show_their_functions_signature():
    import inspect

    import ppinfer

    assert list(inspect.signature(ppinfer.export).parameters)[:3] == [
        "model_name", "checkpoint", "output"]
    assert "model" in inspect.signature(ppinfer.bench).parameters
