"""A sink server that goes away for 30 s in the middle of a capture and comes
back (issue 13, "Pipelines without loss"): a JetStream on a nats-server the
test owns (file storage, so the stream outlives the restart) and a
PostgreSQL the test owns. A publisher sends numbered QoS 1 messages before,
during and after the outage; afterwards every number is in the sink exactly
once, in publish order, the spool is empty, and stderr says what happened
without a password in it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
from nats.js import api
from tests.conftest import Bustap
from tests.fixtures.brokers import Mosquitto, NatsServer
from tests.fixtures.postgres import Postgres
from tests.fixtures.traffic import NumberedPublisher

pytestmark = pytest.mark.e2e

BgFactory = Callable[..., Bustap]

OUTAGE_SECS = 30.0  # the done-when: a real 30 s, not less
RATE = 150.0  # messages a second, all the way through
BEFORE_SECS = 3.0
AFTER_SECS = 3.0
# the spool retries a down sink with full-jitter backoff, capped here at 3 s (30 by
# default): the replay starts within 3 s of the server's return
RETRY = {"BUSTAP_SPOOL_RETRY_MAX_SECS": "3"}
DRAIN_SECS = 60.0


@dataclass
class Outage:
    published: int  # messages mosquitto_pub sent (and the broker acknowledged)
    stopped_at: int  # messages sent when the server was stopped
    down_secs: float  # how long the server was really away
    drained_secs: float  # from the server's start to the sink holding everything
    records: list[dict[str, Any]]  # what the capture wrote to its jsonl file
    stderr: str


def spool_files(spool: Path) -> list[Path]:
    return sorted(spool.iterdir()) if spool.exists() else []


def spool_sizes(spool: Path) -> dict[str, int]:
    sizes = {}
    for p in spool_files(spool):
        with contextlib.suppress(OSError):  # the spool empties itself meanwhile
            sizes[p.name] = p.stat().st_size
    return sizes


def run_outage(b: Bustap, mosquitto: Mosquitto, spool: Path, *, stop: Callable[[], object],
               start: Callable[[], object], sink_messages: Callable[[], int]) -> Outage:
    """Publish through a stop/start of the sink's server; wait until the sink
    holds every message and the spool is empty; stop the capture."""
    b.wait_ready()
    pub = NumberedPublisher(mosquitto.port, "outage/n", rate=RATE).start()
    try:
        t0 = time.monotonic()
        deadline = t0 + 15
        while sink_messages() < 50:  # the sink takes records before the outage
            assert time.monotonic() < deadline and b.proc.poll() is None, b.stderr()
            time.sleep(0.2)
        time.sleep(max(0.0, t0 + BEFORE_SECS - time.monotonic()))

        stopped_at = pub.sent
        down = time.monotonic()
        stop()
        time.sleep(max(0.0, down + OUTAGE_SECS - time.monotonic()))
        # Capture went on while the sink was away: the jsonl file has what was
        # published in the second half of the outage, and the spool holds it.
        seen = [m["payload"] for m in b.messages()]
        assert seen and max(seen) >= stopped_at + RATE * OUTAGE_SECS / 2, (
            stopped_at, seen[-3:], b.stderr())
        assert any(name.endswith(".jsonl") and size > 0
                   for name, size in spool_sizes(spool).items()), b.stderr()
        start()
        up = time.monotonic()
        down_secs = up - down
        time.sleep(AFTER_SECS)
    finally:
        published = pub.stop()

    deadline = up + DRAIN_SECS
    while sink_messages() < published or spool_files(spool):
        assert time.monotonic() < deadline and b.proc.poll() is None, (
            f"{sink_messages()} of {published} in the sink after {DRAIN_SECS}s; spool "
            f"{spool_sizes(spool)}\n{b.stderr()}")
        time.sleep(0.25)
    drained_secs = time.monotonic() - up
    assert b.stop(20) == 0, b.stderr()
    print(f"published {published}, {stopped_at} before the stop; server down "
          f"{down_secs:.1f}s; sink complete and spool empty {drained_secs:.1f}s after start")
    return Outage(published, stopped_at, down_secs, drained_secs, b.records(), b.stderr())


def check_capture(o: Outage, spool: Path, sink_prefix: str, secret: str) -> dict[str, Any]:
    """What the capture itself says: it got every message, it spooled, its
    spool is empty and its log_close counters show nothing left or dropped."""
    assert o.down_secs >= OUTAGE_SECS
    msgs = [r for r in o.records if r.get("kind") == "message"]
    assert [m["payload"] for m in msgs] == list(range(o.published))
    assert spool_files(spool) == []
    close = o.records[-1]
    assert close["event_type"] == "log_close", close
    [(name, sink)] = [(n, s) for n, s in close["sinks"].items() if n.startswith(sink_prefix)]
    assert secret not in name
    assert sink["spooled"] > 0 and sink["errors"] >= 1, sink
    assert sink["queue_depth"] == 0 and sink["dropped"] == {}, sink
    assert close["counters"]["sent"] == close["counters"]["received"]
    assert "spooling" in o.stderr and "spooled records replayed" in o.stderr, o.stderr
    assert secret not in o.stderr
    assert secret not in orjson.dumps(o.records).decode()
    return dict(sink)


# --- JetStream ----------------------------------------------------------------

STREAM = "OUTAGE"


async def _stream_count(url: str) -> int:
    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        info = await nc.jetstream(timeout=2).stream_info(STREAM, subjects_filter="tap.message")
        return int(info.state.messages)
    finally:
        await nc.close()


def stream_count(url: str) -> int:
    try:
        return asyncio.run(_stream_count(url))
    except Exception:  # down, or JetStream still recovering, or no stream yet
        return 0


async def stream_records(url: str) -> list[tuple[int, dict[str, Any], str]]:
    """Every message of the stream: (stream sequence, record, Nats-Msg-Id)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    info = await js.stream_info(STREAM)
    psub = await js.pull_subscribe(
        "tap.>", stream=STREAM,
        config=api.ConsumerConfig(ack_policy=api.AckPolicy.NONE,
                                  deliver_policy=api.DeliverPolicy.ALL))
    out: list[tuple[int, dict[str, Any], str]] = []
    while len(out) < info.state.messages:
        for m in await psub.fetch(min(1000, info.state.messages - len(out)), timeout=5):
            out.append((m.metadata.sequence.stream, orjson.loads(m.data),
                        (m.headers or {}).get("Nats-Msg-Id", "")))
    await nc.close()
    return out


def test_jetstream_server_down_30s_loses_nothing(
        mosquitto: Mosquitto, nats_factory: Callable[..., NatsServer], bustap_bg: BgFactory,
        tmp_path: Path) -> None:
    password = "js-s3cret-pw"
    server = nats_factory(f'authorization {{ user: tap, password: "{password}" }}\n',
                          args=("-js", "-sd", str(tmp_path / "js")))
    url = f"nats://tap:{password}@127.0.0.1:{server.port}"
    sink = (f"jetstream://tap:{password}@127.0.0.1:{server.port}/{STREAM}"
            "?subject=tap.{kind}&create=true")
    spool = tmp_path / "spool"
    b = bustap_bg("capture", mosquitto.url, "-t", "outage/#", "--qos", "1", "--name", "out1",
                  "-o", sink, env={"BUSTAP_SPOOL_DIR": str(spool), **RETRY})

    o = run_outage(b, mosquitto, spool, stop=server.stop, start=server.start,
                   sink_messages=lambda: stream_count(url))
    counts = check_capture(o, spool, "jetstream://", password)

    got = asyncio.run(stream_records(url))
    stream_seqs = [s for s, _, _ in got]
    assert stream_seqs == sorted(stream_seqs)
    records = [r for _, r, _ in got]
    msgs = [r for r in records if r.get("kind") == "message"]
    # exactly once and in publish order
    assert [m["payload"] for m in msgs] == list(range(o.published))
    seqs = [r["seq"] for r in records]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(mid == f"{r['writer_id']}:{r['seq']}" for _, r, mid in got)
    assert {r["writer_id"] for r in records} == {"bustap/out1"}
    assert records[0]["event_type"] == "log_init" and records[-1]["event_type"] == "log_close"
    print(f"jetstream sink: {counts}")


# --- PostgreSQL -----------------------------------------------------------------


def pg_count(server: Postgres) -> int:
    try:
        with server.connect() as con:
            row = con.execute("SELECT count(*) FROM records WHERE kind = 'message'").fetchone()
            return int(row[0]) if row else 0
    except Exception:  # down, or the sink has not made its table yet
        return 0


def test_postgres_server_down_30s_loses_nothing(
        mosquitto: Mosquitto, postgres_server: Postgres, bustap_bg: BgFactory,
        tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    b = bustap_bg("capture", mosquitto.url, "-t", "outage/#", "--qos", "1", "--name", "out2",
                  "-o", postgres_server.url(), env={"BUSTAP_SPOOL_DIR": str(spool), **RETRY})

    o = run_outage(b, mosquitto, spool, stop=postgres_server.stop, start=postgres_server.start,
                   sink_messages=lambda: pg_count(postgres_server))
    counts = check_capture(o, spool, "postgresql://", postgres_server.password)

    with postgres_server.connect() as con:
        # insertion order: one transaction per insert (xmin grows), rows of a
        # COPY in the order written (a fresh table, nothing deleted)
        rows = con.execute("SELECT seq, kind, event_type, payload, writer_id FROM records "
                           "ORDER BY xmin::text::bigint, ctid").fetchall()
    seqs = [r[0] for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [r[3] for r in rows if r[1] == "message"] == list(range(o.published))
    assert {r[4] for r in rows} == {"bustap/out2"}
    assert rows[0][2] == "log_init" and rows[-1][2] == "log_close"
    print(f"postgresql sink: {counts}")
