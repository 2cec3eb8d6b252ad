"""Every architecture family, driven by the registry: the static inference program that export
and executor-persistable build gives the dygraph network's outputs, with the same variable
names, in every IR this Paddle offers (PIR and legacy on 3.x; legacy on 2.6), and batch norm
uses its running statistics in eval (it neither normalises with, nor updates from, the batch)."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from ppinfer.models import get_model, list_models
from ppinfer.models.program import build_static_model
from ppinfer.runtime.paddle_env import paddle_env

IRS = ["pir", "legacy"] if paddle_env().can_run_pir else ["legacy"]


def one_per_family() -> list[str]:
    """The smallest registered model of each family (keeps the test fast)."""
    from ppinfer.models.info import parameter_count

    smallest: dict[str, tuple[int, str]] = {}
    for name in list_models():
        family, size = get_model(name).family, parameter_count(name)
        smallest[family] = min(smallest.get(family, (size, name)), (size, name))
    return sorted(name for _, name in smallest.values())


def test_every_registered_model_belongs_to_a_family_with_defaults():
    for name in list_models():
        spec = get_model(name)
        assert spec.family in {"resnet", "mobilenet_v3", "efficientnet", "pp_lcnet", "pp_hgnetv2",
                               "clip", "swin_transformer", "pp_hgnet", "pp_lcnet_v2",
                               "mobilenet_v2", "mobilenet_v1", "convnext", "fasternet",
                               "mobilenet_v4", "starnet"}
        # 224, or what the model was trained at (384; MobileNetV4 hybrids 256 and 448)
        assert spec.input_shape in {(3, 224, 224), (3, 256, 256), (3, 384, 384), (3, 448, 448)}
        assert spec.preprocess.crop_size == spec.input_shape[:0:-1]  # (width, height)


@pytest.mark.parametrize("ir", IRS)
@pytest.mark.parametrize("name", one_per_family())
def test_static_program_reproduces_dygraph(name: str, ir: str) -> None:
    rng = np.random.default_rng(0)
    dygraph = get_model(name).build(class_num=3)
    dygraph.eval()
    weights = {}
    for var in dygraph.state_dict().values():
        value = var.numpy()
        if var.name.endswith("_mean"):
            value = rng.normal(0, 0.1, value.shape).astype(value.dtype)
        elif var.name.endswith("_variance"):
            value = rng.uniform(0.5, 1.5, value.shape).astype(value.dtype)
        weights[var.name] = value
        var.set_value(value)
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    expected = paddle.nn.functional.softmax(dygraph(paddle.to_tensor(x)), axis=-1).numpy()

    static = build_static_model(get_model(name), 3, (3, 64, 64), ir=ir)
    assert set(static.expected) == set(weights)
    static.load_state(weights, source="dygraph")
    np.testing.assert_allclose(static.run(x), expected, rtol=1e-4, atol=1e-5)
    # running statistics untouched by the run (transformers and ConvNeXt have none)
    for mean_name in [n for n in weights if n.endswith("_mean")][:1]:
        np.testing.assert_array_equal(
            np.asarray(static.scope.find_var(mean_name).get_tensor()), weights[mean_name])


def test_the_shipped_catalog_is_what_the_registry_gives():
    """`ppinfer models` reads models/catalog.json (no Paddle import): it must be the registry's
    own facts. After adding or changing a family: python -m ppinfer.models.info."""
    from ppinfer.models.info import catalog_rows, registry_rows

    assert catalog_rows() == registry_rows(), "regenerate: python -m ppinfer.models.info"


def test_ppinfer_models_lists_without_importing_paddle():
    import subprocess
    import sys

    code = ("import sys; from ppinfer.cli import main; sys.argv = ['ppinfer', 'models', "
            "'--json']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'paddle' not in sys.modules, 'paddle imported'")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.splitlines()) == len(list_models())
