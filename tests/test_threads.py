"""Many threads, one Predictor (issue 23): every call gets its own answer, on every engine.

Each thread predicts its own image (a cat, coffee, an astronaut, noise) many times through one
shared Predictor; every result must equal what that image gives alone. Before the engines were
serialized (or given one infer request per call), ``analysis`` handed 20% of the results to the
other thread's image, OpenVINO raised "Infer Request is busy" and the Executor "Another thread
is waiting".
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

import ppinfer
from ppinfer.engines import get_engine
from ppinfer.models.efficientnet import lite0_weights_path

ROUNDS = 25
ENGINES = ["analysis", "executor-inference", "executor-persistable", "onnxruntime", "openvino"]


def _images(photos) -> list[np.ndarray]:
    rgb = [cv2.cvtColor(cv2.imread(str(photos[n])), cv2.COLOR_BGR2RGB)
           for n in ("chelsea", "coffee", "astronaut")]
    noise = np.random.default_rng(7).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    return [*rgb, noise]


def _load(engine: str):
    missing = get_engine(engine).missing()
    if missing:
        pytest.skip(missing)
    if engine == "executor-persistable":
        return ppinfer.load(engine=engine, model_name="EfficientNet_lite0",
                            params_file=lite0_weights_path())
    return ppinfer.load(engine=engine)


def _answers(predictor, images) -> list[tuple[list[int], list[float]]]:
    return [(r.class_ids, r.scores) for r in predictor.predict(images)]


def _hammer(predictor, images, rounds: int) -> tuple[dict[int, list], list[BaseException]]:
    """Thread ``i`` predicts image ``i`` ``rounds`` times; all start together."""
    got: dict[int, list] = {i: [] for i in range(len(images))}
    errors: list[BaseException] = []
    start = threading.Barrier(len(images))

    def work(i: int) -> None:
        try:
            start.wait()
            for _ in range(rounds):
                (result,) = predictor.predict([images[i]])
                got[i].append((result.class_ids, result.scores))
        except BaseException as exc:  # reported below, with the thread's image
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return got, errors


@pytest.mark.parametrize("engine", ENGINES)
def test_threads_sharing_one_predictor_each_get_their_own_images_answer(engine, photos):
    images = _images(photos)
    with _load(engine) as predictor:
        alone = [_answers(predictor, [image])[0] for image in images]
        assert len({tuple(ids) for ids, _ in alone}) > 1, "the images must be told apart"
        got, errors = _hammer(predictor, images, ROUNDS)
    assert not errors, f"{engine}: {errors[0]!r}"
    for i, answers in got.items():
        assert len(answers) == ROUNDS
        for ids, scores in answers:
            assert ids == alone[i][0], f"{engine}: image {i} got another image's classes"
            np.testing.assert_allclose(scores, alone[i][1], atol=1e-5)


def test_two_predictors_on_static_executors_in_two_threads_do_not_share_a_scope(photos):
    """The Executor engines switch Paddle's global scope: two engines at once must not."""
    images = _images(photos)[:2]
    with _load("executor-inference") as a, _load("executor-persistable") as b:
        alone = [_answers(a, [images[0]])[0], _answers(b, [images[1]])[0]]
        results: dict[str, list] = {"a": [], "b": []}
        errors: list[BaseException] = []

        def work(name, predictor, image):
            try:
                for _ in range(ROUNDS):
                    results[name].append(_answers(predictor, [image])[0])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=("a", a, images[0])),
                   threading.Thread(target=work, args=("b", b, images[1]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    assert not errors, repr(errors[0])
    for (ids, scores), expected in ((r, alone[0]) for r in results["a"]):
        assert ids == expected[0]
        np.testing.assert_allclose(scores, expected[1], atol=1e-5)
    for (ids, scores), expected in ((r, alone[1]) for r in results["b"]):
        assert ids == expected[0]
        np.testing.assert_allclose(scores, expected[1], atol=1e-5)


def test_a_predictor_closed_while_another_thread_holds_it_says_so(photos):
    predictor = ppinfer.load()
    predictor.close()
    with pytest.raises(ppinfer.ConfigError, match="closed"):
        predictor.predict([_images(photos)[0]])
