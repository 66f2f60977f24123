"""Printing for the CLI: one line per error on stderr, JSON when asked."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from chatmem.errors import SetupError

EXIT_REFUSED = 1
EXIT_USAGE = 2

P = ParamSpec("P")
R = TypeVar("R")


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
        try:
            return command(*args, **kwargs)
        except CliError as exc:
            _print_error(exc.message, exc.hint)
            raise typer.Exit(exc.code) from None
        except SetupError as exc:
            _print_error(str(exc), None)
            raise typer.Exit(EXIT_REFUSED) from None

    return wrapper


def _print_error(message: str, hint: str | None) -> None:
    line = f"error: {message}"
    if hint:
        line += f" (hint: {hint})"
    typer.echo(line, err=True)


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table (no colours: it reads the same in a pipe)."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def is_tty() -> bool:
    return sys.stdin.isatty()
