"""Shapes of a site's analytics."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel


class DayCount(BaseModel):
    day: date
    count: int


class QuestionCount(BaseModel):
    question: str
    count: int


class Unanswered(BaseModel):
    question: str
    asked_at: datetime


class Analytics(BaseModel):
    """Computed in-house from the tenant's own tables; no third party sees any of it."""

    days: int
    conversations_per_day: list[DayCount]
    top_questions: list[QuestionCount]
    unanswered: list[Unanswered]
    leads_per_day: list[DayCount]
    leads_total: int
