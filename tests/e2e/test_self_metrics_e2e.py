"""A sink that goes down under ``bustap run``: its self-metrics (spooled,
errors, queue depth) in /metrics while it is down, and in the log_close
summary written at the end."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from tests.e2e.test_spool import LineServer
from tests.fixtures.brokers import Mosquitto, free_port, mosquitto_pub, wait_port

pytestmark = pytest.mark.e2e


def metric(text: str, name: str, sink: str) -> float:
    found = re.search(rf'^{name}\{{component="sink",name="{re.escape(sink)}"\}} (\S+)$',
                      text, re.M)
    assert found, text
    return float(found.group(1))


def test_down_sink_shows_in_metrics_and_log_close(mosquitto: Mosquitto, tmp_path: Path) -> None:
    tcp_port, web_port = free_port(), free_port()
    srv = LineServer(tcp_port)
    srv.start()
    out = tmp_path / "out.jsonl"
    tcp = f"tcp://127.0.0.1:{tcp_port}"
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'name = "metrics"\n[[source]]\nurl = "{mosquitto.url}"\n'
                   f'topics = ["m/#"]\n\n[[sink]]\nurl = "{out}"\n\n[[sink]]\nurl = "{tcp}"\n\n'
                   f'[web]\nbind = "127.0.0.1:{web_port}"\n')
    err = (tmp_path / "run.stderr").open("wb")
    run = subprocess.Popen([sys.executable, "-m", "bustap.cli", "run", "--no-detect", str(cfg)],
                           stdout=subprocess.DEVNULL, stderr=err,
                           env={**os.environ, "BUSTAP_SPOOL_DIR": str(tmp_path / "spool"),
                                "BUSTAP_STATE_DIR": str(tmp_path / "state")})
    try:
        wait_port(web_port, 20, proc=run)  # type: ignore[arg-type]
        deadline = time.monotonic() + 10
        while not out.exists() or b"log_init" not in out.read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for i in range(20):
            mosquitto_pub(mosquitto.port, "m/x", f"a{i}")
        while len([r for r in srv.records() if r.get("kind") == "message"]) < 20:
            assert time.monotonic() < deadline, srv.records()
            time.sleep(0.05)
        srv.stop()
        for i in range(20):
            mosquitto_pub(mosquitto.port, "m/x", f"b{i}")
        base = f"http://127.0.0.1:{web_port}"
        while True:  # the first write after the stop may still reach the closing socket
            text = httpx.get(f"{base}/metrics").text
            if metric(text, "bustap_component_queue_depth", tcp) > 0:
                break
            assert time.monotonic() < deadline + 10, text
            time.sleep(0.1)
        assert metric(text, "bustap_component_spooled_total", tcp) > 0
        assert metric(text, "bustap_component_errors_total", tcp) >= 1
        assert metric(text, "bustap_component_spooled_total", f"file:{out}") == 0
        assert re.search(r"^bustap_spooled (\S+)$", text, re.M).group(1) != "0.0"  # type: ignore[union-attr]
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(20) == 0, (tmp_path / "run.stderr").read_text()
        err.close()
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    close = records[-1]
    assert close["event_type"] == "log_close" and close["source"] == mosquitto.url
    assert close["counters"]["received"] >= 41  # log_init and 40 messages
    assert close["counters"]["sent"] == close["counters"]["received"]
    sinks = close["sinks"]
    assert sinks[tcp]["spooled"] > 0 and sinks[tcp]["errors"] >= 1
    assert sinks[tcp]["dropped"] == {} and sinks[f"file:{out}"]["spooled"] == 0
    assert "spooling" in (tmp_path / "run.stderr").read_text()
