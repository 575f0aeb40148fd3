"""``bustap run`` and logrotate: the JSONL file moved away, SIGHUP, and the
records that follow go to a new file at the path; nothing lost between."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from tests.fixtures.brokers import Mosquitto, mosquitto_pub

pytestmark = pytest.mark.e2e


def payloads(path: Path) -> list[str]:
    recs = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return [str(r["payload"]) for r in recs if r.get("kind") == "message"]


def wait(cond: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sighup_reopens_the_jsonl_file(mosquitto: Mosquitto, tmp_path: Path) -> None:
    out = tmp_path / "bustap.jsonl"
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'name = "hup"\n[[source]]\nurl = "{mosquitto.url}"\ntopics = ["h/#"]\n'
                   f'qos = 1\n\n[[sink]]\nurl = "{out}"\n')
    err = (tmp_path / "run.stderr").open("wb")
    run = subprocess.Popen([sys.executable, "-m", "bustap.cli", "run", "--no-detect", str(cfg)],
                           stdout=subprocess.DEVNULL, stderr=err,
                           env={**os.environ, "BUSTAP_STATE_DIR": str(tmp_path / "state"),
                                "BUSTAP_SPOOL_DIR": str(tmp_path / "spool")})
    try:
        wait(lambda: out.exists() and b"log_init" in out.read_bytes(), "log_init")
        for i in range(10):
            mosquitto_pub(mosquitto.port, "h/x", f"a{i}", args=("-q", "1"))
        wait(lambda: len(payloads(out)) == 10, "first ten")
        rotated = tmp_path / "bustap.jsonl.1"
        os.rename(out, rotated)  # logrotate's move, then its postrotate kill -HUP
        mosquitto_pub(mosquitto.port, "h/x", "between", args=("-q", "1"))  # still the moved file
        wait(lambda: len(payloads(rotated)) == 11, "written to the moved file")
        os.kill(run.pid, signal.SIGHUP)
        wait(out.exists, "a new file at the path")
        for i in range(10):
            mosquitto_pub(mosquitto.port, "h/x", f"b{i}", args=("-q", "1"))
        wait(lambda: len(payloads(out)) == 10, "ten in the new file")
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(20) == 0, (tmp_path / "run.stderr").read_text()
        err.close()
    assert payloads(rotated) == [f"a{i}" for i in range(10)] + ["between"]
    assert payloads(out) == [f"b{i}" for i in range(10)]
    last = orjson.loads(out.read_bytes().splitlines()[-1])
    assert last["event_type"] == "log_close"
