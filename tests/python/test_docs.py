"""The documentation against the code.

- Every public function of schema eventstore (one that eventstore_reader,
  eventstore_writer or eventstore_admin may execute) carries a COMMENT (what
  `\\df+` shows) and has its own section in docs/sql-reference.md; every table
  and view the roles may read has a section too; and every section there names
  an object that exists. docs/python.md lists exactly the package's top-level exports.
- Every example of README.md and docs/*.md runs as printed and prints what the
  page shows: shell commands (```console), SQL blocks (```sql, through psql) and
  the README's Python scripts, each page in its own fresh database, in document
  order. The conventions and the normalisation of volatile values are described
  in doc_examples.py and docs/operations.md#documentation-examples.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import cloned_database
from doc_examples import ROOT, PageRun, parse, reader_env
from psycopg import sql

import pg_eventstore

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


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


class KnownProductBug(Exception):
    """A documented command that fails because of a product bug being fixed elsewhere."""


# Commands that print what the docs show once a product bug is fixed: (page, command) -> the bug.
# Each makes its page's test an xfail(strict=True): it fails for any other difference, and fails
# when the command starts working, so that the entry is removed with the fix.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def page_param(path: Path) -> object:
    name = str(path.relative_to(ROOT))
    bugs = [reason for (page, _), reason in KNOWN_FAILURES.items() if page == name]
    marks = [pytest.mark.xfail(strict=True, raises=KnownProductBug, reason="; ".join(bugs))] if bugs else []
    return pytest.param(path, id=name, marks=marks)


def databases(server_dsn: str) -> set[str]:
    with psycopg.connect(server_dsn) as conn:
        return {name for (name,) in conn.execute("SELECT datname FROM pg_catalog.pg_database")}


def roles(server_dsn: str) -> set[str]:
    with psycopg.connect(server_dsn) as conn:
        return {name for (name,) in conn.execute("SELECT rolname FROM pg_catalog.pg_roles")}


@pytest.mark.parametrize("path", [page_param(path) for path in PAGES])
def test_every_example_of_the_page_runs_and_prints_what_the_page_shows(
    path: Path, server_dsn: str, template_database: str
) -> None:
    page = parse(path)
    assert page.problems == [], "\n".join(page.problems)
    # A fresh database per page: a clone of the template, or empty when the page installs the schema.
    # Databases the page's commands create are dropped afterwards too.
    existing, existing_roles = databases(server_dsn), roles(server_dsn)
    try:
        with cloned_database(server_dsn, "template1" if page.empty_database else template_database) as page_dsn:
            mismatches = PageRun(page, reader_env(page_dsn)).run()
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            for database in databases(server_dsn) - existing:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            for role in roles(server_dsn) - existing_roles:  # roles are cluster-wide: the page's go too
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))

    known = {command: reason for (file, command), reason in KNOWN_FAILURES.items() if file == page.name}
    unexpected = [m for m in mismatches if m.step.code not in known]
    report = [f"{page.name}:{m.step.line}: `{m.step.code.splitlines()[0]}` {m.message}" for m in unexpected]
    assert report == [], "\n\n".join(report)
    failed_known = {m.step.code for m in mismatches} & known.keys()
    fixed = sorted(known.keys() - failed_known)
    assert fixed == [], f"{page.name}: these commands work now; remove them from KNOWN_FAILURES: {fixed}"
    if failed_known:
        raise KnownProductBug("; ".join(f"`{command}`: {known[command]}" for command in sorted(failed_known)))
