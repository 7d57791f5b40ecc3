"""Start a throwaway PostgreSQL cluster, run a command against it, stop it.

    python scripts/pgcluster.py run -- CMD [ARGS...]

initdb in a temporary directory, a server on a free port of 127.0.0.1, the
command run with PGHOST, PGPORT, PGUSER and EVENTSTORE_TEST_DSN pointing at it,
and the server stopped and the directory removed afterwards, whatever the
command's outcome. As root the server runs as the `postgres` OS user, since
PostgreSQL refuses to run as root.

`--datadir LINK` keeps the cluster between runs, started on first use and
reused afterwards (the demo uses ./.pgdata). The data does not live at LINK:
the server user must reach it, and a checkout may sit in a folder it cannot
enter (root's home, a `mktemp -d` folder). It lives in a folder of its own
under a world-traversable base, /var/tmp/pg_eventstore-<hash of LINK's
absolute path>/data ($PG_EVENTSTORE_CLUSTERS instead of /var/tmp), and LINK
is a symbolic link to it. `stop --datadir LINK` stops it; `remove --datadir
LINK` stops it and deletes both. `env --datadir LINK --database NAME` prints
the shell `export` lines that point psql and pg-eventstore at it.
`--database NAME` creates that database when it is missing and points
PGDATABASE and DATABASE_URL at it.

Also imported by the pytest harness (tests/python/conftest.py).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BINDIR = "/usr/lib/postgresql/15/bin"
RUN_AS_POSTGRES = os.geteuid() == 0

# Throwaway clusters trade durability for speed; benchmarks start their own.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "max_prepared_transactions": "20",
    "log_min_messages": "warning",
}


@dataclass(frozen=True)
class Cluster:
    datadir: Path
    port: int
    bindir: Path

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def env(self) -> dict[str, str]:
        return {
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "PGUSER": "postgres",
            "PGDATABASE": "postgres",
            "EVENTSTORE_TEST_DSN": self.dsn,
        }


def bindir() -> Path:
    return Path(os.environ.get("PG_BINDIR", DEFAULT_BINDIR))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if RUN_AS_POSTGRES else args


# The server user's commands start in "/": the caller's folder may be one it cannot enter.
SERVER_CWD = "/"


def _give_to_server_user(path: Path) -> None:
    if RUN_AS_POSTGRES:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)


def initdb(datadir: Path) -> None:
    datadir.mkdir(parents=True, exist_ok=True)
    _give_to_server_user(datadir)
    subprocess.run(
        _as_server_user(
            [
                str(bindir() / "initdb"),
                "--pgdata",
                str(datadir),
                "--username",
                "postgres",
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=SERVER_CWD,
    )


def start(datadir: Path, port: int, settings: dict[str, str] | None = None) -> Cluster:
    options = {"port": str(port), "listen_addresses": "127.0.0.1", "unix_socket_directories": str(datadir)}
    options.update(settings if settings is not None else FAST_SETTINGS)
    opts = " ".join(f"-c {key}={value}" for key, value in options.items())
    subprocess.run(
        _as_server_user(
            [
                str(bindir() / "pg_ctl"),
                "--pgdata",
                str(datadir),
                "--log",
                str(datadir / "server.log"),
                "--options",
                opts,
                "--wait",
                "--silent",
                "start",
            ]
        ),
        check=True,
        cwd=SERVER_CWD,
    )
    return Cluster(datadir, port, bindir())


def running(datadir: Path) -> bool:
    """Whether a server runs on datadir (a postmaster.pid left by a reboot does not count)."""
    status = subprocess.run(
        _as_server_user([str(bindir() / "pg_ctl"), "--pgdata", str(datadir), "status"]),
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=SERVER_CWD,
    )
    return status.returncode == 0


def stop(datadir: Path, mode: str = "fast") -> None:
    if (datadir / "postmaster.pid").exists():
        subprocess.run(
            _as_server_user(
                [
                    str(bindir() / "pg_ctl"),
                    "--pgdata",
                    str(datadir),
                    "--mode",
                    mode,
                    "--wait",
                    "--silent",
                    "stop",
                ]
            ),
            check=False,
            cwd=SERVER_CWD,
        )


@contextlib.contextmanager
def throwaway_cluster(settings: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A new cluster in a temporary directory, removed on exit."""
    parent = Path(tempfile.mkdtemp(prefix="pg_eventstore-"))
    _give_to_server_user(parent)
    datadir = parent / "data"
    try:
        initdb(datadir)
        cluster = start(datadir, free_port(), settings)
        try:
            yield cluster
        finally:
            stop(datadir, mode="immediate")
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def kept_base() -> Path:
    """Where kept clusters live: a folder every user can traverse."""
    return Path(os.environ.get("PG_EVENTSTORE_CLUSTERS", "/var/tmp"))


def kept_home(link: Path) -> Path:
    """The folder of the cluster kept for link: one per checkout (a hash of link's absolute path)."""
    digest = hashlib.sha256(str(link.absolute()).encode()).hexdigest()[:12]
    return kept_base() / f"pg_eventstore-{digest}"


def kept_datadir(link: Path, *, create: bool) -> Path | None:
    """The data directory link names: its target, or (with create) a new one in kept_home, linked from link.

    A real directory at link (kept by an earlier version) is used as it is.
    """
    if link.is_symlink():
        return link.resolve()
    if link.is_dir():
        return link.resolve()
    if not create:
        return None
    home = kept_home(link)
    home.mkdir(mode=0o700, exist_ok=True)
    _give_to_server_user(home)
    datadir = home / "data"
    link.symlink_to(datadir)
    return datadir


def remove_kept(link: Path) -> None:
    """Stop the cluster link names and delete its data and the link."""
    datadir = kept_datadir(link, create=False)
    if datadir is not None:
        stop(datadir)
        # The folder made for it goes too; a folder the link was pointed at by hand keeps its parent.
        ours = datadir.parent.parent == kept_base().resolve() and datadir.parent.name.startswith("pg_eventstore-")
        shutil.rmtree(datadir.parent if ours else datadir, ignore_errors=True)
    if link.is_symlink():
        link.unlink()
    # Data left behind when the link itself was deleted (e.g. by git clean).
    shutil.rmtree(kept_home(link), ignore_errors=True)


def kept_cluster(link: Path) -> Cluster:
    """The cluster kept for link (see kept_datadir), created and started as needed."""
    datadir = kept_datadir(link, create=True)
    assert datadir is not None
    if not (datadir / "PG_VERSION").exists():
        initdb(datadir)
    port_file = datadir / "eventstore.port"
    if port_file.exists() and running(datadir):
        return Cluster(datadir, int(port_file.read_text()), bindir())
    port = free_port()
    cluster = start(datadir, port, settings={})
    port_file.write_text(str(port))
    return cluster


def ensure_database(cluster: Cluster, name: str) -> None:
    """Create the database unless it exists."""
    env = {**os.environ, **cluster.env()}
    # Through stdin: psql interpolates :'name' (a quoted literal) there, not in -c.
    exists = subprocess.run(
        [str(cluster.bindir / "psql"), "-X", "-tA", "-v", f"name={name}"],
        input="SELECT 1 FROM pg_database WHERE datname = :'name';",
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if exists != "1":
        subprocess.run([str(cluster.bindir / "createdb"), name], env=env, check=True)


def command_env(cluster: Cluster, database: str | None) -> dict[str, str]:
    """The command's environment: the cluster's, and with a database, PGDATABASE and DATABASE_URL for it."""
    env = {**os.environ, **cluster.env()}
    if database is not None:
        ensure_database(cluster, database)
        env["PGDATABASE"] = database
        env["DATABASE_URL"] = f"host=127.0.0.1 port={cluster.port} user=postgres dbname={database}"
    return env


def export_lines(env: dict[str, str], bin_dir: Path | None) -> list[str]:
    """Shell lines that point psql and pg-eventstore (on PATH from bin_dir) at a database."""
    names = ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "DATABASE_URL"]
    lines = [f"export {name}={shlex.quote(env[name])}" for name in names if name in env]
    if bin_dir is not None:
        lines.append(f'export PATH={shlex.quote(str(bin_dir.absolute()))}:"$PATH"')
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run a command against a cluster")
    run.add_argument("--datadir", type=Path, help="keep the cluster in this directory")
    run.add_argument("--database", help="create this database if missing; export PGDATABASE and DATABASE_URL for it")
    run.add_argument("command", nargs=argparse.REMAINDER)
    stop_parser = sub.add_parser("stop", help="stop a kept cluster")
    stop_parser.add_argument("--datadir", type=Path, required=True)
    remove_parser = sub.add_parser("remove", help="stop a kept cluster and delete its data and link")
    remove_parser.add_argument("--datadir", type=Path, required=True)
    env_parser = sub.add_parser("env", help="print export lines for a kept cluster (started when needed)")
    env_parser.add_argument("--datadir", type=Path, required=True)
    env_parser.add_argument("--database", required=True, help="the database (created when missing)")
    env_parser.add_argument("--bin", type=Path, help="a folder to put first on PATH (the venv's bin)")
    args = parser.parse_args()

    if args.action == "stop":
        datadir = kept_datadir(args.datadir, create=False)
        if datadir is not None:
            stop(datadir)
        return 0
    if args.action == "remove":
        remove_kept(args.datadir)
        return 0
    if args.action == "env":
        cluster = kept_cluster(args.datadir)
        env = command_env(cluster, args.database)
        print("\n".join(export_lines(env, args.bin)))
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("run needs a command after --")
    if args.datadir is not None:
        cluster = kept_cluster(args.datadir)
        return subprocess.run(command, env=command_env(cluster, args.database), check=False).returncode
    with throwaway_cluster() as cluster:
        return subprocess.run(command, env=command_env(cluster, args.database), check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
