"""The command line itself: help for every command, models and info, plug-in engines, registry
errors, and life without Paddle."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest
from click.testing import CliRunner

from ppinfer.cli import cli

COMMANDS = sorted(cli.commands)


def test_the_expected_commands_exist():
    assert {"export", "predict", "models", "info"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert f"ppinfer {command}" in result.output  # the docstring's example


def test_models_lists_registered_architectures_with_parameter_counts():
    result = CliRunner().invoke(cli, ["models", "ResNet50*", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in map(json.loads, result.output.splitlines())}
    assert set(rows) == {"ResNet50", "ResNet50_vd"}
    assert rows["ResNet50_vd"]["parameters"] == 25_576_264  # PaddleClas's trainable count
    assert rows["ResNet50"]["input_shape"] == [3, 224, 224]


def test_info_reports_paddle_ir_and_cpu_features():
    import paddle

    result = CliRunner().invoke(cli, ["info", "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert facts["paddle"] == paddle.__version__
    assert facts["ir"] == ("PIR" if paddle.__version__.startswith("3") else "legacy")
    assert facts["cuda"] is paddle.is_compiled_with_cuda()
    assert isinstance(facts["cpu_features"], list)


def test_unknown_model_and_engine_list_the_valid_names(tmp_path):
    result = CliRunner().invoke(cli, ["export", "-m", "resnet50_vd", "-p", str(tmp_path),
                                      "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.startswith("Error: Unknown model 'resnet50_vd'. Did you mean ResNet50_vd?")
    assert "`ppinfer models` lists the" in result.output and len(result.output) < 300
    result = CliRunner().invoke(cli, ["predict", "--engine", "tensorflow"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: Unknown engine 'tensorflow': use one of analysis, ")
    assert "executor-inference, executor-persistable" in result.output


def test_impossible_device_requests_exit_2_with_one_sentence():
    from ppinfer.runtime.paddle_env import paddle_env

    if paddle_env().with_cuda:
        pytest.skip("this Paddle has CUDA")
    result = CliRunner().invoke(cli, ["predict", "--use-gpu"])
    assert result.exit_code == 2
    assert "is a CPU build: install paddlepaddle-gpu" in result.output
    result = CliRunner().invoke(cli, ["predict", "--precision", "fp16"])
    assert result.exit_code == 2
    assert result.output == ("Error: fp16 needs a GPU; on the CPU use --precision bf16 (CPUs with "
                             "avx512_bf16) or fp32.\n")


def test_registries_refuse_duplicates():
    from ppinfer.engines import register_engine
    from ppinfer.engines.analysis import AnalysisEngine
    from ppinfer.models import register_model

    with pytest.raises(ValueError, match="registered twice"):
        register_model("ResNet50_vd")(lambda class_num=1000: None)
    with pytest.raises(ValueError, match="registered twice"):
        register_engine("analysis")(type("Other", (AnalysisEngine,), {}))


def test_a_plug_in_engine_from_the_entry_point_group_runs(monkeypatch, photos):
    import ppinfer.engines.base as base

    ep = EntryPoint(name="third-party", value="tests.plugin_engine:ThirdPartyEngine",
                    group=base.ENTRY_POINT_GROUP)
    monkeypatch.setattr("importlib.metadata.entry_points",
                        lambda group=None: [ep] if group == base.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(base, "_plugins_loaded", False)
    monkeypatch.setattr(base, "ENGINES", dict(base.ENGINES))
    result = CliRunner().invoke(cli, ["predict", "-i", str(photos["chelsea"]), "--engine",
                                      "third-party", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["class_ids"][0] in range(281, 286)


WITHOUT_PADDLE = """
import sys
sys.modules["paddle"] = None  # as if paddlepaddle were not installed
from ppinfer.cli import main
sys.argv = ["ppinfer", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("args", [["info"], ["predict"],
                                  ["export", "-m", "ResNet50_vd", "-p", "x", "-o", "y"]])
def test_without_paddle_commands_say_how_to_install_it(args):
    run = subprocess.run([sys.executable, "-c", WITHOUT_PADDLE, *args], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr == ("Error: PaddlePaddle is not installed: run `pip install 'ppinfer[cpu]'` "
                          "(or `pip install 'ppinfer[gpu]'` on a CUDA machine).\n")


def test_without_paddle_models_still_lists_the_architectures():
    """The list ships with ppinfer (models/catalog.json): choosing one needs no Paddle yet."""
    run = subprocess.run([sys.executable, "-c", WITHOUT_PADDLE, "models", "ResNet50_vd",
                          "--json"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["name"] == "ResNet50_vd"


def test_without_paddle_help_still_works():
    run = subprocess.run([sys.executable, "-c", WITHOUT_PADDLE, "--help"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and "Commands:" in run.stdout


def test_engines_lists_each_engine_with_what_it_runs():
    result = CliRunner().invoke(cli, ["engines", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in map(json.loads, result.output.splitlines())}
    assert {"analysis", "executor-inference", "executor-persistable"} <= set(rows)
    assert "uncombined" in rows["analysis"]["runs"]
    assert rows["executor-persistable"]["runs"].startswith("architecture + checkpoint")
    assert all(row["about"] for row in rows.values())


def test_a_precision_an_engine_would_not_really_run_is_refused(photos):
    from ppinfer.runtime.paddle_env import paddle_env

    if not paddle_env().has_avx512_bf16:
        pytest.skip("bf16 is refused earlier on this CPU")
    result = CliRunner().invoke(cli, ["predict", "-i", str(photos["chelsea"]), "--engine",
                                      "executor-inference", "--precision", "bf16"])
    assert result.exit_code == 2
    assert result.output == ("Error: The executor-inference engine runs fp32 only, not bf16: use "
                             "--engine analysis for bf16.\n")
    result = CliRunner().invoke(cli, ["predict", "-i", str(photos["chelsea"]), "--precision",
                                      "int8"])
    assert result.exit_code == 2
    assert "int8 on the CPU needs a quantized model" in result.output
