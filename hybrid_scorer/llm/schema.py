"""PostAssessment: the one JSON schema every backend is constrained by and validated against.

A prompt version may add yes/no questions (`questions.json` beside its text): the schema is then
PostAssessment plus one `Answer` field per question, so the design card's four fields stay either way."""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model


class Topic(StrEnum):
    PHYSICS = "physics"
    BIOLOGY = "biology"
    MEDICINE = "medicine"
    HUMAN_BODY = "human body"
    CHEMISTRY = "chemistry"
    ASTRONOMY = "astronomy"
    EARTH_SCIENCES = "earth sciences"
    ENGINEERING = "engineering"
    MATHEMATICS = "mathematics"
    COMPUTING = "computing"
    PSYCHOLOGY = "psychology"
    NEUROSCIENCE = "neuroscience"
    SOCIAL_SCIENCE = "social science"
    OTHER = "other"


RATING_FIELDS = ("question_clarity", "novelty", "predicted_interest")
RATING_SCALE = range(1, 6)  # the one place the ratings' 1-5 scale is chosen: the schema, the digits, the mock
QUESTION_PREFIX = "q_"  # yes/no answers as table columns, see question_columns

Rating = Annotated[int, Field(ge=RATING_SCALE.start, le=RATING_SCALE.stop - 1)]


class PostAssessment(BaseModel):
    """An LLM's reading of a post. Out-of-range values fail validation; they are never clamped.

    Field order is generation order: the ratings come first and the topic last, so a backend that
    guesses the ratings (the embedded one) reads every field in the post's own forward pass; the topic,
    an open choice among 14 values, is only ever read, never fed back."""

    model_config = ConfigDict(extra="forbid")

    question_clarity: Rating = Field(description="1 = vague or confused, 5 = precise and well posed.")
    novelty: Rating = Field(description="1 = asked all the time, 5 = rarely asked, surprising.")
    predicted_interest: Rating = Field(description="1 = few readers care, 5 = front-page material.")
    topic: Topic = Field(description="The scientific field the question belongs to.")


class Answer(StrEnum):
    """A yes/no question's answer."""

    NO = "no"
    YES = "yes"


ANSWERS = [a.value for a in Answer]  # "no" first: the embedded backend guesses it (its usual answer)


@cache
def assessment_model(questions: tuple[tuple[str, str], ...] = ()) -> type[PostAssessment]:
    """PostAssessment, plus a yes/no field per (name, question) pair, the question sent as its description."""
    if not questions:
        return PostAssessment
    fields: dict[str, Any] = {name: (Answer, Field(description=text)) for name, text in questions}
    return create_model("QuestionedAssessment", __base__=PostAssessment, **fields)


def question_columns(name: str) -> tuple[str, str]:
    """A question's columns in the extraction table: its answer (1 = yes) and P(yes)."""
    return f"{QUESTION_PREFIX}{name}", f"{QUESTION_PREFIX}{name}_expected"


def question_fields(model: type[BaseModel]) -> list[str]:
    """The yes/no fields of an assessment model, in schema order."""
    return [name for name, info in model.model_fields.items() if info.annotation is Answer]
