"""A small simulated network on loopback, for ``bustap demo``.

Two brokers started for the demo (Mosquitto with a password file and a
verbose log; nats-server with monitoring), and the traffic operators see in
the field:

- Junos routers (vmx4, vmx5) publishing JET events over MQTT: interface
  flaps, commits, SSH logins (seed 000);
- IoT sensors publishing bare numbers, and a camera publishing binary blobs;
- BOSH agents publishing heartbeats and alerts over NATS, and a director
  calling them over request/reply (seed 002);
- an attacker guessing MQTT passwords and subscribing to ``#``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ConnectError
from ..net.mqtt import ConnectOptions, MqttClient

ROUTERS = ("vmx4", "vmx5")
INTERFACES = ("ge-0/0/0.0", "ge-0/0/1.0", "xe-0/0/2.0")
SENSORS = ("greenhouse-1", "greenhouse-2", "cellar")
AGENTS = tuple(str(uuid.UUID(int=random.Random(i).getrandbits(128))) for i in range(3))
JOBS = ("nfs_server", "diego_cell", "router")
PASSWORD = "demo-router-pw"  # a demo credential, generated into the demo's own broker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _find(name: str, *paths: str) -> str:
    found = shutil.which(name) or next((p for p in paths if os.path.exists(p)), None)
    if found is None:
        raise ConfigError(f"the demo needs {name}: install it (make setup does)", value=name)
    return found


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConnectError(f"127.0.0.1:{port}", "demo broker exited at start")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise ConnectError(f"127.0.0.1:{port}", "demo broker did not start")


@dataclass
class Brokers:
    dir: Path
    mqtt_port: int = field(default_factory=_free_port)
    nats_port: int = field(default_factory=_free_port)
    nats_http_port: int = field(default_factory=_free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def mosquitto_log(self) -> Path:
        return self.dir / "mosquitto.log"

    def start(self) -> Brokers:
        self.dir.mkdir(parents=True, exist_ok=True)
        passwd = self.dir / "passwd"
        passwd.write_text("")
        subprocess.run([_find("mosquitto_passwd", "/usr/bin/mosquitto_passwd"), "-b",
                        str(passwd), "router", PASSWORD], check=True, capture_output=True)
        passwd.chmod(0o644)
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            f"user root\npersistence false\nlog_dest file {self.mosquitto_log}\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "log_type subscribe\nlog_type unsubscribe\nconnection_messages true\n"
            f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous false\n"
            f"password_file {passwd}\nsys_interval 5\n")
        mosq = subprocess.Popen([_find("mosquitto", "/usr/sbin/mosquitto"), "-c", str(conf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(mosq)
        _wait_port(self.mqtt_port, mosq)
        nats = subprocess.Popen([_find("nats-server", "/usr/sbin/nats-server"), "-a",
                                 "127.0.0.1", "-p", str(self.nats_port), "-m",
                                 str(self.nats_http_port), "-l", str(self.dir / "nats.log")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(nats)
        _wait_port(self.nats_port, nats)
        return self

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)


@contextlib.contextmanager
def brokers(directory: Path) -> Iterator[Brokers]:
    b = Brokers(directory).start()
    try:
        yield b
    finally:
        b.stop()


def jet_event(router: str, rng: random.Random) -> tuple[str, dict[str, Any]]:
    now = time.strftime("%Y-%m-%d-%H:%M:%S")
    kind = rng.choices(["link", "commit", "ssh"], weights=[5, 2, 2])[0]
    base = {"hostname": router, "time": now, "facility": "daemon"}
    if kind == "link":
        iface = rng.choice(INTERFACES)
        down = rng.random() < 0.5
        event = "SNMP_TRAP_LINK_DOWN" if down else "SNMP_TRAP_LINK_UP"
        state = "down(2)" if down else "up(1)"
        body = {**base, "event-id": event, "severity": "warn" if down else "info",
                "process-id": 4086, "process-name": "mib2d",
                "message": f"{event}: ifIndex 529, ifAdminStatus up(1), ifOperStatus {state}, "
                           f"ifName {iface}",
                "attributes": {"snmp-interface-index": "529", "admin-status": "up(1)",
                               "operational-status": state, "interface-name": iface}}
    elif kind == "commit":
        event = "UI_COMMIT_COMPLETED"
        body = {**base, "event-id": event, "severity": "warn", "facility": "interact",
                "process-id": 80151, "process-name": "mgd",
                "message": f"{event}: commit complete", "attributes": {}}
    else:
        event = "SYSTEM"
        body = {**base, "event-id": event, "severity": "info", "facility": "auth",
                "process-id": 80148, "process-name": "sshd",
                "message": "Accepted publickey for netops from 192.0.2.10 port 47968 ssh2",
                "attributes": {"message": "Accepted publickey for netops"}}
    return f"/junos/events/syslog/{event}", {"jet-event": body}


def heartbeat(i: int, rng: random.Random) -> dict[str, Any]:
    cpu = 20 + 60 * rng.random() if i == 1 else 2 * rng.random()
    return {"deployment": "cf-demo", "job": JOBS[i], "index": 0, "job_state": "running",
            "vitals": {"cpu": {"sys": f"{cpu / 3:.1f}", "user": f"{cpu:.1f}", "wait": "0.0"},
                       "disk": {"ephemeral": {"inode_percent": "0", "percent": "11"},
                                "persistent": {"inode_percent": "10",
                                               "percent": str(70 + i * 8)},
                                "system": {"inode_percent": "33", "percent": "47"}},
                       "load": [f"{cpu / 50:.2f}", "0.10", "0.05"],
                       "mem": {"kb": "513568", "percent": str(13 + i * 20)},
                       "swap": {"kb": "153344", "percent": "4"},
                       "uptime": {"secs": 11391077 + int(time.time()) % 100000}},
            "node_id": AGENTS[i]}


async def run_network(b: Brokers, rate: float = 1.0) -> None:
    """Publish until cancelled. ``rate`` scales every publisher's pace."""
    import nats

    rng = random.Random(42)
    routers = MqttClient(ConnectOptions(host="127.0.0.1", port=b.mqtt_port, client_id="vmx",
                                        username="router", password=PASSWORD, version=4))
    await routers.connect()
    nc = await nats.connect(f"nats://127.0.0.1:{b.nats_port}", name="bosh-agents")
    director = await nats.connect(f"nats://127.0.0.1:{b.nats_port}", name="bosh-director")

    async def agent_rpc(msg: Any) -> None:
        await nc.publish(msg.reply, json.dumps({"value": {"job_state": "running"}}).encode())

    for agent in AGENTS:
        await nc.subscribe(f"agent.{agent}", cb=agent_rpc)

    async def every(period: float, fn: Any) -> None:
        while True:
            await fn()
            await asyncio.sleep(period / rate)

    async def junos() -> None:
        for router in ROUTERS:
            topic, body = jet_event(router, rng)
            await routers.publish(topic, json.dumps(body, indent=4).encode(), qos=1)

    async def sensors() -> None:
        for s in SENSORS:
            await routers.publish(f"sensors/{s}/temperature",
                                  f"{18 + 6 * rng.random():.1f}".encode())
        await routers.publish("cameras/door/snapshot", os.urandom(64))

    async def heartbeats() -> None:
        for i, agent in enumerate(AGENTS):
            await nc.publish(f"hm.agent.heartbeat.{agent}", json.dumps(heartbeat(i, rng)).encode())
        if rng.random() < 0.1:
            alert = {"id": str(uuid.uuid4()), "severity": 2, "title": "process is not running",
                     "summary": "route_emitter is not running", "created_at": int(time.time())}
            await nc.publish(f"hm.agent.alert.{AGENTS[1]}", json.dumps(alert).encode())

    async def director_calls() -> None:
        agent = rng.choice(AGENTS)
        reply = f"director.{uuid.uuid4()}.{agent}.{uuid.uuid4()}"
        sub = await director.subscribe(reply, max_msgs=1)
        await director.publish(f"agent.{agent}", json.dumps(
            {"protocol": 3, "method": "get_state", "arguments": ["full"],
             "reply_to": reply}).encode(), reply=reply)
        with contextlib.suppress(Exception):
            await sub.next_msg(timeout=1)

    async def attacker() -> None:
        for guess in ("admin", "123456", "router"):
            c = MqttClient(ConnectOptions(host="127.0.0.1", port=b.mqtt_port,
                                          client_id=f"scanner-{rng.randrange(1000)}",
                                          username="admin", password=guess, version=4))
            with contextlib.suppress(ConnectError):
                await c.connect()
                await c.close()

    try:
        await asyncio.gather(every(1.0, junos), every(0.5, sensors), every(1.0, heartbeats),
                             every(2.0, director_calls), every(5.0, attacker))
    finally:
        with contextlib.suppress(Exception):
            await routers.close()
            await nc.close()
            await director.close()
