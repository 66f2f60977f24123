"""Request bodies, with the older system's camelCase field names.

Strict: a number where a string belongs is refused (400), not coerced.
Unknown fields are ignored, as the older system did.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class NewSessionBody(Body):
    userId: str | None = Field(default=None, description="A guest id; ignored beside a Bearer token.")
    context: dict[str, Any] | None = Field(default=None, description="Merged into the session's metadata.")


class RegisterBody(Body):
    name: str
    email: str
    password: str
    anonymousUserId: str | None = Field(default=None, description="The guest id whose sessions to claim.")


class LoginBody(Body):
    email: str
    password: str
    anonymousUserId: str | None = None


class RefreshBody(Body):
    refreshToken: str


class MessageBody(Body):
    content: str
    role: str = "user"


class QABody(Body):
    question: str
    answer: str
