"""MQTT 5 shared subscriptions: two collectors in ``$share/GROUP/filter`` split
the traffic and together get all of it."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import Bustap
from tests.fixtures.brokers import Mosquitto

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("version", ["5", "311"])
def test_two_captures_split_one_shared_subscription(
        mosquitto_factory: Callable[..., Mosquitto], bustap_bg: Callable[..., Bustap],
        tmp_path: Path, version: str) -> None:
    broker = mosquitto_factory("allow_anonymous true\nmax_queued_messages 0")
    args = ("capture", broker.url, "-t", "$share/taps/s/#", "--qos", "1",
            "--protocol-version", version)
    a = bustap_bg(*args, out="a.jsonl")
    b = bustap_bg(*args, out="b.jsonl")
    a.wait_ready()
    b.wait_ready()
    n = 2000
    (tmp_path / "lines").write_text("".join(f"m{i}\n" for i in range(n)))
    with (tmp_path / "lines").open("rb") as stdin:
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", "s/x", "-q", "1", "-l"],
                       stdin=stdin, check=True, timeout=30)

    def payloads(x: Bustap) -> Counter[str]:
        return Counter(str(m["payload"]) for m in x.messages())

    deadline = time.monotonic() + 20
    while (sum(payloads(a).values()) + sum(payloads(b).values()) < n
           and time.monotonic() < deadline):
        time.sleep(0.1)
    assert a.stop() == 0 and b.stop() == 0
    pa, pb = payloads(a), payloads(b)
    assert set(pa) | set(pb) == {f"m{i}" for i in range(n)}
    assert not set(pa) & set(pb)  # split, not copied
    assert pa and pb
    assert a.records()[0]["filters"] == ["$share/taps/s/#"]
