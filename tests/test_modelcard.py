"""inference.yml travels both ways: PaddleX / PaddleClas cards drive our preprocessing and labels,
and ours has the keys they read."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.modelfiles.modelcard import read_card
from ppinfer.pipeline.decode import load_image
from ppinfer.pipeline.preprocess import preprocess_image
from ppinfer.pipeline.preprocess_config import PreprocessConfig

from .conftest import CLASS_NUM

PADDLEX_CARD = """\
Global:
  model_name: ResNet50_vd
PreProcess:
  transform_ops:
  - ResizeImage:
      resize_short: 240
  - CropImage:
      size: 224
  - NormalizeImage:
      channel_num: 3
      mean: [0.5, 0.5, 0.5]
      order: ''
      scale: 1.0/255.0
      std: [0.5, 0.5, 0.5]
  - ToCHWImage: null
PostProcess:
  Topk:
    topk: 5
    label_list:
{labels}
"""


@pytest.fixture(scope="module")
def exported(resnet50_vd_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("card") / "model"
    result = CliRunner().invoke(cli, ["export", "-m", "ResNet50_vd", "-p",
                                      str(resnet50_vd_checkpoint), "-o", str(out), "--class-num",
                                      str(CLASS_NUM), "--no-validate"])
    assert result.exit_code == 0, result.output
    return out


def test_a_paddlex_card_drives_preprocessing_and_labels(exported, resnet50_vd_checkpoint, photos,
                                                        tmp_path):
    from ppinfer.models import get_model
    from ppinfer.models.program import build_static_model

    model_dir = tmp_path / "paddlex"
    shutil.copytree(exported, model_dir)
    names = [f"flower {i}" for i in range(CLASS_NUM)]
    (model_dir / "inference.yml").write_text(
        PADDLEX_CARD.format(labels="\n".join(f"    - {n}" for n in names)))
    result = CliRunner().invoke(cli, ["predict", "-i", str(photos["coffee"]), "--model",
                                      str(model_dir), "--json"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output)

    their_preprocess = PreprocessConfig(resize_short=240, mean=(0.5,) * 3, std=(0.5,) * 3)
    program = build_static_model(get_model("ResNet50_vd"), CLASS_NUM)
    program.load_checkpoint(resnet50_vd_checkpoint)
    batch = preprocess_image(load_image(photos["coffee"]), their_preprocess)[None]
    expected = program.run(batch)[0]
    order = np.argsort(-expected, kind="stable")[:5]
    assert line["class_ids"] == order.tolist()
    np.testing.assert_allclose(line["scores"], expected[order], atol=1e-5)
    assert line["label_names"] == [names[i] for i in order]


def test_a_paddleclas_deploy_card_with_a_class_id_map_file(tmp_path):
    (tmp_path / "labels.txt").write_text("0 daisy\n1 rose\n2 tulip\n")
    (tmp_path / "inference.yml").write_text(yaml.safe_dump({
        "PreProcess": {"transform_ops": [{"ResizeImage": {"resize_short": 256}},
                                         {"CropImage": {"size": 224}},
                                         {"NormalizeImage": {"scale": 0.00392157,
                                                             "mean": [0.485, 0.456, 0.406],
                                                             "std": [0.229, 0.224, 0.225],
                                                             "order": ""}},
                                         {"ToCHWImage": None}]},
        "PostProcess": {"name": "Topk", "topk": 3, "class_id_map_file": "labels.txt"},
    }))
    card = read_card(tmp_path / "inference.yml")
    assert card.labels == ["daisy", "rose", "tulip"]
    assert card.topk == 3 and card.preprocess.resize_short == 256


def test_our_card_has_the_keys_paddlex_and_fastdeploy_read(exported):
    doc = yaml.safe_load((exported / "inference.yml").read_text())
    assert doc["Global"]["model_name"] == "ResNet50_vd"
    ops = [next(iter(op)) for op in doc["PreProcess"]["transform_ops"]]
    assert ops == ["ResizeImage", "CropImage", "NormalizeImage", "ToCHWImage"]
    normalize = doc["PreProcess"]["transform_ops"][2]["NormalizeImage"]
    assert set(normalize) >= {"scale", "mean", "std", "order"}
    assert doc["PostProcess"]["Topk"]["topk"] == 5
    assert doc["ppinfer"]["class_num"] == CLASS_NUM


YAML_CASES = [
    "Global: {model_name: ResNet50_vd}\n"
    "PreProcess: {transform_ops: [{ResizeImage: {resize_short: 256}}]}\n",
    "label_list:\n" + "".join(f"- class {i}: a, b\n" for i in range(1000)),
    "a: &x [1]\nb: *x\n",  # alias: refused
    "deep: " + "[" * 10000 + "]" * 10000 + "\n",  # past libyaml's own bound too
    "d: " + "[ " * 63 + "1" + "]" * 63 + "\n",  # 65 levels with the mapping and the scalar
    "d: " + "[ " * 62 + "1" + "]" * 62 + "\n",  # 64: allowed
    "- " * 70 + "x\n",
    "a: [1, 2\n",  # malformed
]


@pytest.mark.parametrize("text", YAML_CASES, ids=range(len(YAML_CASES)))
def test_the_libyaml_and_python_yaml_loaders_accept_and_refuse_the_same_documents(text):
    from ppinfer.io.safe_io import YamlRefused, load_yaml, load_yaml_python

    assert yaml.__with_libyaml__  # PyYAML's wheels bundle libyaml: the fast path is the one run

    def outcome(load):
        try:
            return ("ok", load(text))
        except YamlRefused as exc:
            return ("refused", str(exc))
        except yaml.YAMLError:
            return ("malformed", None)

    assert outcome(load_yaml) == outcome(load_yaml_python)
