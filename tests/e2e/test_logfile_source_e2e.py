"""The file source follows rename and copytruncate rotation and resumes from
its saved offset after a restart: every line exactly once."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import Bustap

pytestmark = pytest.mark.e2e


def _lines(a: int, b: int) -> str:
    return "".join(f"{1700000000 + i}: Received PUBLISH from w (d0, q0, r0, m0, 'seq/{i}', ... "
                   f"(1 bytes))\n" for i in range(a, b))


def _seqs(b: Bustap) -> Counter[int]:
    return Counter(int(r["topic"].split("/")[1]) for r in b.records()
                   if r.get("event") == "publish_in")


def test_rotation_and_restart_lose_and_repeat_nothing(
        bustap_bg: Callable[..., Bustap], tmp_path: Path) -> None:
    log = tmp_path / "mosquitto.log"
    log.write_text(_lines(0, 100))
    env = {"BUSTAP_STATE_DIR": str(tmp_path / "state")}
    url = f"file://{log}?format=mosquitto&from_start=true&poll_secs=0.05"

    def have(n: int) -> Callable[[list[dict[str, object]]], bool]:
        return lambda recs: sum(r.get("event") == "publish_in" for r in recs) >= n

    b = bustap_bg("capture", url, env=env)
    b.wait_for(have(100))
    # Rename rotation, with the writer still appending to the old file a moment.
    with log.open("a") as old:
        old.write(_lines(100, 150))
        old.flush()
        log.rename(tmp_path / "mosquitto.log.1")
        old.write(_lines(150, 200))
    log.write_text(_lines(200, 300))
    b.wait_for(have(300))
    # copytruncate rotation.
    shutil.copy(log, tmp_path / "mosquitto.log.2")
    with log.open("r+") as f:
        f.truncate(0)
    with log.open("a") as f:
        f.write(_lines(300, 350))
    b.wait_for(have(350))
    # Stop, keep writing, rotate while bustap is away, restart.
    assert b.stop() == 0
    with log.open("a") as f:
        f.write(_lines(350, 400))
    os.rename(log, tmp_path / "mosquitto.log.3")
    log.write_text(_lines(400, 450))
    b2 = bustap_bg("capture", url, env=env)  # same output file: appended
    b2.wait_for(have(450))
    with log.open("a") as f:
        f.write(_lines(450, 500) + "1: a line without its newline yet")
    b2.wait_for(have(500))
    assert b2.stop() == 0
    seen = _seqs(b2)
    assert sorted(seen) == list(range(500)), sorted(set(range(500)) - set(seen))
    assert max(seen.values()) == 1, [k for k, v in seen.items() if v > 1]
    assert not any(r.get("line") == "1: a line without its newline yet" for r in b2.records())
