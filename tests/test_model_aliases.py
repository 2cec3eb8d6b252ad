"""Architectures answer to their aliases (PaddleX's names): get_model resolves them, list_models
and `ppinfer models` match them but list the registered name, an unknown name's error suggests
the closest name; export accepts an alias and records PaddleX's name, as PaddleClas's own
export does, and predict reads it back."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.errors import UnknownNameError
from ppinfer.models import get_model, list_models, register_model


def test_paddlex_names_resolve_to_the_paddleclas_architecture():
    assert get_model("PP-LCNet_x1_0").name == "PPLCNet_x1_0"
    assert get_model("PP-HGNetV2-B4").name == "PPHGNetV2_B4"
    assert get_model("PP-HGNetV2-B4") is get_model("PPHGNetV2_B4")


def test_list_models_lists_registered_names_and_matches_aliases():
    everything = list_models()
    assert "PPLCNet_x1_0" in everything and "PP-LCNet_x1_0" not in everything
    assert list_models("PP-HGNetV2-B*") == [f"PPHGNetV2_B{i}" for i in range(7)]
    assert list_models("PP-LCNet_x0_2*") == ["PPLCNet_x0_25"]


def test_an_alias_cannot_take_a_registered_name():
    list_models()  # the families are loaded
    with pytest.raises(ValueError, match="'ResNet50' is registered twice"):
        register_model("SomethingNew", aliases=("ResNet50",))(lambda class_num=1000: None)
    with pytest.raises(ValueError, match="'PP-LCNet_x1_0' is registered twice"):
        register_model("PP-LCNet_x1_0")(lambda class_num=1000: None)
    with pytest.raises(UnknownNameError):
        get_model("SomethingNew")  # a refused registration leaves nothing behind


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [("pp-lcnet_x1_0", "PPLCNet_x1_0"), ("PPHGNetV2-B4", "PPHGNetV2_B4"),
     ("PP-HGNetV2_B5", "PPHGNetV2_B5"), ("PPLCNet_x1_00", "PPLCNet_x1_0")],
)
def test_unknown_name_suggests_the_closest_and_lists_the_valid_ones(typed, suggested):
    with pytest.raises(UnknownNameError) as info:
        get_model(typed)
    message = str(info.value)
    assert message == (f"Unknown model {typed!r}. Did you mean {suggested}? (`ppinfer models` "
                       f"lists the {len(list_models())} architectures ppinfer builds, by "
                       "PaddleClas's and PaddleX's names.)")  # one sentence, not 81 names


def test_models_command_shows_aliases():
    result = CliRunner().invoke(cli, ["models", "PP-LCNet_x1*", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["name"], r["aliases"], r["family"]) for r in rows] == [
        ("PPLCNet_x1_0", ["PP-LCNet_x1_0"], "pp_lcnet"),
        ("PPLCNet_x1_5", ["PP-LCNet_x1_5"], "pp_lcnet"),
    ]
    table = CliRunner().invoke(cli, ["models", "PPHGNetV2_B0"])
    assert table.exit_code == 0
    assert "PP-HGNetV2-B0" in table.output and "232→224" in table.output


def test_paddlex_name_is_an_alias_and_the_name_exports_record():
    spec = get_model("PPLCNet_x1_0")
    assert spec.paddlex_name == "PP-LCNet_x1_0" and spec.card_name == "PP-LCNet_x1_0"
    assert get_model("PPHGNetV2_B2").card_name == "PP-HGNetV2-B2"
    assert get_model("ResNet50_vd").card_name == "ResNet50_vd"  # PaddleX's name is the same


def test_export_accepts_an_alias_and_records_the_paddlex_name(tmp_path, photos):
    import paddle

    paddle.seed(0)
    net = get_model("PPLCNet_x0_25").build(class_num=4)
    ckpt = tmp_path / "lcnet.pdparams"
    paddle.save(net.state_dict(), str(ckpt))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["export", "-m", "PP-LCNet_x0_25", "-p", str(ckpt),
                                      "-o", str(out), "--class-num", "4"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Exported PPLCNet_x0_25 (4 classes")
    card = yaml.safe_load((out / "inference.yml").read_text())
    assert card["Global"]["model_name"] == "PP-LCNet_x0_25"
    result = CliRunner().invoke(cli, ["predict", "-i", str(photos["chelsea"]), "--model", str(out),
                                      "--engine", "all", "--json"])
    assert result.exit_code == 0, result.output  # executor-persistable rebuilt it by that name
    assert "executor-persistable" in result.output


@pytest.mark.parametrize("name", ["SE_ResNet50_vd", "Res2Net50_vd_26w_4s", "EfficientNetB0"])
def test_another_architecture_is_never_offered_as_a_spelling(name):
    from ppinfer.errors import UnknownNameError
    from ppinfer.models import get_model

    with pytest.raises(UnknownNameError) as caught:
        get_model(name)
    assert "Did you mean" not in str(caught.value)
    assert "ppinfer predict --model DIR" in str(caught.value)


@pytest.mark.parametrize(("name", "meant"), [("resnet50-vd", "ResNet50_vd"),
                                             ("ResNt50_vd", "ResNet50_vd"),
                                             ("pplcnet_x1_0", "PPLCNet_x1_0")])
def test_a_misspelling_is_offered_its_name(name, meant):
    from ppinfer.errors import UnknownNameError
    from ppinfer.models import get_model

    with pytest.raises(UnknownNameError, match=f"Did you mean {meant}\\?"):
        get_model(name)
