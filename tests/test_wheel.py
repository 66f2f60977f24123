"""The wheel works on its own: built, installed in a fresh virtualenv, run outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_wheel_installs_and_migrates_from_outside_the_checkout(
    tmp_path: Path, scratch_db: str
) -> None:
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        cwd=tmp_path)
    [wheel] = dist.glob("chatmem-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "chatmem/py.typed" in names
    assert "chatmem/client.py" in names
    assert any(n.startswith("chatmem/db/migrations/") and n.endswith(".sql") for n in names)
    assert any(n.startswith("chatmem/db/functions/") and n.endswith(".sql") for n in names)

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    bin_dir = venv / "bin"
    run([str(bin_dir / "pip"), "install", "-q", str(wheel)], cwd=tmp_path)

    # A folder that is not the checkout, and an environment that points nowhere near it.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path),
           "LANG": os.environ.get("LANG", "C.UTF-8")}

    where = run([str(bin_dir / "python"), "-c", "import chatmem; print(chatmem.__file__)"],
                cwd=elsewhere, env=env)
    assert Path(where.strip()).is_relative_to(venv)

    assert "Usage: chatmem" in run([str(bin_dir / "chatmem"), "--help"], cwd=elsewhere, env=env)

    out = run([str(bin_dir / "chatmem"), "migrate", "--database-url", scratch_db],
              cwd=elsewhere, env=env)
    assert "reloaded" in out
    with psycopg.connect(scratch_db) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_proc WHERE pronamespace = to_regnamespace('api')"
        ).fetchone()
    assert row is not None and row[0] > 10

    # The installed client talks to the migrated database.
    version = run([str(bin_dir / "python"), "-c",
                   "import sys, chatmem\n"
                   "with chatmem.Client(sys.argv[1], max_size=1) as c: print(c.schema_version())",
                   scratch_db], cwd=elsewhere, env=env)
    assert version.strip() == sorted(
        p.stem for p in (ROOT / "db" / "migrations").glob("*.sql") if ".rollback" not in p.name
    )[-1]
