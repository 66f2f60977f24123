"""Request bodies and parameters, with the older system's camelCase field names.

Strict: a number where a string belongs is refused (400), not coerced.
Unknown fields are ignored, as the older system did.

The schemas state the limits the database enforces (lengths, required,
non-blank, no control characters), so that /openapi.json tells a client
what will be refused; the database stays the one that decides.  The
patterns spell out PostgreSQL's own character classes as the default
embedded cluster sees them (C.UTF-8): ``[:cntrl:]`` is U+0000-U+001F and
U+007F-U+009F; ``[:space:]`` is tab to carriage return, the space, and the
Unicode spaces listed in :data:`SPACE`.  tests/test_schemathesis.py holds the
document to them both ways: data it calls valid is accepted, data it calls
invalid is refused.

One check happens here: a JSON string may carry a lone UTF-16 surrogate
(``"\\ud800"``), which is no Unicode character and cannot be stored: refused
with 400 naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# PostgreSQL's [:cntrl:] and [:space:] (C.UTF-8), for the patterns below.
CNTRL = r"\x00-\x1f\x7f-\x9f"
SPACE = r"\t\n\x0b\x0c\r \u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f\u3000"

# Ids (sessions, guests): 1-255 characters, not only spaces, no control characters.
ID_PATTERN = rf"^[^{CNTRL}]*[^{CNTRL} ][^{CNTRL}]*$"
ID_MAX = 255
# A guest id to claim at register/login: empty or 'anonymous' claims nothing.
CLAIM_PATTERN = rf"^[^{CNTRL}]*$"
# Stored text (messages, questions, answers): not blank, no NUL.
TEXT_PATTERN = r"^[^\x00]*[^\x00\t\n\r ][^\x00]*$"
# chatmem_settings.message_max_chars, by default.
TEXT_MAX = 100_000
# Secrets and emails at login: present, no NUL.
PRESENT_PATTERN = r"^[^\x00]*[^\x00 ][^\x00]*$"
EMAIL_PATTERN = rf"^[^@{SPACE}{CNTRL}]+@([^@{SPACE}{CNTRL}.]+\.)+[^@{SPACE}{CNTRL}.]+$"
EMAIL_MAX = 254
NAME_MAX = 200
# chatmem_settings.password_min_length, by default; bcrypt reads 72 bytes.
PASSWORD_MIN = 8
PASSWORD_MAX_BYTES = 72
NO_NUL_PATTERN = r"^[^\x00]*$"
# p_limit and p_before_id: integer and bigint.
LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = 1, 1000, 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ROLES = ("user", "assistant", "system")


def documented(**schema: Any) -> dict[str, Any]:
    """``json_schema_extra``: a limit the document states and the database enforces."""
    return schema


def id_schema(what: str) -> dict[str, Any]:
    return documented(pattern=ID_PATTERN, minLength=1, maxLength=ID_MAX,
                      description=f"{what}: 1-{ID_MAX} characters, not only spaces, no control characters.")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogate_free(value: Any, where: str = "") -> None:
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise ValueError(f"{where or 'the text'} contains a lone UTF-16 surrogate (\\ud800-\\udfff), "
                             "which is no Unicode character")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _surrogate_free(key, "a key")
            _surrogate_free(item, where)
    elif isinstance(value, list):
        for item in value:
            _surrogate_free(item, where)


def _checked(value: Any) -> Any:
    _surrogate_free(value)
    return value


Text = Annotated[str, AfterValidator(_checked)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_checked)]


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class NewSessionBody(Body):
    userId: Text | None = Field(
        default=None, description="A guest id (the X-Anonymous-User-Id header does the same); ignored beside a "
        "Bearer token. 'anonymous' is no identity. 1-255 characters, not only spaces, no control characters.",
        json_schema_extra=documented(pattern=ID_PATTERN, minLength=1, maxLength=ID_MAX))
    context: JsonObject | None = Field(
        default=None, description="Merged into the session's metadata: a JSON object of at most 64 KiB "
        "(as stored) nested at most 32 levels, without NUL characters; an anonymousUserId key is ignored.")


class RegisterBody(Body):
    name: Text = Field(
        description=f"1-{NAME_MAX} characters after trimming spaces, no control characters.",
        json_schema_extra=documented(pattern=ID_PATTERN, minLength=1, maxLength=NAME_MAX))
    email: Text = Field(
        description=f"local@domain.tld, at most {EMAIL_MAX} characters, unique in any letter case; "
        "surrounding spaces are trimmed.",
        json_schema_extra=documented(pattern=EMAIL_PATTERN, minLength=5, maxLength=EMAIL_MAX))
    password: Text = Field(
        description=f"At least chatmem_settings.password_min_length characters (default {PASSWORD_MIN}) and "
        f"at most {PASSWORD_MAX_BYTES} bytes in UTF-8 (bcrypt reads no further); no NUL.",
        json_schema_extra=documented(pattern=NO_NUL_PATTERN, minLength=PASSWORD_MIN,
                                     maxLength=PASSWORD_MAX_BYTES))
    anonymousUserId: Text | None = Field(
        default=None, description="The guest id whose sessions to claim; null, empty or 'anonymous' claims "
        "nothing. At most 255 characters, no control characters.",
        json_schema_extra=documented(pattern=CLAIM_PATTERN, maxLength=ID_MAX))


class LoginBody(Body):
    email: Text = Field(
        description=f"The email registered with (any letter case): not blank, at most {EMAIL_MAX} characters.",
        json_schema_extra=documented(pattern=PRESENT_PATTERN, minLength=1, maxLength=EMAIL_MAX))
    password: Text = Field(
        description="Not empty; no NUL.", json_schema_extra=documented(pattern=r"^[^\x00]+$", minLength=1))
    anonymousUserId: Text | None = Field(
        default=None, description="The guest id whose sessions to claim; null, empty or 'anonymous' claims "
        "nothing. At most 255 characters, no control characters.",
        json_schema_extra=documented(pattern=CLAIM_PATTERN, maxLength=ID_MAX))


class RefreshBody(Body):
    refreshToken: Text = Field(
        description="The refreshToken answered by login, register or refresh; not empty, no NUL.",
        json_schema_extra=documented(pattern=r"^[^\x00]+$", minLength=1))


class MessageBody(Body):
    content: Text = Field(
        description=f"Not blank; at most chatmem_settings.message_max_chars characters (default {TEXT_MAX}); "
        "no NUL.", json_schema_extra=documented(pattern=TEXT_PATTERN, minLength=1, maxLength=TEXT_MAX))
    role: Literal["user", "assistant", "system"] = Field(
        default="user", description="Over HTTP only user turns are accepted (403 otherwise) unless the gateway's "
        "database role is a member of chatmem_assistant.")


class QABody(Body):
    question: Text = Field(
        description=f"Not blank; at most chatmem_settings.message_max_chars characters (default {TEXT_MAX}).",
        json_schema_extra=documented(pattern=TEXT_PATTERN, minLength=1, maxLength=TEXT_MAX))
    answer: Text = Field(
        description=f"Not blank; at most chatmem_settings.message_max_chars characters (default {TEXT_MAX}).",
        json_schema_extra=documented(pattern=TEXT_PATTERN, minLength=1, maxLength=TEXT_MAX))
