"""A model whose output is not class scores (issue 23, item 6): an argmax head, one value per
image, a feature map, overflowing logits. Ranking them gave class 0, ``class_1752`` or bare
NaN in the JSON lines with exit 0; now the model is refused in one sentence, exit 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ppinfer.cli import cli

HEADS = ("argmax", "one-value-per-image", "feature-map", "overflowing-logits")


def _save(head: str, directory) -> None:
    """A small real network (a 3x3 convolution and a mean over space: 4 logits) ending in
    ``head``, saved by paddle.jit.save as an inference model."""
    import paddle
    from paddle import nn

    class Net(nn.Layer):
        # the head is an attribute, not a closure: Paddle 2.6's dy2static loses closures
        def __init__(self, head: str) -> None:
            super().__init__()
            self.head = head
            self.conv = nn.Conv2D(3, 4, 3, stride=2)

        def forward(self, x):
            features = self.conv(x)
            logits = paddle.mean(features, axis=[2, 3])
            if self.head == "argmax":
                return paddle.argmax(logits, axis=1)
            if self.head == "one-value-per-image":
                return paddle.mean(logits, axis=1)
            if self.head == "feature-map":
                return features
            if self.head == "overflowing-logits":
                return paddle.exp(logits * 1e4)  # float32 overflows to inf
            return logits

    paddle.seed(0)
    net = Net(head)
    net.eval()
    spec = paddle.static.InputSpec([None, 3, 224, 224], "float32", "x")
    paddle.jit.save(net, str(directory / "inference"), input_spec=[spec])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("heads")
    for head in (*HEADS, "logits"):
        _save(head, root / head)
    return root


def _predict(model, photos, *more):
    return CliRunner().invoke(cli, ["predict", "--model", str(model), "-i",
                                    str(photos["chelsea"]), "-i", str(photos["coffee"]),
                                    "--json", *more])


@pytest.mark.parametrize("head", HEADS)
def test_a_model_whose_output_is_not_class_scores_is_refused_in_one_sentence(models, photos,
                                                                             head):
    result = _predict(models / head, photos)
    assert result.exit_code == 2, result.output  # was 0, with class 0 / class_1752 / NaN
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: The model's ")
    expected = {"argmax": "is [1] int64, not class scores ([N, C] floats, C >= 2): it looks "
                          "like class ids (an argmax head)",
                "one-value-per-image": "is [1] float32, not class scores",
                "feature-map": "it looks like a feature map",
                "overflowing-logits": "scores hold an infinity (image 0 of the batch)"}[head]
    assert expected in line


def test_a_model_ending_in_logits_still_runs(models, photos):
    result = _predict(models / "logits", photos)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [len(line["class_ids"]) for line in lines] == [4, 4]
    assert all(abs(sum(line["scores"]) - 1) < 1e-5 for line in lines)
