"""Real parts for several replicas on loopback: a PostgreSQL in a temporary data directory and an nginx
balancing over `hybrid-scorer serve` replicas. Used by tests/test_replicas.py and bench/replicas.py.

PostgreSQL refuses to run as root, so as root its data directory is made outside pytest's private tmp
(which another user cannot enter) and owned by the `postgres` user, and its tools run as that user."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa

from tests.test_service import Service, _free_port, _start, _stop


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class Postgres:
    """One server on 127.0.0.1; `stop` and `start` again keep its data (an outage, not a new database)."""

    bin: Path
    data: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create(self, database: str) -> str:
        """A new, empty database on this server (one per experiment); its URL."""
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
        engine.dispose()
        return self.url(database)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c max_connections=200"
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data / "db"), "-l", str(self.data / "log"), "-w"]
        subprocess.run(_as_postgres([*command, "-o", options, "start"]), check=True, capture_output=True)

    def stop(self) -> None:
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data / "db"), "-m", "fast", "-w", "stop"]
        subprocess.run(_as_postgres(command), check=True, capture_output=True)

    def remove(self) -> None:
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data / "db"), "-m", "immediate", "stop"]),
                       capture_output=True)  # fmt: skip
        shutil.rmtree(self.data, ignore_errors=True)


def start_postgres(initdb: str) -> Postgres:
    """initdb into a fresh directory (trust authentication on loopback: a throwaway server), then start."""
    data = Path(tempfile.mkdtemp(prefix="hybrid-scorer-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
    server = Postgres(Path(initdb).parent, data, _free_port())
    subprocess.run(_as_postgres([initdb, "-D", str(data / "db"), "-U", "postgres", "-A", "trust", "--no-sync"]),
                   check=True, capture_output=True)  # fmt: skip
    server.start()
    return server


NGINX_CONF = """
worker_processes 1;
{user}
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream scorers {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://scorers;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # a replica that is gone (refused, reset, 502/503 while stopping) costs a retry on another, not
            # an error: predict and feedback are safe to repeat (feedback is an upsert by prediction id)
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
        }}
    }}
}}
"""


@dataclass
class Balancer:
    process: subprocess.Popen[bytes]
    url: str
    root: Path

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def start_nginx(nginx: str, root: Path, upstreams: list[str]) -> Balancer:
    """nginx on 127.0.0.1 in front of `upstreams` (host:port), round robin; a replica refusing connections
    is marked down for a few seconds (max_fails=1)."""
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=3s;" for u in upstreams)
    user = "user root;" if os.geteuid() == 0 else ""  # its workers write temp files under `root`
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=user, root=root, servers=servers, port=port))
    process = subprocess.Popen(
        [nginx, "-p", str(root), "-e", str(root / "error.log"), "-c", str(conf), "-g", "daemon off;"],
        stderr=subprocess.DEVNULL,
    )
    return Balancer(process, f"http://127.0.0.1:{port}", root)


def responds(url: str) -> bool:
    """The URL answers 200 (anything else, or no answer within 2 s, is False)."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def post_as_a_client(
    http: httpx.Client, url: str, payload: dict[str, object], patience_s: float = 120
) -> httpx.Response:
    """A POST as a client of several replicas should send it (predict and feedback are both safe to
    repeat: feedback is an upsert by prediction id). A 503 (the store unreachable) is retried after its
    Retry-After; an answer cut off mid-way is retried at once: a replica that crashes after nginx has
    passed on its headers cannot be retried by nginx, which has already begun to answer. Any other answer
    is returned; past `patience_s` the last one is, or the cut is raised. Between attempts that could not
    connect or were cut, a short pause, so a balancer that is down is not hammered in a tight loop."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            answer = http.post(url, json=payload)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        if answer.status_code != 503 or time.monotonic() > deadline:
            return answer
        time.sleep(float(answer.headers.get("retry-after", "1")))


@contextlib.contextmanager
def replicas_behind_nginx(
    model: Path, root: Path, database_url: str, replicas: int, nginx: str
) -> Iterator[tuple[list[Service], Balancer]]:
    """`replicas` serve processes of the content model sharing one outcome store, nginx in front, ready
    (or an AssertionError after 30 s); every process stopped on exit."""
    started: list[Service] = []
    balancer = None
    try:
        for i in range(replicas):
            (root / f"replica-{i}").mkdir()
            env = {"HYBRID_SCORER_DATABASE_URL": database_url}
            started.append(_start(model, root / f"replica-{i}", "--llm", "none", env=env))
        balancer = start_nginx(nginx, root / "nginx", [r.url.removeprefix("http://") for r in started])
        deadline = time.monotonic() + 30
        while not responds(balancer.url + "/readyz"):
            assert time.monotonic() < deadline, "nginx never answered"
            time.sleep(0.2)
        yield started, balancer
    finally:
        if balancer is not None:
            balancer.stop()
        for replica in started:
            _stop(replica)
