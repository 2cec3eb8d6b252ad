"""What users type, taken as they type it (issue 21): positional inputs and ``--input`` beside
``-i``, global flags after the command, help for every option, help within 80 columns."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from ppinfer.cli import cli

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py


def _commands() -> dict[str, click.Command]:
    return dict(cli.commands)


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_option_of_every_command_says_what_it_does(name):
    command = _commands()[name]
    assert command.help, f"ppinfer {name} has no help"
    silent = [p.opts[0] for p in command.params
              if isinstance(p, click.Option) and not p.hidden and not p.help]
    assert not silent, f"ppinfer {name}: options without help: {silent}"


@pytest.mark.parametrize("name", ["", *sorted(_commands())])
def test_help_fits_in_80_columns(name):
    args = [name, "--help"] if name else ["--help"]
    result = CliRunner().invoke(cli, args, terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    wide = [line for line in result.output.splitlines() if len(line) > 80]
    assert not wide, f"ppinfer {name} --help lines over 80 columns: {wide}"


def test_predict_takes_inputs_as_arguments_as_the_shell_expands_a_glob(photos):
    runner = CliRunner()
    by_argument = runner.invoke(cli, ["predict", str(photos["chelsea"]), str(photos["coffee"]),
                                      "--json"])
    by_option = runner.invoke(cli, ["predict", "-i", str(photos["chelsea"]),
                                    "--input", str(photos["coffee"]), "--json"])
    assert by_argument.exit_code == 0, by_argument.output
    assert by_argument.stdout == by_option.stdout
    names = [json.loads(line)["file_name"] for line in by_argument.stdout.splitlines()]
    assert names == [str(photos["chelsea"]), str(photos["coffee"])]


def test_global_flags_are_taken_after_the_command_too():
    result = CliRunner().invoke(cli, ["predict", "--engine", "nope", "--debug"])
    assert "No such option" not in result.output
    assert "Traceback" in result.stderr and "Unknown engine 'nope'" in result.stderr


def test_debug_shows_the_traceback_and_keeps_the_exit_status(tmp_path):
    plain = CliRunner().invoke(cli, ["predict", "--model", str(tmp_path / "nosuchdir")])
    debug = CliRunner().invoke(cli, ["--debug", "predict", "--model", str(tmp_path / "nosuchdir")])
    assert plain.exit_code == debug.exit_code == 2  # a setup error, with or without --debug
    assert "Traceback" in debug.stderr and "Traceback" not in plain.stderr
    assert debug.stderr.splitlines()[-1] == plain.stderr.strip()


def test_a_global_flag_after_double_dash_stays_an_input(tmp_path):
    result = CliRunner().invoke(cli, ["predict", "--json", "--", "--debug"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["file_name"] == "--debug"


def test_info_names_the_peers_and_opencv_versions():
    from importlib.metadata import version

    result = CliRunner().invoke(cli, ["info", "--json"])
    facts = json.loads(result.stdout)
    assert facts["onnxruntime"] == version("onnxruntime")
    assert facts["openvino"] == version("openvino")
    assert facts["ray"] == version("ray")
    assert facts["opencv"]


@pytest.mark.parametrize(("extra", "says"), [
    (["--labels", "nosuch.txt"], "label file"),
    (["--save", "nodir/r.jsonl"], "Cannot write the --save file nodir/r.jsonl"),
])
def test_a_bad_labels_or_save_path_is_refused_before_any_engine_is_built(
        tmp_path, monkeypatch, extra, says):
    import ppinfer.engines.auto as auto

    monkeypatch.chdir(tmp_path)

    def never(*args, **kwargs):
        raise AssertionError("an engine was measured before the option was checked")

    monkeypatch.setattr(auto, "choose_engine", never)
    result = CliRunner().invoke(cli, ["predict", "--engine", "auto", *extra])
    assert result.exit_code == 2, result.output
    assert says in result.stderr and len(result.stderr.splitlines()) == 1


def test_models_with_a_pattern_nothing_matches_says_so_in_one_sentence():
    result = CliRunner().invoke(cli, ["models", "NoSuchNet*"])
    assert result.exit_code == 2
    assert result.stderr == ("Error: No architecture matches 'NoSuchNet*': `ppinfer models` "
                             "lists them all, by PaddleClas's and PaddleX's names.\n")
