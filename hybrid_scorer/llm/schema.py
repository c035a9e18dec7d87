"""PostAssessment: the one JSON schema every backend is constrained by and validated against."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


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


class PostAssessment(BaseModel):
    """An LLM's reading of a post. Out-of-range values fail validation; they are never clamped.

    Field order is generation order: the ratings come first and the topic last, so a backend that
    guesses the ratings (the embedded one) reads every field in the post's own forward pass; the topic,
    an open choice among 14 values, is only ever read, never fed back."""

    model_config = ConfigDict(extra="forbid")

    question_clarity: int = Field(ge=1, le=5, description="1 = vague or confused, 5 = precise and well posed.")
    novelty: int = Field(ge=1, le=5, description="1 = asked all the time, 5 = rarely asked, surprising.")
    predicted_interest: int = Field(ge=1, le=5, description="1 = few readers care, 5 = front-page material.")
    topic: Topic = Field(description="The scientific field the question belongs to.")
