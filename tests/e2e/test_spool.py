"""A sink that goes down mid-run: records are spooled and replayed in order."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from tests.conftest import Bustap
from tests.fixtures.brokers import Mosquitto, free_port, mosquitto_pub

pytestmark = pytest.mark.e2e


class LineServer:
    """A Logstash-like TCP JSON-lines receiver that can be stopped and restarted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lines: list[bytes] = []
        self.conns: list[socket.socket] = []
        self.server: socketserver.ThreadingTCPServer | None = None

    def start(self) -> None:
        lines = self.lines
        conns = self.conns = []

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                conns.append(self.connection)
                for line in self.rfile:
                    lines.append(line)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        for conn in self.conns:  # the peer is really gone: reset what was accepted
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self.server = None

    def records(self) -> list[dict[str, object]]:
        return [orjson.loads(line) for line in list(self.lines)]


def test_tcp_sink_down_mid_run_spools_and_replays_in_order(
        mosquitto: Mosquitto, tmp_path: Path, bustap_bg: Callable[..., Bustap]) -> None:
    port = free_port()
    srv = LineServer(port)
    srv.start()
    b = bustap_bg("capture", mosquitto.url, "-t", "sp/#", "-o", f"tcp://127.0.0.1:{port}",
                  env={"BUSTAP_SPOOL_DIR": str(tmp_path / "spool")})
    b.wait_ready()

    def msgs() -> list[str]:
        return [str(r["payload"]) for r in srv.records() if r.get("kind") == "message"]

    for i in range(50):
        mosquitto_pub(mosquitto.port, "sp/x", f"a{i}")
    deadline = time.monotonic() + 10
    while len(msgs()) < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.stop()
    for i in range(50):
        mosquitto_pub(mosquitto.port, "sp/x", f"b{i}")
    time.sleep(1.0)
    srv.start()
    for i in range(50):
        mosquitto_pub(mosquitto.port, "sp/x", f"c{i}")
    deadline = time.monotonic() + 30
    while len(set(msgs())) < 150 and time.monotonic() < deadline:
        time.sleep(0.1)
    b.stop()
    got = msgs()
    expected = [f"{p}{i}" for p in "abc" for i in range(50)]
    assert [m for m in dict.fromkeys(got)] == expected, b.stderr()
    seqs = [int(r["seq"]) for r in srv.records()]  # type: ignore[call-overload]
    assert seqs == sorted(seqs)
    assert "spooling" in b.stderr()
