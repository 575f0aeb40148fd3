"""`bustap demo`: its own brokers, the simulated network with its trouble on a
schedule, the pipeline of `bustap run` on it; every trouble raises its alert
and nothing else fires but true findings about the demo's own brokers."""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import pytest
from tests.conftest import read_records, run_bustap

pytestmark = pytest.mark.e2e

#: what each scheduled trouble raises (demo/network.py TROUBLES)
SCHEDULED = {"auth_failure_burst", "wildcard_subscription", "permission_violation",
             "link_flap", "sensor_flood", "plant_schema", "agent_silent"}
#: true findings about the demo's brokers and what the trouble leaves behind:
#: old releases, routers and NATS clients on plaintext, the attacker's new client
TRUE = {"broker_version", "plaintext_credentials", "new_client"}


def test_demo_taps_everything_and_every_trouble_raises_its_alert(tmp_path: Path) -> None:
    store = tmp_path / "demo.duckdb"
    out = tmp_path / "demo.jsonl"
    res = run_bustap("demo", "--duration", "90", "--no-browser", "--quiet", "--store",
                     str(store), "-o", str(out), timeout=150)
    assert res.returncode == 0, res.stderr
    recs = read_records(out)
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    per_source = Counter(r["source"].split("://")[0] + ("-log" if ".log" in r["source"]
                                                          else "") for r in recs)
    assert {"mqtts", "nats", "file-log", "nats-monitor"} <= set(per_source), per_source
    logs = {r["source"].rsplit("/", 1)[-1].split("?")[0] for r in recs
            if r["source"].startswith("file:")}
    assert logs == {"mosquitto.log", "nats.log"}
    decoders = {r.get("decoder") for r in recs if r.get("kind") == "message"}
    assert {"junos-jet", "bosh-heartbeat", "bosh-rpc", "number", "binary", "json"} <= decoders
    fired = Counter(r["rule"] for r in recs
                    if r.get("event_type") == "alert" and r["state"] == "firing")
    assert set(fired) >= SCHEDULED, fired
    assert set(fired) <= SCHEDULED | TRUE, set(fired) - SCHEDULED - TRUE
    for r in recs:  # the tap's passwords come from the environment, never shown
        assert "password" not in {k.lower() for k in r}
    assert "trouble: an attacker guesses MQTT passwords" in res.stderr
    assert "alerts raised" in res.stderr and str(store) in res.stderr
    # the store has it all, and the commands the demo suggests work on it
    shown = run_bustap("alerts", "--store", str(store), "--state", "all")
    assert shown.returncode in (0, 1) and "link_flap" in shown.stdout
    for line in res.stderr.splitlines():
        line = line.strip()
        if line.startswith("bustap ") and "--store" in line:
            args = line.split()[1:]
            args = [a.strip('"') for a in args]
            if "--where" in args:  # the shell would take the quotes off the expression
                i = args.index("--where")
                args[i + 1:] = [" ".join(args[i + 1:]).strip('"')]
            if "--plot" in args:
                args[args.index("--plot") + 1] = str(tmp_path / "demo.png")
            ran = run_bustap(*args)
            assert ran.returncode in (0, 1), (line, ran.stderr)
    assert (tmp_path / "demo.png").stat().st_size > 1000


def test_print_config_is_a_run_config(tmp_path: Path) -> None:
    res = run_bustap("demo", "--print-config", timeout=30)
    assert res.returncode == 0, res.stderr
    cfg = tomllib.loads(res.stdout)
    assert len(cfg["source"]) == 5 and cfg["sink"][0]["url"] == "bustap.duckdb"
    assert {r["id"] for r in cfg["rule"]} >= {"link_flap", "agent_silent"}
    assert all("password" not in s for s in cfg["source"])  # password_env only
