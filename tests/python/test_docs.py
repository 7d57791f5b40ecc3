"""The documentation against the code.

- Every public function of schema eventstore (one that eventstore_reader,
  eventstore_writer or eventstore_admin may execute) carries a COMMENT (what
  `\\df+` shows) and has its own section in docs/sql-reference.md; every table
  and view the roles may read has a section too; and every section there names
  an object that exists. docs/python.md lists exactly the package's top-level exports.
- The README's tour runs: its ```sql blocks in order in one fresh database with
  the schema and the Order example (what the tour's set-up installs), then its
  ```python blocks as scripts with DATABASE_URL pointing at that database. A
  block that is meant to fail is marked by `<!-- expect-error: CODE -->` on the
  line before it, and must fail with that SQLSTATE.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pg_eventstore

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SQL_REFERENCE = ROOT / "docs" / "sql-reference.md"

ROLES = ["eventstore_reader", "eventstore_writer", "eventstore_admin"]

# The functions the design contract names: the query below must find at least these.
CONTRACT_FUNCTIONS = {
    "append_events",
    "load_events",
    "read_all",
    "register_aggregate_type",
    "load_aggregate",
    "aggregate_state_at",
    "aggregate_state_at_version",
    "register_projection",
    "run_projection",
    "rebuild_projection",
}

PUBLIC_FUNCTIONS = """
SELECT p.proname, p.oid::regprocedure::text, pg_catalog.obj_description(p.oid, 'pg_proc')
FROM pg_catalog.pg_proc AS p
WHERE p.pronamespace = 'eventstore'::regnamespace
  AND EXISTS (
      SELECT FROM unnest(%(roles)s::text[]) AS r (role)
      WHERE pg_catalog.has_function_privilege(r.role, p.oid, 'EXECUTE')
  )
ORDER BY 2
"""

READABLE_RELATIONS = """
SELECT c.relname
FROM pg_catalog.pg_class AS c
WHERE c.relnamespace = 'eventstore'::regnamespace
  AND c.relkind IN ('r', 'p', 'v', 'm')
  AND pg_catalog.has_table_privilege('eventstore_reader', c.oid, 'SELECT')
ORDER BY 1
"""

# Every object of the schema a section heading may name.
SCHEMA_OBJECTS = """
SELECT p.proname FROM pg_catalog.pg_proc AS p WHERE p.pronamespace = 'eventstore'::regnamespace
UNION
SELECT c.relname FROM pg_catalog.pg_class AS c WHERE c.relnamespace = 'eventstore'::regnamespace
UNION
SELECT t.typname FROM pg_catalog.pg_type AS t WHERE t.typnamespace = 'eventstore'::regnamespace
"""

SECTION = re.compile(r"^#{2,4} `?eventstore\.([a-z_][a-z0-9_]*)`?\s*$", re.MULTILINE)


def documented_sections() -> set[str]:
    return set(SECTION.findall(SQL_REFERENCE.read_text()))


def test_every_public_function_has_a_comment_and_a_section_in_the_sql_reference(
    conn: psycopg.Connection[Any],
) -> None:
    functions = conn.execute(PUBLIC_FUNCTIONS, {"roles": ROLES}).fetchall()
    names = {name for name, _, _ in functions}
    assert names >= CONTRACT_FUNCTIONS, f"not executable by any role: {sorted(CONTRACT_FUNCTIONS - names)}"

    uncommented = [signature for _, signature, comment in functions if not (comment or "").strip()]
    assert uncommented == [], f"public functions without COMMENT ON FUNCTION: {uncommented}"

    sections = documented_sections()
    undocumented = sorted(names - sections)
    assert undocumented == [], f"public functions without a '### eventstore.<name>' section: {undocumented}"


def test_every_readable_table_and_view_has_a_section_in_the_sql_reference(conn: psycopg.Connection[Any]) -> None:
    relations = {name for (name,) in conn.execute(READABLE_RELATIONS)}
    assert {"domain_events", "projection_status"} <= relations
    undocumented = sorted(relations - documented_sections())
    assert undocumented == [], f"tables and views without a '### eventstore.<name>' section: {undocumented}"


def test_every_section_of_the_sql_reference_names_an_existing_object(conn: psycopg.Connection[Any]) -> None:
    existing = {name for (name,) in conn.execute(SCHEMA_OBJECTS)}
    stale = sorted(documented_sections() - existing)
    assert stale == [], f"sections of docs/sql-reference.md about objects that do not exist: {stale}"


def test_the_python_docs_list_exactly_the_top_level_exports() -> None:
    text = (ROOT / "docs" / "python.md").read_text()
    listed = re.search(r"from pg_eventstore import \((.*?)\)", text, re.DOTALL)
    assert listed, "docs/python.md lost its list of the package's exports"
    names = {name.strip() for name in re.sub(r"#.*", "", listed.group(1)).replace("\n", ",").split(",")}
    assert names - {""} == set(pg_eventstore.__all__)


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int
    expect_error: str | None


FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
EXPECT_ERROR = re.compile(r"<!--\s*expect-error:\s*(\w{5})\s*-->\s*$")


def readme_blocks(language: str) -> list[Block]:
    """The README's fenced blocks of one language, in order, with their expect-error marks."""
    text = README.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = EXPECT_ERROR.search(before)
        line = text.count("\n", 0, match.start()) + 1
        block = Block(match.group(1), match.group(2), line, mark.group(1) if mark else None)
        if block.expect_error and block.language != "sql":
            pytest.fail(f"README.md:{block.line}: expect-error marks only ```sql blocks")
        if block.language == language:
            blocks.append(block)
    return blocks


def test_every_expect_error_mark_is_on_the_line_before_a_block() -> None:
    text = README.read_text()
    marks = len(re.findall(r"<!--\s*expect-error:", text))
    marked = [block for block in readme_blocks("sql") if block.expect_error]
    assert marks == len(marked), "an expect-error mark that is not right before a ```sql block is ignored"


def run_sql_tour(dsn: str) -> list[Block]:
    """Run the README's SQL blocks in order; returns the blocks that failed as marked."""
    blocks = readme_blocks("sql")
    assert len(blocks) >= 10, "the README's SQL tour has gone missing"
    failed_as_marked = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for block in blocks:
            if block.expect_error is None:
                try:
                    conn.execute(block.code.encode())
                except psycopg.Error as error:
                    pytest.fail(f"README.md:{block.line}: the ```sql block fails with {error.sqlstate}: {error}")
                continue
            with pytest.raises(psycopg.Error) as raised:
                conn.execute(block.code.encode())
            assert raised.value.sqlstate == block.expect_error, (
                f"README.md:{block.line}: expected {block.expect_error}, got {raised.value.sqlstate}: {raised.value}"
            )
            failed_as_marked.append(block)
    return failed_as_marked


def test_readme_sql_tour_runs(orders_dsn: str) -> None:
    # The tour's set-up installs the schema and examples/orders/orders.sql, as the fixture does.
    assert "-f examples/orders/orders.sql" in README.read_text()
    failed = run_sql_tour(orders_dsn)
    assert [block.expect_error for block in failed] == ["ES001"], "the tour shows one concurrency conflict"

    with psycopg.connect(orders_dsn) as conn:
        status = conn.execute("SELECT name, mode, state, lag FROM eventstore.projection_status ORDER BY name")
        assert status.fetchall() == [
            ("order_projections", "inline", "running", 0),
            ("revenue_by_day", "async", "running", 0),
        ]
        read_model = conn.execute("SELECT order_number, status, version FROM orders.order_projections")
        assert read_model.fetchall() == [("ORD-1001", "shipped", 1)]


def test_readme_python_tour_runs(orders_dsn: str) -> None:
    run_sql_tour(orders_dsn)  # the Python tour runs in the database the SQL tour left behind
    blocks = readme_blocks("python")
    assert len(blocks) >= 2, "the README's Python tour has gone missing"
    env = {**os.environ, "DATABASE_URL": orders_dsn}
    for block in blocks:
        # From the repository root with the script's directory first on sys.path, as `python tour.py` there.
        result = subprocess.run(
            [sys.executable, "-c", block.code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"README.md:{block.line}: the ```python block failed:\n{result.stderr}"

    with psycopg.connect(orders_dsn) as conn:
        orders = conn.execute("SELECT count(*) FROM eventstore.streams WHERE aggregate_type = 'Order'").fetchone()
        assert orders == (3,), "the SQL tour places one order and each Python block one more"
