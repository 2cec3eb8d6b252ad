"""Scores -> top-k results and the JSON line of CLI.md (ppinfer.pipeline.postprocess)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ppinfer.errors import ConfigError
from ppinfer.pipeline.postprocess import (
    Result,
    is_probabilities,
    results_from_probabilities,
    softmax,
    to_probabilities,
    top_k,
)

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py


def test_top_k_orders_best_first():
    probs = np.array([[0.1, 0.5, 0.05, 0.3, 0.05], [0.6, 0.1, 0.1, 0.1, 0.1]], dtype=np.float32)
    (ids0, scores0), (ids1, scores1) = top_k(probs, 3)
    assert ids0 == [1, 3, 0]
    assert scores0 == pytest.approx([0.5, 0.3, 0.1])
    assert ids1 == [0, 1, 2]  # ties: lower class id first
    assert all(type(i) is int for i in ids0) and all(type(s) is float for s in scores0)


def test_top_k_matches_a_full_sort():
    rng = np.random.default_rng(1)
    probs = softmax(rng.normal(size=(8, 1000)))
    for row, (ids, scores) in zip(probs, top_k(probs, 5)):
        expected = np.argsort(-row, kind="stable")[:5]
        assert ids == expected.tolist()
        assert scores == pytest.approx(row[expected].tolist())


def test_top_k_clips_k_to_the_class_count():
    probs = np.array([[0.2, 0.7, 0.1]])
    assert top_k(probs, 10) == top_k(probs, 3)
    assert top_k(probs, 10)[0][0] == [1, 0, 2]


def test_top_k_accepts_one_row_and_rejects_k_below_one():
    assert top_k(np.array([0.3, 0.7]), 1) == [([1], [pytest.approx(0.7)])]
    with pytest.raises(ConfigError):
        top_k(np.array([[0.3, 0.7]]), 0)


def test_softmax_models_scores_pass_through_unchanged():
    probs = np.array([[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]], dtype=np.float32)
    out = to_probabilities(probs, "softmax")
    assert out.dtype == np.float32 and np.array_equal(out, probs)


def test_bf16_like_probabilities_are_never_softmaxed_twice():
    # oneDNN bf16 rows sum to 1 only within about 1e-3: the model's kind decides, not the sum.
    probs = np.full((1, 1000), 0.0001, dtype=np.float32)
    probs[0, 967] = 0.9466
    assert abs(probs.sum() - 1.0) > 1e-3
    assert to_probabilities(probs, "softmax")[0, 967] == pytest.approx(0.9466)


def test_sigmoid_scores_are_kept_as_they_are():
    scores = np.array([[0.9, 0.8, 0.1]], dtype=np.float32)
    assert np.array_equal(to_probabilities(scores, "sigmoid"), scores)


def test_unknown_output_kind_is_an_error():
    with pytest.raises(ValueError):
        to_probabilities(np.zeros((1, 3)), "probably")


def test_is_probabilities_for_unreadable_programs_only():
    probs = softmax(np.random.default_rng(2).normal(size=(4, 1000))).astype(np.float16)
    assert is_probabilities(probs)
    assert not is_probabilities(np.array([[2.0, 1.0, 0.1]]))


@pytest.mark.parametrize(
    "logits",
    [
        [[2.0, 1.0, 0.1]],  # positive, sums to 3.1
        [[-1.0, 0.5, 1.5]],  # negative
        [[0.2, 0.2, 0.2]],  # non-negative but sums to 0.6
        [[1000.0, 0.0, -1000.0]],  # would overflow a naive exp
        [[0.25, 0.25, 0.5]],  # sums to 1, but the model says logits
    ],
)
def test_logits_get_softmax(logits):
    logits = np.array(logits, dtype=np.float32)
    probs = to_probabilities(logits, "logits")
    assert np.allclose(probs.sum(axis=1), 1.0) and np.isfinite(probs).all()
    assert np.argmax(probs) == np.argmax(logits)
    exp = np.exp(logits.astype(np.float64) - logits.max())
    assert np.allclose(probs, exp / exp.sum(), atol=1e-6)


def test_four_dimensional_output_is_flattened():
    out = np.zeros((2, 5, 1, 1), dtype=np.float32)
    assert to_probabilities(out, "logits").shape == (2, 5)


def test_result_json_shape():
    result = Result(
        file_name="photos/cat.jpg",
        class_ids=[np.int64(282), 285],
        scores=[np.float32(0.38912345678), 0.0000001],
        label_names=["tiger cat", "Egyptian cat"],
    )
    line = result.to_json_dict()
    assert list(line) == ["file_name", "class_ids", "scores", "label_names"]
    assert line == {
        "file_name": "photos/cat.jpg",
        "class_ids": [282, 285],
        "scores": [0.389123, 0.0],
        "label_names": ["tiger cat", "Egyptian cat"],
    }
    assert type(line["class_ids"][0]) is int and type(line["scores"][0]) is float
    assert json.loads(result.to_json_line()) == line


def test_error_result_json_shape():
    result = Result.failed("bad 猫.jpg", "bad 猫.jpg is empty (0 bytes).")
    assert result.to_json_dict() == {
        "file_name": "bad 猫.jpg",
        "error": "bad 猫.jpg is empty (0 bytes).",
    }
    assert "猫" in result.to_json_line()  # kept readable, not \\u-escaped


def test_results_from_probabilities():
    logits = np.array([[0.0, 5.0, 1.0], [4.0, 0.0, 0.0]], dtype=np.float32)
    probs = to_probabilities(logits, "logits")
    results = results_from_probabilities(["a.jpg", "b.jpg"], probs, 2, ["zero", "one", "two"])
    assert [r.file_name for r in results] == ["a.jpg", "b.jpg"]
    assert results[0].class_ids == [1, 2] and results[0].label_names == ["one", "two"]
    assert results[1].label_names == ["zero", "one"]
    assert sum(results[0].scores) < 1.0 and results[0].scores[0] > 0.9
    with pytest.raises(ValueError):
        results_from_probabilities(["a.jpg"], probs, 2, ["zero", "one", "two"])
