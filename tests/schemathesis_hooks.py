"""Schemathesis hooks for tests/test_schemathesis.py (loaded through its config file, not by pytest).

Two exclusions, and why:

- JSON Schema's maxLength counts characters, bcrypt counts bytes.  A register
  password is limited to 72 bytes of UTF-8, which the document states in
  words (and as maxLength 72, which every valid password meets) but no JSON
  Schema keyword can express exactly.  So a password the generator calls
  valid may be 73-288 bytes and rightly refused with 400: such positive
  cases are dropped.  Negative cases keep every password: a refusal is what
  they expect.
- With a Bearer token (the run sets CHATMEM_FUZZ_WITH_TOKEN) the
  X-Anonymous-User-Id header is ignored, as the document says, so a header
  the generator made invalid is not refused there: such cases are dropped.
  The guest run checks the header's limits.
- GET /api/chat/conversations takes ``beforeId`` only with ``before`` (the
  two halves of one cursor), which the parameters' descriptions say but no
  OpenAPI keyword can state for query parameters: a ``beforeId`` alone is
  rightly refused with 400 (22023), so such positive cases are dropped.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from schemathesis.core.parameters import ParameterLocation

PASSWORD_MAX_BYTES = 72


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    meta = case.meta
    if meta is not None and os.environ.get("CHATMEM_FUZZ_WITH_TOKEN") and meta.is_negative_at(
            ParameterLocation.HEADER):
        return False
    if meta is not None and meta.generation.mode.is_negative:
        return True
    query = case.query
    if case.operation.path == "/api/chat/conversations" and isinstance(query, dict) \
            and "beforeId" in query and "before" not in query:
        return False
    body = case.body
    if case.operation.path == "/api/auth/register" and isinstance(body, dict):
        password = body.get("password")
        if isinstance(password, str):
            return len(password.encode("utf-8", "surrogatepass")) <= PASSWORD_MAX_BYTES
    return True
