"""ResNet family: every registered variant runs, and parameters carry PaddleClas's names."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from ppinfer.models import list_models
from ppinfer.models.resnet import ResNet

from .conftest import built as _built
from .conftest import variable_shapes as _shapes

RESNETS = list_models("ResNet*")


def test_the_family_is_registered() -> None:
    expected = [f"ResNet{d}{vd}" for d in (18, 34, 50, 101, 152) for vd in ("", "_vd")]
    assert sorted([*expected, "ResNet200_vd"]) == RESNETS  # PaddleClas has no plain ResNet200


@pytest.mark.parametrize("name", RESNETS)
def test_forward_gives_finite_logits(name: str) -> None:
    x = paddle.to_tensor(np.random.default_rng(0).random((1, 3, 64, 64), dtype="float32"))
    out = _built(name)(x).numpy()
    assert out.shape == (1, 3)
    assert np.isfinite(out).all()


def test_resnet50_vd_names() -> None:
    net = _built("ResNet50_vd")
    shapes = _shapes(net)
    # 3-conv stem; PaddleClas's "bn" + name[3:] turns conv1_1 into bnv1_1.
    assert shapes["conv1_1_weights"] == [32, 3, 3, 3]
    assert shapes["conv1_3_weights"] == [64, 32, 3, 3]
    for suffix in ("scale", "offset", "mean", "variance"):
        assert shapes[f"bnv1_1_{suffix}"] == [32]
    assert "conv1_weights" not in shapes
    # Every stage's first block projects; res2a's shortcut is a plain conv, later ones pool first.
    assert shapes["res2a_branch1_weights"] == [256, 64, 1, 1]
    assert shapes["res3a_branch1_weights"] == [512, 256, 1, 1]
    assert "res2b_branch1_weights" not in shapes
    assert net.blocks.res2a.branch1.pool is None
    assert net.blocks.res3a.branch1.pool is not None
    assert shapes["bn2a_branch2a_scale"] == [64]
    assert shapes["bn2a_branch1_variance"] == [256]
    assert shapes["res5c_branch2c_weights"] == [2048, 512, 1, 1]
    assert shapes["fc_0.w_0"] == [2048, 3]
    assert shapes["fc_0.b_0"] == [3]
    assert len(shapes) == 277  # 53 conv + 53 x 4 batch-norm + 2 fc variables


def test_resnet18_names() -> None:
    shapes = _shapes(_built("ResNet18"))
    assert shapes["conv1_weights"] == [64, 3, 7, 7]
    assert shapes["bn_conv1_scale"] == [64]
    # PaddleClas projects res2a even when channels and stride match (its is_first rule).
    assert shapes["res2a_branch1_weights"] == [64, 64, 1, 1]
    assert shapes["res5b_branch2b_weights"] == [512, 512, 3, 3]
    assert "res5b_branch2c_weights" not in shapes
    assert shapes["fc_0.w_0"] == [512, 3]


@pytest.mark.parametrize(("name", "last_res4"), [("ResNet101", 22), ("ResNet152_vd", 35),
                                                 ("ResNet200_vd", 47)])
def test_deep_resnets_number_res4(name: str, last_res4: int) -> None:
    with paddle.LazyGuard():  # names only
        names = set(_shapes(_built(name)))
    assert "res4a_branch2a_weights" in names
    assert {f"res4b{i}_branch2c_weights" for i in range(1, last_res4 + 1)} <= names
    assert f"res4b{last_res4 + 1}_branch2a_weights" not in names
    assert not any(n.startswith(("res4b_", "res4c", "bn4c")) for n in names)
    assert "res3b_branch2a_weights" in names  # other stages keep letters
    assert "res5c_branch2c_weights" in names


def test_resnet200_vd_runs_res3_to_l() -> None:
    with paddle.LazyGuard():
        names = set(_shapes(_built("ResNet200_vd")))
    assert "res3l_branch2c_weights" in names and "res3m_branch2a_weights" not in names


# ResNet200_vd: the exact count of PaddleClas 2.6's own ResNet200_vd, built from the wheel.
@pytest.mark.parametrize(("name", "count"), [("ResNet50", 25_557_032), ("ResNet50_vd", 25_576_264),
                                             ("ResNet200_vd", 74_738_504)])
def test_parameter_count(name: str, count: int) -> None:
    with paddle.LazyGuard():  # shapes only
        net = _built(name, class_num=1000)
    trainable = sum(int(np.prod(p.shape)) for p in net.parameters() if not p.stop_gradient)
    assert trainable == count


def test_two_instances_in_one_process() -> None:
    """Dygraph normally refuses a parameter name twice; PaddleClas's names are fixed."""
    a = ResNet(18, vd=True, class_num=3)
    b = ResNet(18, vd=True, class_num=3)
    assert _shapes(a) == _shapes(b)
    a.eval()
    b.eval()
    b.set_state_dict(a.state_dict())
    x = paddle.rand([1, 3, 32, 32])
    np.testing.assert_allclose(a(x).numpy(), b(x).numpy(), rtol=1e-6)


def test_unknown_depth_is_refused() -> None:
    with pytest.raises(ValueError, match="depth must be one of"):
        ResNet(20)
