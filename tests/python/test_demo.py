"""make demo, make demo-env and make demo-clean as a user runs them, and the next steps the demo prints."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict
from test_cli import ENV, ROOT

# The outer make's settings stay out of the make runs here.
MAKE_ENV = {key: value for key, value in ENV.items() if not key.startswith("MAKE") and key != "MFLAGS"}
DEMO_ARGS = "DEMO_ARGS=--orders 20 --history 150 --workers 2"
# A root shell's PATH on Debian: without the venv, so the printed lines must put pg-eventstore on it.
SHELL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=MAKE_ENV if env is None else env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def next_steps(output: str) -> list[str]:
    """The commands the demo's closing hint prints: the indented lines after 'Next steps'."""
    lines = output.split("Next steps", 1)[1].splitlines()[1:]
    return [line.strip() for line in lines if line.startswith("  ")]


def run_as_printed(commands: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The commands in one bash, in the checkout, as a user pastes them; stops at the first that fails."""
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(commands)],
        cwd=ROOT,
        env={**env, "PATH": SHELL_PATH},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_make_demo_from_a_folder_the_server_cannot_enter_and_its_next_steps(tmp_path: Path) -> None:
    # pytest's tmp_path is in a 0700 folder: the postgres OS user cannot enter it.
    link = tmp_path / "pgdata"
    datadir = f"DEMO_DATADIR={link}"
    try:
        demo = make("demo", datadir, DEMO_ARGS)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "Traceback" not in demo.stdout + demo.stderr
        assert link.is_symlink() and (link / "PG_VERSION").is_file()
        assert not str(link.resolve()).startswith(str(tmp_path))
        steps = next_steps(demo.stdout)
        assert steps[0] == f'eval "$(make -s demo-env {datadir})"'
        assert "pg-eventstore status" in steps

        done = run_as_printed(steps, MAKE_ENV)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "order_projections" in done.stdout and "inline" in done.stdout
        assert "delivered" in done.stdout  # the psql line
        # Again: the kept cluster is reused, and the demo adds orders to it.
        again = make("demo", datadir, DEMO_ARGS)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already installed" in again.stdout
    finally:
        clean = make("demo-clean", datadir)
    assert clean.returncode == 0, clean.stderr
    assert not link.exists() and not link.is_symlink()


def test_make_demo_on_database_url_names_it_and_refuses_other_schemas_without_yes(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA billing")
    env = {**MAKE_ENV, "DATABASE_URL": empty_dsn}
    dbname = conninfo_to_dict(empty_dsn)["dbname"]

    refused = make("demo", DEMO_ARGS, env=env)
    assert refused.returncode != 0
    assert f"the demo writes to database {dbname} on " in refused.stdout
    assert refused.stderr.startswith(f"error: database {dbname} holds schemas the demo did not make (billing)")
    assert "--yes" in refused.stderr
    assert "Traceback" not in refused.stderr
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("SELECT to_regnamespace('eventstore')").fetchone() == (None,), "it wrote nothing"

    done = make("demo", f"{DEMO_ARGS} --yes", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    result = run_as_printed(next_steps(done.stdout), env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "order_projections" in result.stdout


def test_make_demo_env_prints_export_lines_for_database_url() -> None:
    env = {**MAKE_ENV, "DATABASE_URL": "host=db1 dbname=app user=o'neil"}
    printed = make("-s", "demo-env", env=env)
    assert printed.returncode == 0, printed.stderr
    shown = subprocess.run(
        ["bash", "-c", f'{printed.stdout}\necho "$DATABASE_URL"; command -v pg-eventstore'],
        env={"PATH": SHELL_PATH},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert shown == ["host=db1 dbname=app user=o'neil", os.fspath(ROOT / ".venv" / "bin" / "pg-eventstore")]
