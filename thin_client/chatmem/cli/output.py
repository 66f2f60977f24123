"""Printing for the CLI: one line per error on stderr, JSON when asked."""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import inspect
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn, ParamSpec, TypeVar
from uuid import UUID

import psycopg
import typer
from typer.core import TyperGroup

from chatmem.api_errors import ChatmemError, in_words
from chatmem.errors import SetupError

EXIT_REFUSED = 1
EXIT_USAGE = 2
# The metavar of an on/off flag: none (typer 0.28 and later would show <bool>).
FLAG = ""

# Typer runs on its own copy of click (typer._click) in recent versions, on
# click itself in older ones: take click's exceptions from wherever typer's
# own BadParameter comes from.
_CLICK = typer.BadParameter.__module__.rsplit(".", 1)[0]
_click_exceptions: Any = importlib.import_module(f"{_CLICK}.exceptions")


P = ParamSpec("P")
R = TypeVar("R")

# A server without our functions: the database was never migrated.
_NOT_MIGRATED = {"42883", "3F000"}


class CliError(Exception):
    """A refusal or failure, printed as one line on stderr with its hint."""

    def __init__(self, message: str, hint: str | None = None, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


def fail(message: str, hint: str | None = None, code: int = EXIT_REFUSED) -> NoReturn:
    raise CliError(message, hint, code)


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so the errors chatmem expects end in one line and an exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        for name, value in kwargs.items():
            # Bytes that are not UTF-8 reach Python as lone surrogates
            # (surrogateescape): no text the database could store.
            if isinstance(value, str) and any("\ud800" <= c <= "\udfff" for c in value):
                _print_error(f"{_parameter(name)}: is not valid UTF-8 text",
                             "pass UTF-8 text (is the terminal's encoding UTF-8? e.g. LANG=C.UTF-8)")
                raise typer.Exit(EXIT_USAGE)
        try:
            return command(*args, **kwargs)
        except CliError as exc:
            _print_error(exc.message, exc.hint)
            raise typer.Exit(exc.code) from None
        except SetupError as exc:
            _print_error(str(exc), None)
            raise typer.Exit(EXIT_REFUSED) from None
        except ChatmemError as exc:
            # A refusal by the SQL API: its message names the field, its hint
            # says what to do, both in the CLI's words (flags, commands).
            _print_error(*in_words(exc, "cli"))
            raise typer.Exit(EXIT_REFUSED) from None
        except psycopg.Error as exc:
            _print_error(_describe(exc), _hint_for(exc))
            raise typer.Exit(EXIT_REFUSED) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            # A bug or an environment nobody foresaw: still one line, unless
            # the person asks for the whole story.
            if os.environ.get("CHATMEM_DEBUG"):
                raise
            _print_error(f"unexpected {type(exc).__name__}: {exc}",
                         "run again with CHATMEM_DEBUG=1 for the traceback, and report it")
            raise typer.Exit(EXIT_REFUSED) from None

    return wrapper


def _parameter(name: str) -> str:
    """A command's parameter as the person typed it: ``--email`` for an option, ``TEXT`` for an argument."""
    try:
        context = importlib.import_module(f"{_CLICK}.globals").get_current_context(silent=True)
    except ImportError:
        context = None
    for param in getattr(getattr(context, "command", None), "params", []):
        if param.name == name:
            long_options = [o for o in param.opts if o.startswith("--")]
            return str(long_options[0] if long_options else param.human_readable_name)
    return name


def _describe(exc: psycopg.Error) -> str:
    lines = str(exc).strip().splitlines()
    text = exc.diag.message_primary or (lines[0] if lines else type(exc).__name__)
    return f"{text} (SQLSTATE {exc.sqlstate})" if exc.sqlstate else f"database error: {text}"


def _hint_for(exc: psycopg.Error) -> str | None:
    if exc.sqlstate in _NOT_MIGRATED:
        return "the database has no chatmem API yet: run `chatmem db up` or `chatmem migrate`"
    return exc.diag.message_hint


def _print_error(message: str, hint: str | None) -> None:
    line = f"error: {message}"
    if hint:
        line += f" (hint: {hint})"
    typer.echo(" ".join(line.split()), err=True)


def jsonable(value: Any) -> Any:
    """Dataclasses, UUIDs and datetimes as plain JSON values (ISO 8601 times)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(jsonable(value), indent=2, default=str, ensure_ascii=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table (no colours: it reads the same in a pipe)."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def is_tty() -> bool:
    return sys.stdin.isatty()


class OneLineErrors(TyperGroup):
    """The root command: a usage error (a bad option value, a missing argument) is one line too.

    Click would print the usage, a pointer to --help and the error in a box;
    here it is ``error: <what> (hint: chatmem <command> --help)`` and exit 2,
    like every other refusal of the CLI.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except _click_exceptions.ClickException as exc:
            context = getattr(exc, "ctx", None)
            path = context.command_path if context is not None else (prog_name or "chatmem")
            _print_error(exc.format_message(), f"{path} --help")
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            sys.exit(EXIT_REFUSED)
        sys.exit(result if isinstance(result, int) else 0)


def plain() -> dict[str, Any]:
    """Keyword arguments for a text ``typer.Argument`` whose help shows its name only.

    Typer tags an argument with its Python type (``SESSION_ID <str>``).  Where
    it takes a click type (``click_type``, up to typer 0.27), a copy of click's
    STRING that names no type removes the tag; typer 0.28 and later take no
    click types, and keep it.
    """
    if "click_type" not in inspect.signature(typer.Argument).parameters:
        return {}
    try:
        types: Any = importlib.import_module(f"{_CLICK}.types")
    except ImportError:
        return {}
    kind = copy.copy(types.STRING)
    kind.get_metavar = lambda *args, **kwargs: ""
    return {"click_type": kind}
