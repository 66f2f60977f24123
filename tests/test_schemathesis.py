"""The gateway against its own OpenAPI document: Schemathesis, every check, a fixed seed, bounded.

Two runs against a real gateway (tests/gateway_server.py) connected as a
login role in chatmem_app only: one as a guest (an X-Anonymous-User-Id
header, no token), one with a Bearer token that Schemathesis gets by logging
in (and gets again when its own fuzzing of /api/auth/logout revokes it).
Each run generates from the document: examples that it calls valid must be
accepted (no 400), invalid ones refused with a 4xx, every answer must match
its documented status, schema and headers, and no input may ever get a 5xx.

Zero failures of any check, with these exclusions, each for a reason:

- The guest run sends no token and does not sign up by itself
  (``auto-signup = false``, ``with-security-parameters = false``): the
  Bearer run covers tokens.
- No NUL characters are generated (``allow-x00 = false``).  The document
  forbids them where JSON Schema can say so (every string field's pattern),
  but not inside ``context``, a free-form JSON object, where only a recursive
  schema could, which generated clients and Schemathesis's own generator
  handle badly.  The description says it in words; the database refuses a
  NUL there with 400 (22P05), which tests/test_gateway.py checks.
- A body larger than the gateway's limit is refused with 413, which
  Schemathesis does not count among the statuses that refuse invalid data
  unless told (``expected-statuses``); the document lists 413.
- tests/schemathesis_hooks.py drops register passwords that the generator
  calls valid but that are over 72 bytes of UTF-8 (JSON Schema counts
  characters, bcrypt bytes: see that file), and, in the Bearer run, invalid
  X-Anonymous-User-Id headers: beside a valid token the header is ignored, as
  the document says, so its limits are checked by the guest run only; and
  a conversations page with ``beforeId`` but no ``before`` (two halves of one
  cursor, which OpenAPI cannot tie together; the descriptions say it).

Bounded: ``--max-examples`` per operation, no shrinking, no example
database, and a time limit per run; each run takes one to two
minutes (they print their case counts and times; run pytest with -s).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import login_role_url
from gateway_server import running_gateway
from helpers import settings_changed

SEED = 20261130
MAX_EXAMPLES = 60
RUN_TIMEOUT = 300  # seconds: a run that takes longer fails the test (each takes 60-150 s, 23 operations)
HOOKS = Path(__file__).parent / "schemathesis_hooks.py"
PASSWORD = "fuzz-password-1"
# The gateway's operations, every one tested: 11, GET /api/chat/allowance and 5
# conversation routes (issue 12), and 7 account routes (issue 13).
OPERATIONS = 24
# Cases a run makes at least: 100 for each of the 11 first routes, 50 for each
# later one (several take no input but a token or the guest header, and make few).
MIN_CASES = 11 * 100 + 13 * 50


@pytest.fixture(scope="module")
def fuzzed(app_url: str, admin_url: str) -> Iterator[str]:
    """A gateway for the fuzzer, on a test database that lets it work fast and unthrottled.

    bcrypt at cost 4; the guest cap and the login throttle out of the way (the
    fuzzer opens thousands of sessions and fails many logins: it would get
    only 429s after a while, which is correct but tests nothing more).
    """
    # POST /api/auth/oidc with a broker pool and a provider whose key set is
    # never fetched: no token the fuzzer makes names its issuer (401 first).
    broker = login_role_url(admin_url, "chatmem_test_broker", ("chatmem_identity_broker",))
    provider = '[{"issuer": "https://idp.example.test", "audience": "fuzz", "jwksUrl": "http://127.0.0.1:9/"}]'
    with settings_changed(admin_url, bcrypt_cost=4, guest_sessions_per_hour=1_000_000,
                          login_failure_limit=1_000_000), \
            running_gateway(app_url, broker_conninfo=broker, oidc_providers=provider,
                            reset_mail_hook="cat") as url:
        yield url


def schemathesis(url: str, config: str, tmp_path: Path, *args: str,
                 env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run ``schemathesis run`` on the gateway's document; return its output and its time."""
    command = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    config_file = tmp_path / "schemathesis.toml"
    config_file.write_text(config)
    started = time.monotonic()
    done = subprocess.run(
        [command, "--config-file", str(config_file), "run", f"{url}/openapi.json",
         "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--no-shrink",
         "--request-timeout", "30", *args],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})},
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    (tmp_path / "schemathesis.log").write_text(output)
    assert done.returncode == 0, digest(output)
    return output, elapsed


def digest(output: str) -> str:
    """The failures of a run, each line cut short: its bodies can be megabytes."""
    start = output.find("FAILURES")
    lines = output[start if start >= 0 else 0:].splitlines()
    return "\n".join(line if len(line) <= 400 else line[:400] + " ..." for line in lines)[-30000:]


def summary(output: str, elapsed: float) -> int:
    """Check the run's summary and return how many cases it generated."""
    found = re.search(r"(\d+) generated, (\d+) passed", output)
    assert found, digest(output)
    generated, passed = int(found.group(1)), int(found.group(2))
    assert generated == passed, digest(output)
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested.group(1)) == OPERATIONS, digest(output)
    print(f"\nschemathesis: {generated} cases for {OPERATIONS} operations in {elapsed:.1f} s")
    return generated


def config(generation: str = "", sections: str = "") -> str:
    """The run's schemathesis.toml: what both runs share, plus ``generation`` lines and other ``sections``."""
    return f"""
hooks = "{HOOKS}"

[generation]
allow-x00 = false
database = "none"
{generation}

# Schemathesis's list of statuses that refuse invalid data, plus 413: a body
# larger than the gateway's limit (1 MiB) is refused before it is read, as the
# document says for every route with a body.
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]
{sections}
"""


def test_fuzzed_as_a_guest(fuzzed: str, tmp_path: Path) -> None:
    guest = config(generation="with-security-parameters = false", sections="[auth]\nauto-signup = false")
    output, elapsed = schemathesis(fuzzed, guest, tmp_path, "-H", f"X-Anonymous-User-Id: {uuid.uuid4()}")
    assert summary(output, elapsed) >= MIN_CASES


def test_fuzzed_with_a_bearer_token(fuzzed: str, tmp_path: Path) -> None:
    address = f"fuzz-{uuid.uuid4().hex[:10]}@example.com"
    registered = httpx.post(f"{fuzzed}/api/auth/register",
                            json={"name": "Fuzz", "email": address, "password": PASSWORD}, timeout=30)
    assert registered.status_code == 201, registered.text
    with_token = config(sections=f"""
[auth.dynamic.openapi.bearer]
path = "/api/auth/login"
payload = {{ email = "{address}", password = "{PASSWORD}" }}
extract_selector = "/data/token"
""")
    output, elapsed = schemathesis(fuzzed, with_token, tmp_path, env={"CHATMEM_FUZZ_WITH_TOKEN": "1"})
    assert summary(output, elapsed) >= MIN_CASES
