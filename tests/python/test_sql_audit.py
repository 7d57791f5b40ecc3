"""Audit of the dynamic SQL in sql/ (state/, code/): names and values reach EXECUTE only through format() with %I / %L
(or as USING parameters). A %s placeholder is allowed only for the reviewed uses listed here, each
a value of a reg* type or an already quoted name. (plpgsql_check's injection check in
tests/sql/code/plpgsql_check.sql looks at the same code from the data-flow side.)"""

from __future__ import annotations

import re
from pathlib import Path

SQL = Path(__file__).resolve().parents[2] / "sql"

# Statement text after EXECUTE: up to the semicolon that ends it (strings may contain ';').
EXECUTE = re.compile(r"\bEXECUTE\s+(?!FUNCTION\b)(?P<statement>.*?);\s*$", re.DOTALL | re.MULTILINE)
VARIABLE = re.compile(r"^(?P<name>v_\w+)\b")
# The outer format string: a quoted or dollar-quoted literal right after format(.
FORMAT_STRING = re.compile(r"^format\(\s*(?P<literal>E?'(?:[^']|'')*'|\$(?P<tag>\w*)\$.*?\$(?P=tag)\$)", re.DOTALL)

# The %s uses reviewed by hand: (file, the argument that fills %s, why it is safe).
REVIEWED_PERCENT_S = {
    ("code/07_user_code_rights.sql", "p_generated"): "regprocedure: its text form is a quoted, qualified signature",
    ("code/07_user_code_rights.sql", "v_owner"): "regrole: its text form is a quoted role name",
    ("code/11_projection_registry.sql", "v_wrapper"): "regprocedure: its text form is a quoted, qualified signature",
}


def execute_statements() -> list[tuple[str, str]]:
    statements = []
    for path in sorted(SQL.rglob("*.sql")):
        text = path.read_text()
        for match in EXECUTE.finditer(text):
            line = text[: match.start()].rsplit("\n", 1)[-1]
            if "GRANT" in line or line.lstrip().startswith("--"):
                continue
            statements.append((path.relative_to(SQL).as_posix(), match.group("statement")))
    return statements


def test_there_is_dynamic_sql_to_audit() -> None:
    assert len(execute_statements()) >= 10


def test_every_execute_builds_its_statement_with_format_or_a_format_built_variable() -> None:
    offenders = []
    for name, statement in execute_statements():
        if statement.startswith("format("):
            continue
        variable = VARIABLE.match(statement)
        source = (SQL / name).read_text()
        if variable and re.search(rf"\b{variable['name']}\s+text\s*:=\s*format\(", source):
            continue
        offenders.append((name, statement[:80]))
    assert offenders == []


def test_percent_s_is_used_only_for_reviewed_values() -> None:
    unreviewed = []
    for name, statement in execute_statements():
        outer = FORMAT_STRING.match(statement)
        if outer is None or "%s" not in outer["literal"]:
            continue
        # The arguments after the format string: each %s argument must be a reviewed identifier.
        arguments = re.findall(r",\s*([a-z_][a-z_0-9]*)\s*(?=[,)])", statement)
        if not any((name, argument) in REVIEWED_PERCENT_S for argument in arguments):
            unreviewed.append((name, statement[:100]))
    assert unreviewed == []


def test_no_execute_concatenates_into_the_statement_text() -> None:
    """|| may build a value passed to %L, never the statement around it."""
    offenders = [
        (name, statement[:80])
        for name, statement in execute_statements()
        if re.match(r"format\(\s*'[^']*'\s*\|\|", statement) or re.match(r"'[^']*'\s*\|\|", statement)
    ]
    assert offenders == []
