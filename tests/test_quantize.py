"""ppinfer quantize (issue 22): post-training int8 of the built-in EfficientNet-Lite0 (real
weights) for each engine with its own tool, calibrated and verified on scikit-image's photos.

The photos are the six of scikit-image's that show things ImageNet has classes for (a cat, a
cup of coffee, a camera on a tripod, a rocket, a wall clock, a motorcycle: the left view of its
stereo pair, added to the first five so that more distinct photos are held out), each as a
whole, flipped and cropped (12 views each): scikit-image's textures and micrographs are near
ties for an ImageNet model at fp32 already (its two best scores within 0.05 on a third of them),
which any rounding swaps, so they would measure the images, not the quantization.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ppinfer.cli import cli
from tests.quantized_lite0 import SAMPLES, tool_problem

# Top-1 agreement with fp32 on the 22 held-out views: issue 22's 97% (22/22) for every engine.
# analysis with its bias correction (mean KL divergence from fp32 0.0036 on 112 views of seven
# photos), onnxruntime with its float stem and first depthwise convolution and its bias
# correction (KL 0.0022; 0.0064 with every convolution int8, when a crop of the clock whose two
# best scores are 0.003 apart in fp32 swapped), openvino with NNCF's (KL 0.0046): as close as
# bf16's 0.0033-0.0043 (BENCHMARKS.md "int8 vs fp32"). Every engine must get every view right on
# which fp32 is decided (the views that differ are all near ties). A broken quantization (wrong
# scales, wrong preprocessing) agrees on a few percent.
AGREEMENT_FLOOR = {"analysis": 0.97, "openvino": 0.97, "onnxruntime": 0.97}
# the convolutions ppinfer.quantization.float_layers keeps in float on Lite0 (stem, first two
# depthwise), recorded in the card; onnxruntime keeps the two of them that read float maps
# (the stem, the first depthwise: its module says why)
KEPT_FLOAT = {"analysis": 3, "openvino": 3, "onnxruntime": 2}
# analysis's and onnxruntime's int8 have their biases corrected (ppinfer.quantization.paddle_bias,
# onnx_bias): every convolution of Lite0 (all 49) that runs in int8 (onnxruntime: 47)
CORRECTED = {"analysis": "per channel, 49 convolutions one at a time",
             "onnxruntime": "per channel, 47 convolutions one at a time"}


def record_tool(out: Path) -> str:
    import yaml

    return yaml.safe_load((out / "inference.yml").read_text())["ppinfer"]["quantization"]["tool"]


@pytest.mark.parametrize("engine", ["analysis", "openvino", "onnxruntime"])
def test_int8_model_is_written_and_verified_against_fp32_on_held_out_photos(engine, quantized):
    problem = tool_problem(engine)
    if problem:
        pytest.skip(problem)
    result, out = quantized(engine)
    assert result.exit_code == 0, result.output
    assert "top-1 agrees on" in result.stdout and "largest score difference" in result.stdout
    assert result.stderr.splitlines()[0] == (  # said before the long part starts
        f"Quantizing EfficientNet_lite0 for {engine} with {record_tool(out)} on 16 calibration "
        "images, then verifying on 22 held out...")
    import yaml

    record = yaml.safe_load((out / "inference.yml").read_text())["ppinfer"]["quantization"]
    assert record["engine"] == engine and record["samples"] == int(SAMPLES)
    assert record["images"] == 22 and record["top1_rate"] >= AGREEMENT_FLOOR[engine], record
    assert record["images"] - record["top1_agree"] == record["near_ties"], record
    if engine in KEPT_FLOAT:
        assert len(record["settings"]["kept_float"]["ops"]) == KEPT_FLOAT[engine], record
    if engine in CORRECTED:
        assert record["settings"]["bias_correction"] == CORRECTED[engine], record
    below = record["top1_rate"] < 0.97
    assert ("warning: int8 agrees with fp32 on" in result.stderr) == below, result.stderr
    if below:
        assert "Try more calibration images" in result.stderr


def test_paddle_s_int8_program_reads_as_ending_in_softmax_through_its_quantize_pair(quantized):
    """Paddle's PTQ rounds the softmax's output through quantize_linear / dequantize_linear; read
    as logits, the scores got a second softmax (flattened: a 0.98 score became 0.01) whenever
    the saved names did not loop back to the card (a second quantize in one process)."""
    from ppinfer.modelfiles.program_output import output_kind

    out = quantized("analysis")[1]
    assert output_kind(out / "inference.pdmodel") == "softmax"


def test_predict_runs_the_int8_model_on_its_engine_and_names_what_fp32_names(
        lite0, views, tmp_path):
    problem = tool_problem("onnxruntime")
    if problem:
        pytest.skip(problem)
    import ppinfer

    out = tmp_path / "lite0-int8"
    result = ppinfer.quantize(views, out, model=lite0, engine="onnxruntime", samples=16)
    assert result.output == out and (out / "inference.onnx").is_file()
    cat = str(sorted(views.glob("chelsea-1.0-*"))[0])
    runner = CliRunner()
    int8 = runner.invoke(cli, ["predict", cat, "--model", str(out), "--engine", "onnxruntime",
                               "--precision", "int8", "--json"])
    fp32 = runner.invoke(cli, ["predict", cat, "--model", str(lite0), "--json"])
    assert int8.exit_code == 0, int8.output
    assert json.loads(int8.stdout)["label_names"][0] == json.loads(fp32.stdout)["label_names"][0]
    # its agreement was measured at quantize time; no request for the --precision already given
    assert "measured when it was quantized" in int8.stderr and "warning" not in int8.stderr
    # the softmax stays float: scores are not all whole steps of 1/255
    scores = np.array(json.loads(int8.stdout)["scores"])
    assert np.abs(scores * 255 - np.round(scores * 255)).max() > 1e-3, scores
    elsewhere = runner.invoke(cli, ["predict", cat, "--model", str(out), "--engine", "openvino",
                                    "--precision", "int8"])
    assert elsewhere.exit_code != 0
    assert "quantized for the onnxruntime engine" in elsewhere.stderr, elsewhere.stderr


def test_no_calibration_images_is_one_sentence(lite0, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["quantize", "--model", str(lite0), "--calib", str(empty),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code != 0
    message = result.stderr.strip()
    assert message.startswith("Error:") and len(message.splitlines()) == 1, message
    assert str(empty) in message
    assert not (tmp_path / "out").exists()


def test_too_few_calibration_images_says_how_many_it_needs(lite0, views, tmp_path):
    few = tmp_path / "few"
    few.mkdir()
    for path in sorted(views.glob("*.jpg"))[:3]:
        (few / path.name).write_bytes(path.read_bytes())
    result = CliRunner().invoke(cli, ["quantize", "--model", str(lite0), "--calib", str(few),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "found 3" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_missing_model_is_one_sentence(views, tmp_path):
    result = CliRunner().invoke(cli, ["quantize", "--model", str(tmp_path / "nope"), "--calib",
                                      str(views), "-o", str(tmp_path / "out")])
    assert result.exit_code != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "does not exist" in message, message


def test_an_int8_model_or_a_photo_folder_as_model_says_what_to_pass(quantized, lite0, views,
                                                                     tmp_path):
    int8 = quantized("analysis")[1]
    result = CliRunner().invoke(cli, ["quantize", "--model", str(int8), "--calib", str(views),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {int8} is already an int8 model (ppinfer quantize made it for analysis from "
        f"{lite0.resolve()}): pass the float model instead.")
    result = CliRunner().invoke(cli, ["quantize", "--model", str(views), "--calib", str(views),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {views} holds no exported model (inference.json or inference.pdmodel): export "
        "one with ppinfer export, then quantize that directory.")


def test_samples_below_the_calibration_minimum_are_refused_by_the_option_itself():
    """--help said x>=1 while 3 was refused later as too few (a stranger's find)."""
    from ppinfer.cli.quantize import MIN_SAMPLES
    from ppinfer.quantization.calibration import MIN_CALIBRATION

    assert MIN_SAMPLES == MIN_CALIBRATION
    result = CliRunner().invoke(cli, ["quantize", "--calib", "x", "-o", "y", "--samples",
                                      str(MIN_CALIBRATION - 1)])
    assert result.exit_code == 2 and f"x>={MIN_CALIBRATION}" in result.output, result.output


def test_an_output_holding_the_users_files_is_refused_as_export_refuses_it(lite0, views,
                                                                           tmp_path):
    """quantize and export share one -o check (modelfiles/output_dir.py): nothing is deleted."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    result = CliRunner().invoke(cli, ["quantize", "--model", str(lite0), "--calib", str(views),
                                      "-o", str(out), "--force"])
    assert result.exit_code != 0 and (out / "notes.txt").exists()
    assert (f"Output directory {out} holds no model, so --force will not replace it: it would "
            "delete notes.txt. Choose another -o, or empty it yourself.") in result.stderr, \
        result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
