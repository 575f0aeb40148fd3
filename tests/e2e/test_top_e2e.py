"""``bustap top`` in a pseudo-terminal against a real Mosquitto and
nats-server: the table shows the topics and subjects being published, the
NATS connection by its name, and ``q`` quits."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.fixtures.brokers import Mosquitto, NatsServer
from tests.fixtures.traffic import Publisher

pytestmark = pytest.mark.e2e

BUSTAP = [sys.executable, "-m", "bustap.cli"]
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]")


class Pty:
    """A command on a pseudo-terminal, its screen output collected as text."""

    def __init__(self, args: list[str]) -> None:
        self.master, slave = pty.openpty()
        env = {**os.environ, "COLUMNS": "140", "LINES": "40", "TERM": "xterm-256color"}
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     close_fds=True)
        os.close(slave)
        self.out = b""

    def read(self, until: Callable[[str], bool], timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:  # the child closed the terminal
                    break
            if until(self.text):
                return self.text
        raise AssertionError(f"not seen in time; screen so far:\n{self.text[-3000:]}")

    @property
    def text(self) -> str:
        return ANSI.sub(b"", self.out).decode(errors="replace")

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def test_top_shows_published_topics_and_quits_on_q(tmp_path: Path) -> None:
    mosq = Mosquitto(tmp_path / "mosq", extra="allow_anonymous true").start()
    server = NatsServer(tmp_path / "nats").start()
    pub = Publisher(mosq.port, server.url)
    term = Pty([*BUSTAP, "top", mosq.url, server.url,
                f"nats-monitor://127.0.0.1:{server.http_port}", "--interval", "0.5"])
    try:
        term.read(lambda t: "topics and subjects" in t)
        pub.start()
        screen = term.read(lambda t: all(s in t for s in (
            "sensors/room0/temp", "sensors/room1/temp", "telemetry.router0.cpu",
            "telemetry.router1.cpu", "edge-agent-1")))
        assert "msgs/s" in screen and "mqtt" in screen and "nats" in screen
        # a rate was measured, not only a total: some row shows a non-zero msgs/s
        assert re.search(r"sensors/room\d/temp\s+mqtt\s+[1-9]", screen) or \
            re.search(r"telemetry\.router\d\.cpu\s+nats\s+[1-9]", screen), screen[-2000:]
        term.send(b"s")  # sort by bytes: still running
        term.read(lambda t: "sort: bytes" in t)
        term.send(b"q")
        assert term.proc.wait(15) == 0
    finally:
        pub.stop()
        term.close()
        mosq.stop()
        server.stop()
