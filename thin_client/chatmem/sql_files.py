"""Locate the SQL sources: inside the installed wheel, or in the checkout."""

from __future__ import annotations

from pathlib import Path

from chatmem.errors import SetupError


def sql_root() -> Path:
    """The folder holding ``migrations/`` and ``functions/``.

    A wheel carries them as ``chatmem/db``; an editable install of a checkout
    reads the top-level ``db/`` folder, two levels above this package.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "db", here.parent.parent / "db"):
        if (candidate / "migrations").is_dir() and (candidate / "functions").is_dir():
            return candidate
    raise SetupError(f"chatmem's SQL files are missing (looked in {here / 'db'}); reinstall chatmem.")


def migrations_dir() -> Path:
    return sql_root() / "migrations"


def function_files() -> list[Path]:
    """Function sources in load order: file names sort by their numeric prefix."""
    return sorted(p for p in (sql_root() / "functions").rglob("*.sql") if p.is_file())
