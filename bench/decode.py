"""Decode throughput: messages per second through DecoderChain.decode, per
decoder, on the seed payloads (tests/data/seeds). Run ``python -m bench.decode``.

Each case decodes the same few payloads over a realistic spread of topics
(so the per-topic cache sees repeats, as on a real bus) into a fresh record
dict per message, as the pipeline does. Nothing here asserts on speed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bustap.decode import DecoderChain
from bustap.message import Message

SEEDS = Path(__file__).resolve().parent.parent / "tests" / "data" / "seeds"
MESSAGES = int(os.environ.get("BENCH_DECODE_MESSAGES", "50000"))
TOPICS = 200  # distinct topics per case


def _seed(rel: str) -> bytes:
    return (SEEDS / rel).read_bytes()


def _cases() -> dict[str, tuple[str, Callable[[int], str], list[bytes]]]:
    junos = [_seed(f"junos_jet/{i}.json") for i in range(7)]
    pm = [_seed(f"pmacct/{n}.json") for n in ("bgp_log_update", "bmp_route_monitor",
                                               "telemetry_json", "telemetry_gpb")]
    return {
        "junos-jet (topic)": ("mqtt", lambda i: f"/junos/events/syslog/EV{i}", junos),
        "junos-jet (sniffed)": ("mqtt", lambda i: f"routers/r{i}/events", junos),
        "bosh-heartbeat": ("nats", lambda i: f"hm.agent.heartbeat.agent-{i}",
                           [_seed("bosh/heartbeat.json")]),
        "bosh-alert": ("nats", lambda i: f"hm.agent.alert.agent-{i}", [_seed("bosh/alert.json")]),
        "bosh-rpc (requests)": ("nats", lambda i: f"agent.agent-{i}", [
            _seed("bosh/rpc_get_state.json"), _seed("bosh/rpc_ssh_setup.json"),
            _seed("bosh/rpc_fetch_logs.json")]),
        "bosh-rpc (replies)": ("nats", lambda i: f"director.d.agent-{i}.r", [
            _seed("bosh/director_reply_ping.json"),
            _seed("bosh/director_reply_exception.json")]),
        "pmacct": ("mqtt", lambda i: f"pmacct/r{i}", pm),
        "syslog": ("mqtt", lambda i: f"logs/host{i}", [
            b"<28>Aug 28 09:30:51 vmx4 mib2d[4086]: SNMP_TRAP_LINK_DOWN: ifIndex 529, "
            b"ifAdminStatus down(2), ifOperStatus down(2), ifName ge-0/0/1.0",
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
            b'[exampleSDID@32473 iut="3" eventSource="Application"] An event']),
        "json": ("mqtt", lambda i: f"sensors/s{i}/state", [b'{"t": 21.5, "h": 40, "ok": true}']),
        "number": ("mqtt", lambda i: f"sensors/s{i}/temperature", [b"21.5", b"-3"]),
        "text": ("mqtt", lambda i: f"sensors/s{i}/status", [b"online", b"door open"]),
        "binary": ("mqtt", lambda i: f"sensors/s{i}/raw", [bytes(range(64))]),
        "bad input (truncated)": ("mqtt", lambda i: f"/junos/events/syslog/EV{i}",
                                  [j[: len(j) // 2] for j in junos]),
    }


def _messages(protocol: str, topic: Callable[[int], str], payloads: list[bytes], n: int
              ) -> list[Message]:
    now = time.time()
    pool = [Message(protocol, topic(i % TOPICS), payloads[i % len(payloads)], now)
            for i in range(max(TOPICS, len(payloads)) * 2)]
    return [pool[i % len(pool)] for i in range(n)]


def _time(chain: DecoderChain, msgs: list[Message]) -> float:
    decode = chain.decode
    start = time.perf_counter()
    for m in msgs:
        rec: dict[str, Any] = {"size": len(m.payload)}
        decode(m, rec)
    return time.perf_counter() - start


def run(messages: int = MESSAGES) -> list[dict[str, Any]]:
    """One row per case: {case, messages, secs, rate}."""
    rows: list[dict[str, Any]] = []
    for case, (protocol, topic, payloads) in _cases().items():
        chain = DecoderChain()
        msgs = _messages(protocol, topic, payloads, messages)
        _time(chain, msgs[: min(2000, messages)])  # warm the per-topic caches
        secs = _time(chain, msgs)
        rows.append({"case": case, "messages": messages, "secs": round(secs, 4),
                     "rate": round(messages / secs) if secs > 0 else 0})
    rule_chain = DecoderChain(rules=[{"filter": "sensors/+/temperature", "decoder": "number",
                                      "device": "topic[1]"}])
    msgs = _messages("mqtt", lambda i: f"sensors/s{i}/temperature", [b"21.5"], messages)
    _time(rule_chain, msgs[:2000])
    secs = _time(rule_chain, msgs)
    rows.append({"case": "rule: number + device=topic[1]", "messages": messages,
                 "secs": round(secs, 4), "rate": round(messages / secs) if secs > 0 else 0})
    return rows


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    rows = run()
    table = Table(title=f"decode throughput ({MESSAGES} messages per case, one core)")
    table.add_column("case")
    table.add_column("messages", justify="right")
    table.add_column("secs", justify="right")
    table.add_column("msg/s", justify="right")
    for r in rows:
        table.add_row(r["case"], str(r["messages"]), f"{r['secs']:.3f}", f"{r['rate']:,}")
    Console().print(table)


if __name__ == "__main__":
    main()
