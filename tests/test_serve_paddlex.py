"""PaddleX users switch by changing a URL (issue 18): requests built with PaddleX 3.7's own
pydantic schemas (`paddlex.inference.serving.schemas.image_classification`), and every answer,
success or failure, validated by PaddleX's own response models. Runs where PaddleX and its
serving extra are installed (CI's PaddleX venv)."""

from __future__ import annotations

import base64

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")


def _paddlex_schemas():
    try:
        from paddlex.inference.serving.infra import models
        from paddlex.inference.serving.schemas import image_classification
    except Exception as exc:  # ImportError, or PaddleX's DependencyError without its extra
        pytest.skip(f"PaddleX's serving schemas are not importable here: {exc}")
    return models, image_classification


def test_paddlex_clients_get_answers_paddlex_s_own_schemas_accept(photos):
    models, schema = _paddlex_schemas()
    import ppinfer
    from ppinfer.serving import create_app

    from .test_serve import Running

    with ppinfer.load(engine="analysis") as predictor:
        want = predictor.predict(str(photos["chelsea"]))[0]
        running = Running(create_app(predictor))
        try:
            url = running.url + schema.INFER_ENDPOINT
            image = base64.b64encode(photos["chelsea"].read_bytes()).decode()
            request = schema.InferRequest(image=image, topk=3, visualize=False)
            ok = httpx.post(url, json=request.model_dump(exclude_none=True))
            bad = httpx.post(url, json=schema.InferRequest(
                image=base64.b64encode(b"no image").decode()).model_dump(exclude_none=True))
        finally:
            running.stop()
    answer = models.AIStudioResultResponse[schema.InferResult].model_validate(ok.json())
    assert [c.id for c in answer.result.categories] == want.class_ids[:3]
    assert [c.name for c in answer.result.categories] == want.label_names[:3]
    assert bad.status_code == 400
    failure = models.AIStudioNoResultResponse.model_validate(bad.json())
    assert failure.errorCode == 400 and "not an image" in failure.errorMsg
