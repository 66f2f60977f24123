"""The CLI's state file: what a browser keeps in local storage.

On first use the CLI makes a guest id (a random UUID) and keeps it; after
``register`` or ``login`` it also keeps the user and their tokens.  The file
lives in the user's config folder (``CHATMEM_STATE`` names another), is
written atomically and is readable by its owner only (mode 0600): it holds
tokens.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import typer

from chatmem.errors import SetupError

STATE_ENV = "CHATMEM_STATE"
FILE_MODE = 0o600


@dataclass(frozen=True)
class State:
    """The guest id, and the logged-in user with their tokens (None when logged out)."""

    guest_id: str
    user_id: str | None = None
    name: str | None = None
    email: str | None = None
    token: str | None = None
    refresh_token: str | None = None

    @property
    def logged_in(self) -> bool:
        return self.user_id is not None

    @property
    def identity(self) -> str:
        """The ``p_user_id`` to act as: the user after login, else the guest id."""
        return self.user_id or self.guest_id

    def logged_out(self) -> State:
        """The same guest, with no user and no tokens."""
        return State(guest_id=self.guest_id)

    def with_tokens(self, token: str, refresh_token: str) -> State:
        return replace(self, token=token, refresh_token=refresh_token)


def default_path() -> Path:
    """``$CHATMEM_STATE``, else ``state.json`` in the user's config folder for chatmem."""
    if env := os.environ.get(STATE_ENV):
        return Path(env).expanduser()
    return Path(typer.get_app_dir("chatmem")) / "state.json"


def load(path: Path | None = None) -> State:
    """Read the state, making a new guest id on first use."""
    path = path or default_path()
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _create(path)
    except OSError as exc:
        raise SetupError(f"cannot read the state file {path}: {exc.strerror}") from exc
    try:
        data = json.loads(raw)
        known = {f.name for f in fields(State)}
        state = State(**{k: v for k, v in data.items() if k in known})
        if not isinstance(state.guest_id, str) or not state.guest_id:
            raise ValueError("guest_id is missing")
    except (ValueError, TypeError, AttributeError) as exc:
        raise SetupError(
            f"the state file {path} is damaged ({exc}); delete it to start as a new guest"
        ) from exc
    return state


def save(state: State, path: Path | None = None) -> None:
    """Replace the state file atomically, mode 0600."""
    path = path or default_path()
    tmp = _write_temp(state, path)
    os.replace(tmp, path)


def _create(path: Path) -> State:
    """A new guest; when two processes race for the first use, both keep the first one's id."""
    state = State(guest_id=str(uuid.uuid4()))
    tmp = _write_temp(state, path)
    try:
        os.link(tmp, path)  # fails if another process created the file meanwhile
    except FileExistsError:
        return load(path)
    finally:
        os.unlink(tmp)
    return state


def _write_temp(state: State, path: Path) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise SetupError(f"cannot write the state file {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), FILE_MODE)
            json.dump(asdict(state), out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)
