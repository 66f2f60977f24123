"""squawk (a PostgreSQL migration linter) over every forward migration: zero findings.

squawk flags the statements that lock or rewrite a busy table, or that fail
half-way on a rerun.  A finding it reports where the statement is safe is
silenced in the migration itself, by a ``-- squawk-ignore RULE`` (the line
below) or ``-- squawk-ignore-file RULE`` comment, right under a comment that
says why it is safe there; nothing else silences a rule (no config file, no
``--exclude``).  ``make lint`` runs the same check.  squawk-cli is in the dev
extra, which make test installs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatmem import migrate

FORWARD_MIGRATIONS = [p for p in migrate.migration_files() if not p.name.endswith(".rollback.sql")]
# gcc style: one line per finding, "path:line:column: warning: rule message".
FINDING = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<column>\d+): \w+: (?P<rule>[a-z-]+) ")
IGNORE = re.compile(r"^\s*--\s*squawk-ignore(?:-file)?\b(?P<rules>.*)$")


def squawk_binary() -> Path:
    """squawk from the virtualenv running the tests (the dev extra installs it there)."""
    binary = Path(sys.executable).parent / "squawk"
    if not binary.is_file():
        pytest.fail(f"squawk is not installed in this virtualenv (looked for {binary}): "
                    "install the dev extra, e.g. `.venv/bin/pip install -e '.[dev]'` (make test does)",
                    pytrace=False)
    return binary


def squawk(paths: list[Path], tmp_path: Path) -> tuple[int, list[str], str]:
    """Run squawk on ``paths``: (exit status, finding lines, all output).  It runs from an
    empty folder with an empty config file, so only comments in the files can silence a rule."""
    config = tmp_path / "squawk.toml"
    config.write_text("")
    done = subprocess.run(
        [str(squawk_binary()), "--config", str(config), "--reporter", "gcc", *map(str, paths)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    output = done.stdout + done.stderr
    return done.returncode, [ln for ln in output.splitlines() if FINDING.match(ln)], output


def test_squawk_finds_nothing_in_any_forward_migration(tmp_path: Path) -> None:
    names = [p.name for p in FORWARD_MIGRATIONS]
    assert len(names) >= 13 and names[0].startswith("0001_") and names[12].startswith("0013_"), names
    status, findings, output = squawk(FORWARD_MIGRATIONS, tmp_path)
    assert findings == [], "squawk:\n" + output
    assert status == 0, "squawk failed:\n" + output


def test_squawk_flags_a_blocking_index_build(tmp_path: Path) -> None:
    """A control: the same run reports a plain CREATE INDEX, so the test above cannot pass by
    running nothing, and its finding lines are the ones the test above looks for."""
    bad = tmp_path / "0099_blocking_index.sql"
    bad.write_text("SET LOCAL lock_timeout = '5s';\nSET LOCAL statement_timeout = '60s';\n"
                   "CREATE INDEX i ON t (c);\n")
    status, findings, output = squawk([*FORWARD_MIGRATIONS, bad], tmp_path)
    assert status != 0, output
    rules = {(Path(m["path"]).name, m["rule"]) for m in map(FINDING.match, findings) if m}
    assert ("0099_blocking_index.sql", "require-concurrent-index-creation") in rules, output
    assert {name for name, _ in rules} == {"0099_blocking_index.sql"}, output


@pytest.mark.parametrize("path", FORWARD_MIGRATIONS, ids=lambda p: p.name)
def test_every_squawk_ignore_names_its_rules_and_follows_a_reason(path: Path) -> None:
    """A bare ``-- squawk-ignore-file`` would silence every rule; an ignore with no comment
    above it would silence one without saying why."""
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        ignore = IGNORE.match(line)
        if ignore is None:
            continue
        assert re.search(r"[a-z]+(-[a-z]+)+", ignore["rules"]), f"{path.name}:{number}: names no rule: {line}"
        above = lines[number - 2] if number > 1 else ""
        assert above.lstrip().startswith("--") and not IGNORE.match(above) and len(above.strip()) > 3, (
            f"{path.name}:{number}: {line.strip()} has no comment right above it saying why it is safe there")
