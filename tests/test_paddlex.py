"""PaddleX both ways, with the real PaddleX and PaddleClas code.

- PaddleX 3.7's ``create_model(model_name, model_dir=...)`` loads what ``ppinfer export`` writes,
  in both program formats, and predicts what ppinfer predicts.
- ppinfer predicts a directory written by PaddleClas's own export code (``dump_infer_config``,
  the writer PaddleX runs when it exports a PaddleClas model) as PaddleX does.
- The ResizeImage spelling ppinfer writes builds in PaddleX's and PaddleClas's preprocessing and
  resizes as ppinfer does.

Runs where PaddleX is installed, with the paddleclas==2.6.0 wheel (``pip install --no-deps``:
only its files are used, never its package ``__init__`` chain): .ci/run makes such a venv with
opencv-contrib-python==4.10.0.84, as PaddleX pins it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip(
    "paddlex",
    reason="PaddleX is not installed (these tests run in .ci/run's PaddleX venv: paddlex==3.7.x, "
    "opencv-contrib-python==4.10.0.84, pypdfium2)",
)

from ppinfer.cli import cli  # noqa: E402
from ppinfer.pipeline.decode import load_image  # noqa: E402
from ppinfer.pipeline.preprocess import preprocess_image  # noqa: E402
from ppinfer.pipeline.preprocess_config import (  # noqa: E402
    BACKENDS,
    INTERPOLATIONS,
    PreprocessConfig,
)

MODEL = "MobileNetV3_small_x0_35"  # the same name in PaddleClas, PaddleX and ppinfer
CLASS_NUM = 10
SCORE_ATOL = 1e-4  # PaddleX rounds its scores to 5 decimals


# --- the PaddleClas wheel's files, imported without its package __init__ chain ---------------

@pytest.fixture(scope="module")
def paddleclas_root() -> Path:
    spec = importlib.util.find_spec("paddleclas")  # locates it; runs no __init__
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the paddleclas==2.6.0 wheel is not installed (pip install --no-deps "
                    "paddleclas==2.6.0): its export code is the reference")
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="module")
def paddleclas(paddleclas_root):
    """``import_module(name)`` for modules of the paddleclas wheel, each package entered
    without running its ``__init__`` (which imports every model, dataset and trainer)."""
    added = []
    for folder in [paddleclas_root, *(p for p in paddleclas_root.rglob("*") if p.is_dir())]:
        if folder.name == "__pycache__":
            continue
        name = ".".join(("paddleclas", *folder.relative_to(paddleclas_root).parts))
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(folder)]
            package.__package__ = name
            sys.modules[name] = package
            added.append(name)
    importlib.import_module("paddleclas.ppcls.utils.logger").init_logger()  # as its Engine does
    yield importlib.import_module
    for name in [n for n in sys.modules if n.startswith("paddleclas.")] + ["paddleclas"]:
        sys.modules.pop(name, None)


# --- models ------------------------------------------------------------------------------------

def _calibrate_batch_norm(net, batch: np.ndarray, classifier) -> None:
    """Random weights, BN statistics from the photos (one pass with momentum 0), and a classifier
    scaled so the top scores differ enough for a top-5 comparison to mean something."""
    import paddle

    for layer in net.sublayers():
        if "BatchNorm" in type(layer).__name__:
            layer._momentum = 0.0
    net.train()
    with paddle.no_grad():
        net(paddle.to_tensor(batch))
    net.eval()
    for _ in range(30):
        with paddle.no_grad():
            probs = paddle.nn.functional.softmax(net(paddle.to_tensor(batch))).numpy()
        top = probs.max(axis=1)
        if top.min() >= 0.2 and top.max() <= 0.9:
            break
        factor = 0.8 if top.max() > 0.9 else 1.25
        classifier.weight.set_value(classifier.weight.numpy() * factor)
    ranked = -np.sort(-probs, axis=1)[:, :6]
    gaps = -np.diff(ranked, axis=1) / ranked[:, :-1]
    assert (gaps > 1e-3).all(), "top-5 scores too close for their order to be compared"
    assert len({int(i) for i in probs.argmax(axis=1)}) > 1, "scores do not depend on the input"


def _photo_batch(photos) -> np.ndarray:
    return np.stack([preprocess_image(load_image(p), PreprocessConfig()) for p in photos.values()])


@pytest.fixture(scope="module")
def ppinfer_checkpoint(photos, tmp_path_factory) -> Path:
    """A state dict of ppinfer's own MobileNetV3_small_x0_35, random but calibrated."""
    import paddle

    from ppinfer.models import get_model

    paddle.seed(0)
    net = get_model(MODEL).build(class_num=CLASS_NUM)
    linears = [m for m in net.sublayers() if isinstance(m, paddle.nn.Linear)]
    _calibrate_batch_norm(net, _photo_batch(photos), linears[-1])
    path = tmp_path_factory.mktemp("ckpt") / f"{MODEL}.pdparams"
    paddle.save(net.state_dict(), str(path))
    return path


@pytest.fixture(scope="module")
def labels_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "flowers.txt"
    path.write_text("".join(f"flower {i}\n" for i in range(CLASS_NUM)), encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=["pir", "legacy"])
def ppinfer_export(request, ppinfer_checkpoint, labels_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp(f"export-{request.param}") / MODEL
    result = CliRunner().invoke(cli, [
        "export", "-m", MODEL, "-p", str(ppinfer_checkpoint), "-o", str(out), "--class-num",
        str(CLASS_NUM), "--labels", str(labels_file), "--format", request.param])
    assert result.exit_code == 0, result.output
    return out


def ppinfer_predictions(model_dir: Path, photos) -> list[dict]:
    args = ["predict", "--model", str(model_dir), "--json"]
    for path in photos.values():
        args += ["-i", str(path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def paddlex_predictions(model_name: str, model_dir: Path, photos) -> list[dict]:
    from paddlex import create_model

    model = create_model(model_name=model_name, model_dir=str(model_dir), device="cpu")
    out = []
    for res in model.predict([str(p) for p in photos.values()], batch_size=1):
        out.append({"class_ids": np.asarray(res["class_ids"]).ravel().tolist(),  # (1, k)
                    "scores": np.asarray(res["scores"], dtype=float).ravel().tolist(),
                    "label_names": list(res["label_names"] or [])})
    return out


def assert_same_predictions(ours: list[dict], theirs: list[dict]) -> None:
    assert len(ours) == len(theirs) > 1
    for a, b in zip(ours, theirs):
        assert a["class_ids"] == b["class_ids"], (a, b)
        np.testing.assert_allclose(a["scores"], b["scores"], atol=SCORE_ATOL)
        assert a["label_names"] == b["label_names"]
    assert len({tuple(p["class_ids"]) for p in ours}) > 1  # the photos are told apart


# --- tests -------------------------------------------------------------------------------------

def test_paddlex_loads_ppinfers_export_and_predicts_the_same(ppinfer_export, photos):
    fmt = yaml.safe_load((ppinfer_export / "inference.yml").read_text())["ppinfer"]["format"]
    program = "inference.json" if fmt == "pir" else "inference.pdmodel"
    assert (ppinfer_export / program).is_file()
    assert_same_predictions(ppinfer_predictions(ppinfer_export, photos),
                            paddlex_predictions(MODEL, ppinfer_export, photos))


def test_paddlex_refuses_another_model_name_for_ppinfers_export(ppinfer_export):
    from paddlex import create_model

    with pytest.raises(ValueError, match="mismatch"):
        create_model(model_name="MobileNetV3_small_x0_5", model_dir=str(ppinfer_export),
                     device="cpu")


PADDLECLAS_CONFIG = """
Global:
  image_shape: [3, 224, 224]
  save_inference_dir: ./inference
Arch:
  name: MobileNetV3_small_x0_35
  class_num: 1000
Infer:
  infer_imgs: docs/images/inference_deployment/whl_demo.jpg
  batch_size: 10
  transforms:
    - DecodeImage:
        to_rgb: True
        channel_first: False
    - ResizeImage:
        resize_short: 256
    - CropImage:
        size: 224
    - NormalizeImage:
        scale: 1.0/255.0
        mean: [0.485, 0.456, 0.406]
        std: [0.229, 0.224, 0.225]
        order: ''
    - ToCHWImage:
  PostProcess:
    name: Topk
    topk: 5
    class_id_map_file: {labels}
"""


def _paddleclas_export(paddleclas, paddleclas_root, photos, out: Path, resize: dict) -> None:
    """What PaddleClas's export (run by PaddleX's ``export``) writes: the model with softmax
    through paddle.jit.save (ppcls/engine's export, which the wheel does not ship, does the
    same), and inference.yml from the wheel's own ``dump_infer_config`` given the PaddleClas
    config and ``Global.pdx_model_name``, as PaddleX sets it."""
    import paddle

    config_mod = paddleclas("paddleclas.ppcls.utils.config")
    backbone = paddleclas("paddleclas.ppcls.arch.backbone.legendary_models.mobilenet_v3")
    labels = paddleclas_root / "ppcls" / "utils" / "imagenet1k_label_list.txt"
    config_file = out.parent / f"{MODEL}.yaml"
    config_file.write_text(PADDLECLAS_CONFIG.format(labels=labels), encoding="utf-8")
    overrides = [f"Global.pdx_model_name={MODEL}"]
    overrides += [f"Infer.transforms.1.ResizeImage.{k}={v}" for k, v in resize.items()]
    config = config_mod.get_config(str(config_file), overrides=overrides)

    paddle.seed(1)
    net = getattr(backbone, MODEL)(class_num=1000)
    _calibrate_batch_norm(net, _photo_batch(photos), net.fc)
    model = paddle.nn.Sequential(net, paddle.nn.Softmax(axis=-1))
    model.eval()
    spec = [paddle.static.InputSpec(shape=[None, 3, 224, 224], dtype="float32")]
    paddle.jit.save(paddle.jit.to_static(model, input_spec=spec), str(out / "inference"))
    config_mod.dump_infer_config(config, str(out / "inference.yml"))


@pytest.mark.parametrize("resize", [{}, {"interpolation": "bicubic", "backend": "pil"}],
                         ids=["cv2-default", "pil-bicubic"])
def test_ppinfer_predicts_a_paddleclas_export_as_paddlex_does(paddleclas, paddleclas_root, photos,
                                                             tmp_path, resize):
    out = tmp_path / "inference"
    out.mkdir()
    _paddleclas_export(paddleclas, paddleclas_root, photos, out, resize)
    card = yaml.safe_load((out / "inference.yml").read_text())
    assert card["Global"]["model_name"] == MODEL  # PaddleClas's writer, not ours
    assert len(card["PostProcess"]["Topk"]["label_list"]) == 1000
    ours = ppinfer_predictions(out, photos)
    assert_same_predictions(ours, paddlex_predictions(MODEL, out, photos))
    assert ours[0]["label_names"][0] in card["PostProcess"]["Topk"]["label_list"]


def _paddlex_ops(cfg: PreprocessConfig):
    """PaddleX 3.7's classification preprocessing built from ppinfer's transform_ops."""
    from paddlex.inference.models.image_classification.predictor import ClasRunnerPredictor

    builders = ClasRunnerPredictor._FUNC_MAP  # the functions PaddleX's _build calls
    ops = []
    for entry in cfg.to_paddleclas_ops():
        name, args = next(iter(entry.items()))
        ops.append(builders[name](None, **(args or {}))[1])  # they do not use self
    return ops


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_paddlex_builds_ppinfers_resize_and_gets_the_same_tensor(photos, backend, interpolation):
    cfg = PreprocessConfig(backend=backend, interpolation=interpolation)
    rgb = load_image(photos["chelsea"])
    images = [rgb]
    for op in _paddlex_ops(cfg):
        images = op(images)
    ours = preprocess_image(rgb, cfg)
    assert images[0].shape == ours.shape
    # The same pixels; only the normalisation's float rounding differs.
    np.testing.assert_allclose(images[0], ours, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_paddleclas_deploy_builds_ppinfers_resize(paddleclas, photos, backend, interpolation):
    deploy = paddleclas("paddleclas.deploy.python.preprocess")
    cfg = PreprocessConfig(backend=backend, interpolation=interpolation)
    args = next(op["ResizeImage"] for op in cfg.to_paddleclas_ops() if "ResizeImage" in op)
    if interpolation == "lanczos":
        # No spelling both know: PaddleClas says "lanczos", PaddleX "LANCZOS4"; ppinfer writes
        # PaddleX's, which PaddleClas 2.x refuses.
        with pytest.raises(KeyError):
            deploy.ResizeImage(**args)
        return
    resized = deploy.ResizeImage(**args)(load_image(photos["chelsea"]))
    paddlex_resize = _paddlex_ops(cfg)[0]
    np.testing.assert_array_equal(resized, paddlex_resize([load_image(photos["chelsea"])])[0])


def test_every_architecture_but_the_built_in_is_named_as_paddlex_knows_it():
    from paddlex.modules.image_classification.model_list import MODELS

    from ppinfer.models import get_model, list_models

    unknown = [n for n in list_models() if get_model(n).card_name not in MODELS]
    assert unknown == ["EfficientNet_lite0"]  # PaddleX has no EfficientNet-Lite


@pytest.mark.parametrize(("config", "name"), [
    ("PADDLEX_DOC_ORI", "PP-LCNet_x1_0_doc_ori"),
    ("PADDLEX_TEXTLINE_ORI", "PP-LCNet_x1_0_textline_ori"),
])
def test_paddlex_runs_the_pipeline_classifier_exported_from_its_training_output(
        config, name, photos, tmp_path):
    """PaddleX's training output for its pipeline classifiers (config.yaml as PaddleX's train()
    leaves it, from PaddleX's own config: doc_ori use_last_conv false; textline_ori stride_list
    [2, [2, 1], ...] at 3x80x160; best_model/) exports with ``ppinfer export -c output/``;
    PaddleX loads it by the model's PaddleX name and predicts what ppinfer predicts."""
    import paddle
    import yaml

    from ppinfer.models import get_model

    from . import paddleclas_configs
    from .paddleclas_reference import calibrate_batch_norm, spread_classifier, teach_photos_apart

    text = getattr(paddleclas_configs, config)
    if "pdx_model_name" not in text:  # what PaddleX's train() adds to the config it keeps
        text = text.replace("  image_shape:", f"  pdx_model_name: {name}\n  image_shape:", 1)
    arch = yaml.safe_load(text)["Arch"]
    spec = get_model(arch["name"])
    paddle.seed(1)
    net = spec.build(class_num=arch["class_num"], arguments=spec.arguments(
        {k: v for k, v in arch.items() if k in ("stride_list", "use_last_conv")}))
    preprocess = PreprocessConfig.from_paddleclas_ops(paddleclas_configs.infer_transforms(text))
    batch = paddle.to_tensor(np.stack([preprocess_image(load_image(p), preprocess)
                                       for p in photos.values()]))
    calibrate_batch_norm(net, batch)  # then taught to give the photos their own classes
    teach_photos_apart(net, batch)
    calibrate_batch_norm(net, batch)
    spread_classifier(net, net.fc, batch, low=0.5, high=0.95)
    output = tmp_path / "output"
    (output / "best_model").mkdir(parents=True)
    (output / "config.yaml").write_text(text, encoding="utf-8")
    paddle.save(net.state_dict(), str(output / "best_model" / "best_model.pdparams"))
    out = tmp_path / "exported"
    result = CliRunner().invoke(cli, ["export", "-c", str(output), "-o", str(out)])
    assert result.exit_code == 0, result.output
    ours = ppinfer_predictions(out, photos)
    theirs = paddlex_predictions(name, out, photos)
    assert len(ours) == len(theirs) == len(photos)
    assert len({line["class_ids"][0] for line in ours}) > 1  # the photos are told apart
    for a, b in zip(ours, theirs):
        assert a["class_ids"][:1] == b["class_ids"][:1], (a, b)  # the card's topk is 1
        np.testing.assert_allclose(a["scores"][:1], b["scores"][:1], atol=SCORE_ATOL)


def test_export_knows_every_model_paddlex_lists_for_image_classification():
    """PaddleX 3.7's own list (its module configs, one per model) against ppinfer's registry:
    every name resolves to an architecture ppinfer builds (docs/export.md, Architectures)."""
    from ppinfer.models import get_model

    spec = importlib.util.find_spec("paddlex")
    configs = Path(spec.origin).parent / "configs" / "modules" / "image_classification"
    names = sorted(p.stem for p in configs.glob("*.yaml"))
    assert len(names) >= 80, names
    missing = []
    for name in names:
        try:
            get_model(name)
        except Exception:  # noqa: BLE001 - a name ppinfer does not know
            missing.append(name)
    assert missing == []
