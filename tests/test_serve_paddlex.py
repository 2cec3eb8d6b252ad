"""ppinfer serve speaks PaddleX basic serving's image-classification contract: requests built
with PaddleX's own pydantic schemas (``paddlex.inference.serving.schemas``) are answered with
envelopes those schemas accept, errors included. Runs where PaddleX is installed (CI's PaddleX
venv, .ci/run); skipped elsewhere.
"""

from __future__ import annotations

import base64

import pytest

pytest.importorskip("fastapi")
schemas = pytest.importorskip("paddlex.inference.serving.schemas.image_classification",
                              reason="PaddleX is not installed (CI's PaddleX venv has it)")
models = pytest.importorskip("paddlex.inference.serving.infra.models")

import ppinfer  # noqa: E402
from ppinfer.serving import create_app  # noqa: E402

from .test_serve import call  # noqa: E402


@pytest.fixture(scope="module")
def app():
    with ppinfer.load(engine="analysis") as predictor:
        yield create_app(predictor)


def _post(app, request) -> object:
    body = request.model_dump(exclude_none=True)
    return call(app, lambda client: client.post(schemas.INFER_ENDPOINT, json=body))


def test_paddlex_schemas_accept_the_answer_to_a_request_they_built(app, photos):
    request = schemas.InferRequest(image=base64.b64encode(photos["chelsea"].read_bytes())
                                   .decode(), topk=3)
    answer = _post(app, request)
    assert answer.status_code == 200
    envelope = models.AIStudioResultResponse[schemas.InferResult].model_validate(answer.json())
    assert envelope.errorCode == 0 and envelope.errorMsg == "Success"
    top = envelope.result.categories
    assert len(top) == 3 and top[0].name in ("tiger cat", "tabby, tabby cat", "Egyptian cat")
    assert top[0].score >= top[1].score >= top[2].score


def test_paddlex_schemas_accept_the_error_envelope_of_an_image_that_is_not_one(app):
    request = schemas.InferRequest(image=base64.b64encode(b"not an image").decode())
    answer = _post(app, request)
    assert answer.status_code == 400
    envelope = models.AIStudioNoResultResponse.model_validate(answer.json())
    assert envelope.errorCode == 400 and "OpenCV" in envelope.errorMsg


def test_paddlex_health_route_answers_healthy(app):
    answer = call(app, lambda client: client.get("/health"))
    envelope = models.AIStudioNoResultResponse.model_validate(answer.json())
    assert (envelope.errorCode, envelope.errorMsg) == (0, "Healthy")
