"""The /v1 API: score posts, name the flairs and models served, take delayed labels. Request and response
bodies are the pydantic models `predict()` uses (schemas.py), so the OpenAPI schema and the Python API
cannot drift apart."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query

from hybrid_scorer.serving.dependencies import Caller, State, authorize, require_ready
from hybrid_scorer.serving.schemas import (
    BODY_ERRORS,
    ERRORS,
    BatchItem,
    BatchRequest,
    BatchResponse,
    FeedbackAccepted,
    FeedbackBatch,
    FeedbackInput,
    Flairs,
    PostInput,
    Prediction,
)

scoring = APIRouter(dependencies=[Depends(require_ready), Depends(authorize)], responses=ERRORS)


@scoring.get("/v1/flairs")
def flairs(state: State) -> Flairs:
    """The flairs a post can be given (the served model's; none for a model without the meta group)."""
    models = state.predictor.models
    return Flairs(flairs=(models.hybrid or models.content).flairs())


@scoring.get("/v1/model")
def model(state: State) -> dict[str, Any]:
    """The served models' manifests: version, feature groups, LLM, prompt version, CV metrics."""
    return {
        role: {"version": m.manifest_.version, **m.manifest_.model_dump(mode="json", exclude={"params"})}
        for role, m in state.predictor.models.by_role()
        if m.manifest_ is not None
    }


@scoring.post("/v1/predict", responses=BODY_ERRORS)
async def predict(
    post: PostInput,
    state: State,
    caller: Caller,
    explain: bool = Query(False, description="add contributions by feature group"),
) -> Prediction:
    """Score one post. Without a flair, the post is scored as of unknown flair."""
    return state.observed(await state.predictor.predict_async(post, explain=explain, caller=caller))


@scoring.post("/v1/predict/batch", responses=BODY_ERRORS)
def predict_batch(batch: BatchRequest, state: State, caller: Caller, explain: bool = False) -> BatchResponse:
    """Score up to `max_batch` posts; an invalid post gets its error in place, the others are scored."""
    if len(batch.posts) > state.max_batch:
        raise HTTPException(422, f"at most {state.max_batch} posts per batch, got {len(batch.posts)}")
    results = state.predictor.predict_batch(batch.posts, explain, caller=caller)
    return BatchResponse(
        results=[
            BatchItem(prediction=state.observed(r)) if isinstance(r, Prediction) else BatchItem(error=str(r))
            for r in results
        ]
    )


@scoring.post("/v1/feedback", responses=BODY_ERRORS)
def feedback(item: FeedbackInput, state: State) -> FeedbackAccepted:
    """The realised score of a prediction this service made (its `prediction_id`), for realised quality."""
    return state.feedback([item])


@scoring.post("/v1/feedback/batch", responses=BODY_ERRORS)
def feedback_batch(batch: FeedbackBatch, state: State) -> FeedbackAccepted:
    """Up to 10,000 realised scores at once."""
    return state.feedback(batch.items)
