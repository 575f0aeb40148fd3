"""Shared fixtures: real brokers on free ports, certificates, and a way to run
the ``bustap`` command as users do (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.fixtures.brokers import Certs, Mosquitto, NatsServer, RabbitVhost, rabbitmq_available
from tests.fixtures.postgres import Postgres, start_postgres

BUSTAP = [sys.executable, "-m", "bustap.cli"]


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path_factory: pytest.TempPathFactory,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test (and the bustap it runs) keeps alert state and log offsets in
    a folder of its own, never in ~/.local/state of the machine's user, so a
    run never finds what an earlier run left (tests that pass env= win)."""
    monkeypatch.setenv("BUSTAP_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return Certs.make(tmp_path / "certs")


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    started: list[Mosquitto] = []

    def make(extra: str = "allow_anonymous true", name: str = "mosq") -> Mosquitto:
        broker = Mosquitto(tmp_path / name, extra=extra).start()
        started.append(broker)
        return broker

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[..., Mosquitto]) -> Mosquitto:
    return mosquitto_factory()


@pytest.fixture
def nats_factory(tmp_path: Path) -> Iterator[Callable[..., NatsServer]]:
    started: list[NatsServer] = []

    def make(config: str = "", *, binary: str | None = None, args: tuple[str, ...] = (),
             name: str = "nats") -> NatsServer:
        server = NatsServer(tmp_path / name, config_text=config, binary=binary,
                            args=args).start()
        started.append(server)
        return server

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def nats_server(nats_factory: Callable[..., NatsServer]) -> NatsServer:
    return nats_factory()


@pytest.fixture
def rabbitmq() -> Iterator[RabbitVhost]:
    """A fresh vhost on the machine's RabbitMQ, deleted afterwards."""
    if not rabbitmq_available():  # scripts/setup.sh installs and starts it
        pytest.fail("no RabbitMQ on 127.0.0.1:5672: run `make test` (scripts/setup.sh)")
    vhost = RabbitVhost(f"bustap-test-{os.urandom(4).hex()}").create()
    yield vhost
    vhost.delete()


@pytest.fixture
def postgres_server() -> Iterator[Postgres]:
    """A PostgreSQL of the test's own (tests/fixtures/postgres.py) on a free
    port, with a password for its role: unlike the machine's shared service on
    5432, the test may stop and start it."""
    server = start_postgres()
    yield server
    server.destroy()


def wait_until(pred: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Until ``pred()``; an AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    data = path.read_bytes()
    # a writer may be mid-line: only whole lines are records yet
    data = data[:data.rfind(b"\n") + 1]
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


class Bustap:
    """``bustap ARGS`` in the background, as a user runs it."""

    def __init__(self, args: list[str], out: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.out = out
        self.err_path = out.with_suffix(".stderr")
        with self.err_path.open("ab") as err:
            self.proc = subprocess.Popen([*BUSTAP, *args], stdout=subprocess.DEVNULL,
                                         stderr=err, env={**os.environ, **(env or {})})

    def records(self) -> list[dict[str, Any]]:
        return read_records(self.out)

    def messages(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("kind") == "message"]

    def wait_for(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
                 ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            recs = self.records()
            if pred(recs):
                return recs
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"condition not met; stderr: {self.stderr()}\n"
                             f"records: {self.records()[-5:]}")

    def wait_ready(self, n: int = 1, timeout: float = 10.0) -> None:
        self.wait_for(lambda rs: sum(r["event_type"] == "log_init" for r in rs) >= n, timeout)

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace") if self.err_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout)


@pytest.fixture
def bustap_bg(tmp_path: Path) -> Iterator[Callable[..., Bustap]]:
    procs: list[Bustap] = []

    def start(*args: str, out: str = "out.jsonl", env: dict[str, str] | None = None
              ) -> Bustap:
        path = tmp_path / out
        b = Bustap([*args, "-o", str(path)], path, env)
        procs.append(b)
        return b

    yield start
    for p in procs:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def run_bustap(*args: str, timeout: float = 30.0, env: dict[str, str] | None = None,
               input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BUSTAP, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})},
                          input=input.decode() if input is not None else None)
