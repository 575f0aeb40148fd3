"""The dashboard against real brokers: a Mosquitto (its log tailed) and a
nats-server (its monitoring port polled) captured into DuckDB while a
publisher runs, then

- ``bustap serve`` on that store, looked at in headless Debian chromium:
  non-zero rates, the topic tree with last values, charts drawn by plotly
  (in the DOM after the page's scripts ran, and on a screenshot kept in
  tests/e2e/artifacts/), a firing alert; and with a token, the page opened
  once with ``?token=`` and then read through its cookie;
- ``bustap run`` with ``[web]``: live updates (server-sent events) while
  the publisher runs, and the pipeline's own counters in /metrics.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from tests.conftest import run_bustap
from tests.fixtures.brokers import Mosquitto, NatsServer, free_port, stop_process, wait_port
from tests.fixtures.traffic import Publisher

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("web")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
BUSTAP = [sys.executable, "-m", "bustap.cli"]
RULES = """
[detect]
learn_secs = 0
disable = ["new_client", "new_address"]

[[rule]]
id = "too_hot"
where = "payload.temp > 30"
group_by = ["topic"]
severity = "warning"
summary = "{topic}: {payload.temp} C"
"""



def sources(mosq: Mosquitto, nats_server: NatsServer) -> list[str]:
    return [mosq.url, nats_server.url,
            f"file://{mosq.log}?format=mosquitto&from_start=true&state=none&poll_secs=0.2",
            f"nats-monitor://127.0.0.1:{nats_server.http_port}?interval_secs=1"]


@pytest.fixture(scope="module")
def brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mosquitto, NatsServer]]:
    tmp = tmp_path_factory.mktemp("web-brokers")
    mosq = Mosquitto(tmp / "mosq", extra="allow_anonymous true").start()
    server = NatsServer(tmp / "nats").start()
    yield mosq, server
    mosq.stop()
    server.stop()


@pytest.fixture(scope="module")
def store(brokers: tuple[Mosquitto, NatsServer], tmp_path_factory: pytest.TempPathFactory
          ) -> Path:
    """A DuckDB store captured from the brokers while the publisher ran."""
    mosq, server = brokers
    tmp = tmp_path_factory.mktemp("web-store")
    rules = tmp / "rules.toml"
    rules.write_text(RULES)
    path = tmp / "bustap.duckdb"
    cap = subprocess.Popen([*BUSTAP, "capture", *sources(mosq, server), "--rules", str(rules),
                            "-o", f"duckdb://{path}", "-W", "7"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env={**os.environ, "BUSTAP_STATE_DIR": str(tmp / "state")})
    time.sleep(1.5)  # subscribed
    with Publisher(mosq.port, server.url, interval=0.08):
        assert cap.wait(30) == 0, cap.stderr.read().decode() if cap.stderr else ""
    if cap.stderr:
        cap.stderr.close()
    return path


class Serve:
    def __init__(self, store: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [*BUSTAP, "serve", "--store", str(store), "--bind", f"127.0.0.1:{self.port}",
             *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})})
        wait_port(self.port, 15, proc=self.proc)  # type: ignore[arg-type]

    def stop(self) -> None:
        stop_process(self.proc)  # type: ignore[arg-type]
        if self.proc.stderr:
            self.proc.stderr.close()


def chromium(url: str, profile: Path, *args: str) -> str:
    """Headless chromium on a fresh profile: loads ``url``, lets its scripts
    and fetches finish (virtual time), then dumps the DOM or screenshots."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={profile}", "--virtual-time-budget=8000", *args, url]
    out = subprocess.run(cmd, capture_output=True, timeout=90, check=True)
    return out.stdout.decode(errors="replace")


def element(dom: str, id_: str) -> str:
    """The text from an element's opening tag to the next section-level id."""
    start = dom.index(f'id="{id_}"')
    return dom[start:start + 200_000]


def text_of(dom: str, id_: str) -> str:
    m = re.search(rf'id="{id_}"[^>]*>([^<]*)<', dom)
    assert m, f"no #{id_}"
    return m.group(1)


def test_page_in_chromium(store: Path, tmp_path: Path) -> None:
    srv = Serve(store)
    try:
        # ?live=0: a still page; an open event stream would hold virtual time
        page = f"{srv.url}/?live=0"
        dom = chromium(page, tmp_path / "p1", "--dump-dom", "--window-size=1400,1000")
        assert 'data-ready="1"' in dom, dom[:3000]
        rate = text_of(dom, "c-rate")
        assert rate not in ("—", "0") and float(rate.rstrip("k")) > 0, rate
        assert text_of(dom, "c-bytes") not in ("—", "0 B/s")
        tree = element(dom, "tree")
        for topic in ("room0", "room1", "router0", "router1", "telemetry", "sensors"):
            assert f">{topic}<" in tree, topic
        assert re.search(r'class="last"[^>]*>= \{"temp":\d+\}<', tree)  # last values
        assert re.search(r'class="last"[^>]*>= \{"cpu":\d+,"mem":40\}<', tree)
        # plotly drew the charts: its SVG and its traces, after the scripts ran
        for chart in ("chart-rates", "chart-topic", "chart-timeline"):
            part = element(dom, chart)
            assert 'class="main-svg"' in part[:20000] and 'class="trace scatter' in \
                part[:60000], chart
        firing = element(dom, "firing")[:20000]
        assert "too_hot" in firing and "sensors/room" in firing
        assert int(text_of(dom, "c-firing")) >= 1
        events = element(dom, "clients")[:40000]
        assert "edge-agent-1" in events  # NATS clients by their connection name
        assert ">sensor-0<" in events
        results = element(dom, "results")[:40000]
        assert "telemetry.router" in results or "sensors/room" in results

        shot = tmp_path / "dashboard.png"
        chromium(page, tmp_path / "p2", f"--screenshot={shot}", "--window-size=1400,1300")
        assert shot.stat().st_size > 50_000
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(shot, ARTIFACTS / "dashboard.png")
    finally:
        srv.stop()


def test_token_once_in_the_url_then_the_cookie(store: Path, tmp_path: Path) -> None:
    srv = Serve(store, env={"BUSTAP_WEB_TOKEN": "s3cret-t0ken"})
    try:
        assert httpx.get(f"{srv.url}/api/overview").status_code == 401
        assert httpx.get(f"{srv.url}/metrics").status_code == 401
        ok = httpx.get(f"{srv.url}/metrics", headers={"Authorization": "Bearer s3cret-t0ken"})
        assert ok.status_code == 200 and "bustap_store_messages" in ok.text
        # the browser follows the redirect; every fetch after it rides on the cookie
        dom = chromium(f"{srv.url}/?token=s3cret-t0ken&live=0", tmp_path / "p",
                       "--dump-dom")
        assert 'data-ready="1"' in dom and "too_hot" in dom
        assert "s3cret-t0ken" not in dom
        denied = chromium(f"{srv.url}/?live=0", tmp_path / "p2", "--dump-dom")
        assert "unauthorized" in denied
    finally:
        srv.stop()


def test_serve_beyond_loopback_needs_a_token(store: Path) -> None:
    r = run_bustap("serve", "--store", str(store), "--bind", "0.0.0.0:0")
    assert r.returncode == 2
    assert "needs a token" in r.stderr


def test_run_with_web_streams_updates_and_self_metrics(
        brokers: tuple[Mosquitto, NatsServer], tmp_path: Path) -> None:
    mosq, server = brokers
    port = free_port()
    cfg = tmp_path / "run.toml"
    body = "".join(f'[[source]]\nurl = "{u}"\n\n' for u in sources(mosq, server))
    cfg.write_text(f'name = "webtap"\n{body}[[sink]]\nurl = "duckdb://{tmp_path}/live.duckdb"'
                   f'\n\n[web]\nbind = "127.0.0.1:{port}"\n{RULES}')
    err = (tmp_path / "run.stderr").open("wb")
    # alert state of its own: a state left by another run would say too_hot already fires
    run = subprocess.Popen([*BUSTAP, "run", str(cfg)], stdout=subprocess.DEVNULL, stderr=err,
                           env={**os.environ, "BUSTAP_STATE_DIR": str(tmp_path / "state")})
    try:
        wait_port(port, 20, proc=run)  # type: ignore[arg-type]
        base = f"http://127.0.0.1:{port}"
        updates: list[dict[str, object]] = []
        with Publisher(mosq.port, server.url, interval=0.1), httpx.Client(timeout=20) as c, \
                c.stream("GET", f"{base}/api/stream") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            deadline = time.monotonic() + 20
            event = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "update":
                    updates.append(orjson.loads(line[6:]))
                    topics = {r.get("topic") for u in updates for r in u["records"]}  # type: ignore[union-attr]
                    if len(updates) >= 2 and any(str(t).startswith("telemetry.")
                                                 for t in topics):
                        break
                assert time.monotonic() < deadline, updates
            overview = c.get(f"{base}/api/overview").json()
            while time.monotonic() < deadline:  # the temperature passes 30 after ~2 s
                if any(a["rule"] == "too_hot" for a in c.get(f"{base}/api/alerts").json()):
                    break
                time.sleep(0.3)
            metrics = c.get(f"{base}/metrics").text
        assert all(u["new"] for u in updates)  # type: ignore[index]
        assert overview["msgs_per_sec"] > 0
        assert overview["pipeline"]["received"] > 0
        received = re.search(r"^bustap_received_total (\S+)$", metrics, re.M)
        assert received and float(received.group(1)) > 0
        assert re.search(r'^bustap_topic_messages_total\{topic="sensors/room0/temp"\} [1-9]',
                         metrics, re.M)
        assert "bustap_queue_depth" in metrics and 'bustap_alerts{rule="too_hot"' in metrics
    finally:
        run.terminate()
        assert run.wait(20) == 0, (tmp_path / "run.stderr").read_text()
        err.close()
