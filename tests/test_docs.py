"""The SQL API's face stays documented: every function has a comment and a section in docs/api.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg

DOCS = Path(__file__).parent.parent / "docs"


def api_functions(admin: psycopg.Connection[Any]) -> list[tuple[str, str, str | None]]:
    return [
        (str(r[0]), str(r[1]), r[2])
        for r in admin.execute("""
            SELECT p.proname, pg_get_function_identity_arguments(p.oid), obj_description(p.oid, 'pg_proc')
              FROM pg_proc p WHERE p.pronamespace = 'api'::regnamespace ORDER BY 1""").fetchall()
    ]


def test_every_api_function_has_a_comment_naming_its_errors_or_saying_it_never_raises(
        admin: psycopg.Connection[Any]) -> None:
    for name, _, comment in api_functions(admin):
        assert comment and len(comment) > 40, f"api.{name} has no real COMMENT ON FUNCTION"


def test_docs_api_md_has_a_heading_with_every_functions_signature(admin: psycopg.Connection[Any]) -> None:
    headings = [line for line in (DOCS / "api.md").read_text().splitlines() if line.startswith("### `api.")]
    for name, args, _ in api_functions(admin):
        found = [h for h in headings if h.startswith(f"### `api.{name}(")]
        assert found, f"docs/api.md has no section for api.{name}"
        for parameter in (a.split()[0] for a in args.split(", ") if a):
            assert parameter in found[0], f"docs/api.md's api.{name} lacks {parameter}"


def test_every_sqlstate_the_functions_raise_is_in_the_registry() -> None:
    sources = "\n".join(p.read_text() for p in (Path(__file__).parent.parent / "db").rglob("*.sql"))
    registry = (DOCS / "errors.md").read_text()
    raised = set(re.findall(r"ERRCODE = '([0-9A-Z]{5})'", sources))
    assert raised, "no ERRCODE found: the pattern is stale"
    for code in raised:
        assert f"`{code}`" in registry, f"SQLSTATE {code} is raised but not listed in docs/errors.md"


def test_every_api_function_has_its_own_pgtap_file(admin: psycopg.Connection[Any]) -> None:
    pgtap = Path(__file__).parent.parent / "pgtap_tests"
    for name, _, _ in api_functions(admin):
        assert (pgtap / f"{name}.sql").is_file(), f"pgtap_tests/{name}.sql is missing"
