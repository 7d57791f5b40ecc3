"""docs/architecture.md names files, SQL functions, statements and library methods: each must exist.

The page describes the path of an append, a read and a projection through the tree; a rename that
leaves it behind fails here instead of misleading the next reader.
"""

from __future__ import annotations

import re
import subprocess

from doc_examples import ROOT

import pg_eventstore
from pg_eventstore import queries

PAGE = ROOT / "docs" / "architecture.md"
# A path: words with a slash or a file extension (sql/code/, async_store.py, cli/projections.py).
PATH = re.compile(r"(?<![\w./-])(?:[\w-]+/)*[\w.-]*\w(?:\.(?:py|sql|md)\b|/)")
# A function of the schema: `eventstore.read_all()`, `_feed_page(...)`, `_check_append`.
SQL_FUNCTION = re.compile(r"^(?:eventstore\.)?(?P<name>_?[a-z][a-z_]*)\((?:\.\.\.)?\)$|^(?P<internal>_[a-z_]+)$")
SQL_RELATION = re.compile(r"^eventstore\.(?P<name>[a-z_]+)$")
LIBRARY_ATTRIBUTE = re.compile(r"^(?P<owner>[A-Z]\w+|queries|params|errors)\.(?P<name>\w+)(?:\(\))?$")
# Any other name: a snake_case or CamelCase word (ProjectionWorker, run_python_projection).
NAME = re.compile(r"^(?:[a-z]+_[a-z_]+|[A-Z][a-z]+[A-Z]\w*)$")


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return listed.splitlines()


def sql_text() -> str:
    return "\n".join(path.read_text() for path in sorted((ROOT / "sql").rglob("*.sql")))


def test_every_path_the_page_names_exists() -> None:
    files = tracked_files()
    missing = []
    for path in sorted(set(PATH.findall(PAGE.read_text()))):
        candidates = [path, f"docs/{path}"]
        found = any((ROOT / candidate).exists() for candidate in candidates) or any(
            f"/{path}" in f"/{name}" for name in files
        )
        if not found:
            missing.append(path)
    assert missing == [], f"docs/architecture.md names paths that are not in the tree: {missing}"


def python_text() -> str:
    return "\n".join(path.read_text() for path in sorted((ROOT / "python" / "src").rglob("*.py")))


def test_every_function_statement_and_method_the_page_names_exists() -> None:
    sql, python = sql_text(), python_text()
    spans = set(re.findall(r"`([^`\n]+)`", PAGE.read_text()))
    missing = []
    for span in sorted(spans):
        if function := SQL_FUNCTION.match(span):
            name = function["name"] or function["internal"]
            if not re.search(rf"FUNCTION eventstore\.{name}\(", sql) and not hasattr(pg_eventstore, name):
                missing.append(span)
        elif relation := SQL_RELATION.match(span):
            if not re.search(rf"(TABLE|VIEW) eventstore\.{relation['name']}\b", sql):
                missing.append(span)
        elif attribute := LIBRARY_ATTRIBUTE.match(span):
            owner = attribute["owner"]
            module = {"queries": queries, "params": pg_eventstore.params, "errors": pg_eventstore.errors}.get(owner)
            target = module if module is not None else getattr(pg_eventstore, owner, None)
            if target is None or not hasattr(target, attribute["name"]):
                missing.append(span)
        elif NAME.match(span) and not re.search(rf"\b{span}\b", sql + python):
            missing.append(span)
    assert missing == [], f"docs/architecture.md names what the tree does not have: {missing}"


def test_the_page_is_linked_from_the_readme() -> None:
    assert "(docs/architecture.md)" in (ROOT / "README.md").read_text()
