"""Run the examples of a markdown page as a reader would, and compare what they print.

The conventions a page follows (README.md and docs/*.md; also described in
docs/operations.md#documentation-examples):

- A ```console block holds shell commands, each on a line starting with `$ `
  (a line ending in `\\` continues on the next), each followed by what it prints
  (standard output and standard error, as a terminal shows them). A command runs
  with bash from the repository root; `export`s carry over to later commands of
  the page. It must exit 0, or the code given by `<!-- exit: N -->` on the line
  before the block.
- A ```sql block runs in one psql session per page (`psql -X`, so settings such
  as `SET search_path` carry over to later blocks). When the next block, with
  only blank lines between, is a ```text block, that is what psql prints for it.
  It must not fail, unless `<!-- expect-error: SQLSTATE -->` is on the line
  before it: then it must fail with that code.
- README.md's ```python blocks run as scripts (from the repository root); the
  python blocks of docs/*.md are fragments of the API and are not run.
- `<!-- not-run: why -->` on the line before a console or sql block leaves it
  out. Keep these rare: commands that need another machine, cluster or server.
- `<!-- database: empty -->` on a line of its own in a page starts it in a database without
  the schema (the README's tour installs it); otherwise a page starts in a fresh
  database with the schema installed.
- Text blocks and blocks without a language are never run; a line starting with
  `$ ` belongs in a ```console block.

Every page runs in its own fresh database, with PATH starting at the venv's bin
(so `pg-eventstore` is the package's), PGHOST, PGPORT, PGUSER and PGDATABASE
naming that database, DATABASE_URL a DSN of it, and PYTHONUNBUFFERED=1 (so
standard output and standard error interleave as on a terminal).

Output is compared after the normalisation of `normalise()`: values that vary
from run to run (timestamps, uuids the page's commands do not name, feed
positions and keys, process and transaction ids, durations and rates) become
placeholders, runs of spaces and of table-rule characters count as one (so
column widths do not matter), and a line `...` in the expected output stands
for any number of lines.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<language>\w*)[ ]*\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.M | re.S)
MARK = re.compile(r"^\s*<!--\s*(?P<key>not-run|expect-error|exit):\s*(?P<value>.*?)\s*-->\s*$")
EMPTY_DATABASE = re.compile(r"^<!--\s*database:\s*empty\s*-->\s*$", re.M)
RUNNABLE = {"console", "sql", "python"}


@dataclass
class Step:
    """One thing to run: a shell command, a SQL block or a Python script, and what it must print."""

    kind: str  # "shell", "sql" or "python"
    code: str
    line: int  # where it starts in the page
    expected: str | None  # None: output not compared
    expect_error: str | None = None  # sql: the SQLSTATE it must fail with
    exit_code: int = 0  # shell: the exit code it must end with


@dataclass
class Page:
    path: Path
    steps: list[Step] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # convention errors, reported as failures
    empty_database: bool = False

    @property
    def name(self) -> str:
        return str(self.path.relative_to(ROOT))


@dataclass
class Block:
    language: str
    body: str
    line: int  # the line of the opening fence
    end: int  # offset of the end of the closing fence
    start: int  # offset of the opening fence
    mark: tuple[str, str] | None


def blocks(text: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(text):
        indent = len(match.group("indent"))
        body = "".join(line[indent:] for line in match.group("body").splitlines(keepends=True))
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.match(before)
        found.append(
            Block(
                language=match.group("language"),
                body=body,
                line=text.count("\n", 0, match.start()) + 1,
                end=match.end(),
                start=match.start(),
                mark=(mark.group("key"), mark.group("value")) if mark else None,
            )
        )
    return found


def console_steps(block: Block, exit_code: int) -> Iterator[Step]:
    lines = block.body.splitlines()
    index = 0
    while index < len(lines):
        if not lines[index].startswith("$ "):
            index += 1
            continue
        line = block.line + 1 + index
        command = [lines[index][2:]]
        while command[-1].endswith("\\") and index + 1 < len(lines):
            index += 1
            command.append(lines[index])
        index += 1
        output = []
        while index < len(lines) and not lines[index].startswith("$ "):
            output.append(lines[index])
            index += 1
        yield Step("shell", "\n".join(command), line, "\n".join(output), exit_code=exit_code)


def parse(path: Path) -> Page:
    text = path.read_text()
    page = Page(path, empty_database=bool(EMPTY_DATABASE.search(text)))
    name = str(path.relative_to(ROOT))
    found = blocks(text)
    marks_seen = sum(1 for block in found if block.mark)
    if marks_seen != len(MARK_ANYWHERE.findall(text)):
        page.problems.append(f"{name}: a <!-- not-run/expect-error/exit --> mark that is not right before a block")
    for index, block in enumerate(found):
        where = f"{name}:{block.line}"
        if block.language != "console" and any(line.startswith("$ ") for line in block.body.splitlines()):
            page.problems.append(f"{where}: a `$ ` command line in a ```{block.language or '(plain)'} block")
        key, value = block.mark or ("", "")
        if key and block.language not in RUNNABLE:
            page.problems.append(f"{where}: <!-- {key} --> marks a block that is not run")
        if key == "not-run":
            continue
        if block.language == "console":
            if key == "expect-error":
                page.problems.append(f"{where}: expect-error marks ```sql blocks; use <!-- exit: N --> here")
            exit_code = int(value) if key == "exit" else 0
            commands = list(console_steps(block, exit_code))
            if not commands:
                page.problems.append(f"{where}: a ```console block without a `$ ` command")
            page.steps.extend(commands)
        elif block.language == "sql":
            if key == "exit":
                page.problems.append(f"{where}: exit marks ```console blocks; use <!-- expect-error: CODE --> here")
            expected = None
            following = found[index + 1] if index + 1 < len(found) else None
            if following and following.language == "text" and not text[block.end : following.start].strip():
                expected = following.body
            page.steps.append(
                Step("sql", block.body, block.line + 1, expected, expect_error=value if key == "expect-error" else None)
            )
        elif block.language == "python" and path.name == "README.md":
            page.steps.append(Step("python", block.body, block.line + 1, None))
    return page


MARK_ANYWHERE = re.compile(r"^\s*<!--\s*(?:not-run|expect-error|exit):", re.M)


# Normalisation: each pattern and its placeholder, in this order.
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
VOLATILE = [
    # 2026-11-26 16:32:45.862179+00, 2026-11-26T16:46:09.483+00:00, 2026-11-26 16:00
    (re.compile(r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d(:\d\d)?)?"), "<time>"),
    (re.compile(r"\(\d+,\d+\)"), "(<feed key>,<id>)"),  # feed positions; (-1,0) stays
    (re.compile(r"\b(feed fence|feed key offset|pid|xid|xid age)( raised from \d+ to|:)? \d+"), r"\1\2 <n>"),
    (re.compile(r"\b\d+(\.\d+)? s\b"), "<n> s"),  # durations
    (re.compile(r"\b[\d,]+(\.\d+)? events/s\b"), "<n> events/s"),  # rates
    (re.compile(r"\b\d+:\d\d:\d\d\b"), "<h:mm:ss>"),  # progress bar times
    (re.compile(r"\bline \d+ at\b"), "line <n> at"),  # PL/pgSQL line numbers in CONTEXT
]
RULES = re.compile(r"([━─═\-])\1+")  # table rules: any length counts as one


def normalise(output: str, stable_uuids: set[str]) -> list[str]:
    """The lines of `output` with volatile values replaced and widths ignored."""
    output = UUID.sub(lambda m: m.group(0) if m.group(0) in stable_uuids else "<uuid>", output)
    for pattern, placeholder in VOLATILE:
        output = pattern.sub(placeholder, output)
    lines = [re.sub(r"\s+", " ", RULES.sub(r"\1", line)).strip() for line in output.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether actual fits expected, where an expected line `...` stands for any number of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


class PsqlSession:
    """One psql process per page, fed block by block; each block's output is read up to a sentinel."""

    SENTINEL = "@@docs-test-block-done@@"

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            # Line-buffered, so results (stdout) and messages (stderr) interleave as on a terminal.
            ["stdbuf", "-oL", "psql", "-X", "-v", "ON_ERROR_STOP=0"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def run(self, code: str, timeout: float = 30) -> tuple[str, str | None]:
        """Run a block; returns what psql printed and the SQLSTATE of its last error (None: no error)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        script = f"\\unset LAST_ERROR_SQLSTATE\n{code.rstrip()}\n\\echo {self.SENTINEL} :LAST_ERROR_SQLSTATE\n"
        self.process.stdin.write(script.encode())
        self.process.stdin.flush()
        # Read the pipe's bytes directly: a buffered reader would hide lines from select().
        received = b""
        marker = self.SENTINEL.encode()
        deadline = time.monotonic() + timeout
        while marker not in received or not received.endswith(b"\n"):
            ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"psql printed nothing more for {timeout} s:\n{received.decode()}")
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"psql ended:\n{received.decode()}")
            received += chunk
        output, _, state = received.decode().partition(self.SENTINEL)
        state = state.strip()
        return output, None if state == ":LAST_ERROR_SQLSTATE" else state

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@dataclass
class Mismatch:
    step: Step
    message: str


class PageRun:
    """Runs the steps of one page in document order, in the environment given."""

    def __init__(self, page: Page, env: dict[str, str]) -> None:
        self.page = page
        self.env = env
        self.stable_uuids = set()
        for step in page.steps:
            self.stable_uuids |= set(UUID.findall(step.code))

    def run(self) -> list[Mismatch]:
        mismatches = []
        psql = PsqlSession(self.env)
        with tempfile.TemporaryDirectory() as scratch:
            env_file = Path(scratch) / "env.sh"
            env_file.write_text("")
            try:
                for step in self.page.steps:
                    problem = self.run_step(step, psql, env_file)
                    if problem:
                        mismatches.append(Mismatch(step, problem))
            finally:
                psql.close()
        return mismatches

    def compare(self, step: Step, actual: str) -> str | None:
        if step.expected is None:
            return None
        expected_lines = normalise(step.expected, self.stable_uuids)
        actual_lines = normalise(actual, self.stable_uuids)
        if matches(expected_lines, actual_lines):
            return None
        return (
            "prints other output than the page shows.\n--- expected (normalised):\n"
            + "\n".join(expected_lines)
            + "\n--- actual (normalised):\n"
            + "\n".join(actual_lines)
            + "\n--- actual (as printed):\n"
            + actual
        )

    def run_step(self, step: Step, psql: PsqlSession, env_file: Path) -> str | None:
        if step.kind == "sql":
            output, sqlstate = psql.run(step.code)
            if step.expect_error and sqlstate != step.expect_error:
                return f"should fail with {step.expect_error}, got {sqlstate or 'no error'}:\n{output}"
            if not step.expect_error and sqlstate:
                return f"fails with {sqlstate}:\n{output}"
            return self.compare(step, output)
        if step.kind == "python":
            result = subprocess.run(
                [sys.executable, "-c", step.code], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
            )
            if result.returncode != 0:
                return f"the script fails:\n{result.stdout}{result.stderr}"
            return None
        # A shell command: the exports of earlier commands first, its own exports saved after it.
        script = '. "$1"; eval "$2"; rc=$?; export -p > "$1"; exit $rc'
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", script, "bash", str(env_file), step.code],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        if result.returncode != step.exit_code:
            return f"exits {result.returncode}, expected {step.exit_code}:\n{result.stdout}"
        return self.compare(step, result.stdout)


def reader_env(dsn: str) -> dict[str, str]:
    """The environment a reader of the docs has, pointing at the database of `dsn`."""
    with psycopg.connect(dsn) as conn:  # what libpq makes of the DSN and the environment
        info = conn.info
        server_env = {key: value for key, value in os.environ.items() if key not in {"COLUMNS", "LINES"}}
        server_env.update(PGHOST=info.host, PGPORT=str(info.port), PGUSER=info.user)
        database = info.dbname
    bin_dir = str(Path(sys.executable).parent)  # the venv's bin, where pg-eventstore is
    return {
        **server_env,
        "PATH": f"{bin_dir}:{server_env.get('PATH', os.defpath)}",
        "PGDATABASE": database,
        "DATABASE_URL": dsn,
        "PYTHONUNBUFFERED": "1",
    }
