"""Where a password reset token goes: the product's mailer, never the HTTP answer.

``CHATMEM_RESET_MAIL_HOOK`` says how to hand it over:

- an ``http://`` or ``https://`` URL: the gateway POSTs
  ``{"email": ..., "resetToken": ...}`` as JSON to it (10 s timeout; any 2xx is
  success);
- anything else is a command (split like a shell would, run without a shell):
  the same JSON arrives on its stdin, never on its command line, where ``ps``
  would show it to every user of the machine; exit status 0 is success
  (30 s timeout);
- unset: the token is written to the gateway's log at INFO with the address,
  for development only (the gateway says so on one line when it starts).

The hook gets a token for every request, also for an email with no account
(that token resets nothing): send it all the same, so that the time and the
answer never tell whether an account exists.  A hook that fails makes the
request fail with 503 (logged without the token): the same for every email.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import urllib.request
from typing import Final

from starlette.concurrency import run_in_threadpool

HOOK_ENV: Final = "CHATMEM_RESET_MAIL_HOOK"
HTTP_TIMEOUT: Final = 10.0
COMMAND_TIMEOUT: Final = 30.0
DEVELOPMENT_NOTICE: Final = (
    "password reset tokens are written to this log (CHATMEM_RESET_MAIL_HOOK is not set): "
    "for development only, set it to your mailer's command or URL")

log = logging.getLogger("chatmem.gateway.mail")


class MailHookFailed(Exception):
    """The hook did not take the token (the message never holds it)."""


class MailHook:
    """Hands a reset token to the configured hook (see the module's doc)."""

    def __init__(self, setting: str | None) -> None:
        self.setting = (setting or "").strip()
        self.url = self.setting if self.setting.lower().startswith(("http://", "https://")) else None
        self.command = shlex.split(self.setting) if self.setting and self.url is None else None

    @classmethod
    def from_env(cls) -> MailHook:
        return cls(os.environ.get(HOOK_ENV))

    @property
    def development(self) -> bool:
        """True when tokens go to the log."""
        return not self.setting

    def describe(self) -> str:
        if self.url is not None:
            return f"POST to {self.url.split('?', 1)[0]}"
        if self.command is not None:
            return f"command {self.command[0]} (JSON on stdin)"
        return "the gateway's log (development only)"

    async def send(self, email: str, token: str) -> None:
        payload = json.dumps({"email": email, "resetToken": token}).encode()
        if self.url is not None:
            await run_in_threadpool(self._post, self.url, payload)
        elif self.command is not None:
            await self._run(self.command, payload)
        else:
            log.info("password reset for %s: reset token %s (development only: set %s)", email, token, HOOK_ENV)

    @staticmethod
    def _post(url: str, payload: bytes) -> None:
        request = urllib.request.Request(url, data=payload, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as answer:
                status = answer.status
        except Exception as exc:  # HTTPError, URLError, timeout: all one failure
            raise MailHookFailed(f"the reset mail hook URL failed: {type(exc).__name__}") from None
        if not 200 <= status < 300:
            raise MailHookFailed(f"the reset mail hook URL answered {status}")

    @staticmethod
    async def _run(command: list[str], payload: bytes) -> None:
        try:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
        except OSError as exc:
            raise MailHookFailed(f"the reset mail hook command {command[0]} could not start: {exc.strerror}") from None
        try:
            await asyncio.wait_for(process.communicate(payload), COMMAND_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise MailHookFailed(
                f"the reset mail hook command {command[0]} took over {COMMAND_TIMEOUT:.0f} s") from None
        if process.returncode != 0:
            raise MailHookFailed(f"the reset mail hook command {command[0]} exited with {process.returncode}")
