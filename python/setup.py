"""Build hook: the package data (install script, migrations, VERSION) is made
from the repository's sql/ by `make sql`. When building straight from a
checkout (`pip install ./python`), run it first so the wheel is never built
without them."""

import subprocess
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
if not (HERE / "src/pg_eventstore/sql/VERSION").exists() and (REPOSITORY / "sql").is_dir():
    subprocess.run(["make", "--no-print-directory", "-C", str(REPOSITORY), "sql"], check=True)

setup()
