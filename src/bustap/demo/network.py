"""A small simulated network on loopback, for ``bustap demo``.

Two brokers started for the demo: Mosquitto with a password file, an ACL, a
TLS listener beside the plain one and a log with everything in it;
nats-server with seed 002's authorization (a user per agent), monitoring and
a -DV log. Through them, the traffic operators see in the field:

- Junos routers (vmx4, vmx5) publishing JET events over plaintext MQTT:
  link events, commits, SSH logins (seed 000);
- IoT sensors publishing numbers and a JSON status over TLS, a camera
  publishing binary snapshots;
- BOSH agents publishing heartbeats and alerts over NATS, a health monitor
  listening, a director calling them over request/reply (seed 002);
- trouble on a schedule (:data:`TROUBLES`): password guessing and a ``#``
  subscription, a spoofed heartbeat, a link flap, a flooding sensor, a
  payload whose schema changes, an agent that goes silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
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


MQTT_USERS = ("router", "sensor", "camera", "tap", "ops")
NATS_USERS = ("director", "hm", "tap", *(f"agent-{i}" for i in range(len(AGENTS))))


@dataclass
class Credentials:
    """Passwords made for one demo run (never fixed, never printed)."""

    passwords: dict[str, str] = field(default_factory=lambda: {
        u: secrets.token_urlsafe(12) for u in (*MQTT_USERS, *NATS_USERS)})

    def __getitem__(self, user: str) -> str:
        return self.passwords[user]


MQTT_ACL = """\
user router
topic write /junos/events/#

user sensor
topic write sensors/#
topic write plant/#

user camera
topic write cameras/#

user tap
topic read #
topic read $SYS/#

user ops
topic readwrite #
"""


def nats_config(creds: Credentials) -> str:
    """Seed 002's authorization, with a user per agent where BOSH gives each
    agent a client certificate: an agent may publish its own heartbeats only."""
    agents = "\n".join(
        f'    {{ user: "agent-{i}", password: "{creds[f"agent-{i}"]}", permissions: {{\n'
        f'        publish: ["hm.agent.heartbeat.{a}", "hm.agent.alert.{a}", '
        f'"hm.agent.shutdown.{a}", "director.*.{a}.*"]\n'
        f'        subscribe: ["agent.{a}"] }} }}' for i, a in enumerate(AGENTS))
    return f"""\
authorization {{
  DIRECTOR = {{ publish: ["agent.*", "hm.director.alert"], subscribe: ["director.>"] }}
  HM = {{ publish: [], subscribe: ["hm.agent.heartbeat.*", "hm.agent.alert.*",
                                  "hm.agent.shutdown.*", "hm.director.alert"] }}
  users = [
    {{ user: "director", password: "{creds["director"]}", permissions: $DIRECTOR }}
    {{ user: "hm", password: "{creds["hm"]}", permissions: $HM }}
    {{ user: "tap", password: "{creds["tap"]}" }}
{agents}
  ]
}}
"""


@dataclass
class Brokers:
    dir: Path
    creds: Credentials = field(default_factory=Credentials)
    mqtt_port: int = field(default_factory=_free_port)
    mqtts_port: int = field(default_factory=_free_port)
    nats_port: int = field(default_factory=_free_port)
    nats_http_port: int = field(default_factory=_free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def mosquitto_log(self) -> Path:
        return self.dir / "mosquitto.log"

    @property
    def nats_log(self) -> Path:
        return self.dir / "nats.log"

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    def start(self) -> Brokers:
        from .certs import make_certs

        self.dir.mkdir(parents=True, exist_ok=True)
        certs = make_certs(self.dir)
        passwd = self.dir / "passwd"
        passwd.write_text("")
        for user in MQTT_USERS:
            subprocess.run([_find("mosquitto_passwd", "/usr/bin/mosquitto_passwd"), "-b",
                            str(passwd), user, self.creds[user]], check=True,
                           capture_output=True)
        passwd.chmod(0o644)
        acl = self.dir / "acl"
        acl.write_text(MQTT_ACL)
        acl.chmod(0o644)
        conf = self.dir / "mosquitto.conf"
        # log_type all: connections, subscriptions, denials and the publishes
        conf.write_text(
            f"user root\npersistence false\nlog_dest file {self.mosquitto_log}\n"
            "log_type all\nconnection_messages true\nsys_interval 5\n"
            f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
            f"listener {self.mqtt_port} 127.0.0.1\n"
            f"listener {self.mqtts_port} 127.0.0.1\ncafile {certs.ca}\n"
            f"certfile {certs.cert}\nkeyfile {certs.key}\n")
        mosq = subprocess.Popen([_find("mosquitto", "/usr/sbin/mosquitto"), "-c", str(conf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(mosq)
        _wait_port(self.mqtt_port, mosq)
        nats_conf = self.dir / "nats.conf"
        nats_conf.write_text(nats_config(self.creds))
        # -DV: logins, subscriptions and permission violations in the log
        nats = subprocess.Popen([_find("nats-server", "/usr/sbin/nats-server"), "-a",
                                 "127.0.0.1", "-p", str(self.nats_port), "-m",
                                 str(self.nats_http_port), "-DV", "-l", str(self.nats_log),
                                 "-c", str(nats_conf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(nats)
        _wait_port(self.nats_port, nats)
        _wait_port(self.nats_http_port, nats)
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


def link_event(router: str, iface: str, down: bool) -> tuple[str, dict[str, Any]]:
    event = "SNMP_TRAP_LINK_DOWN" if down else "SNMP_TRAP_LINK_UP"
    state = "down(2)" if down else "up(1)"
    body = {"hostname": router, "time": time.strftime("%Y-%m-%d-%H:%M:%S"),
            "facility": "daemon", "event-id": event, "severity": "warn" if down else "info",
            "process-id": 4086, "process-name": "mib2d",
            "message": f"{event}: ifIndex 529, ifAdminStatus up(1), ifOperStatus {state}, "
                       f"ifName {iface}",
            "attributes": {"snmp-interface-index": "529", "admin-status": "up(1)",
                           "operational-status": state, "interface-name": iface}}
    return f"/junos/events/syslog/{event}", {"jet-event": body}


#: (seconds after the start at --rate 1, what happens); the alert each one raises
TROUBLES = (
    (8.0, "attacker", "an attacker guesses MQTT passwords, then subscribes to '#' with a "
                      "stolen camera password"),
    (14.0, "spoof", "agent 0 sends a heartbeat in agent 1's name"),
    (20.0, "flap", "vmx5 ge-0/0/1.0 flaps: down and up three times"),
    (26.0, "flood", "sensor greenhouse-2 floods: 50 readings a second for 4 s"),
    (32.0, "schema", "plant p1 renames 'moisture' to 'moist' and sends it as text"),
    (38.0, "silent", "agent 2 goes silent"),
)


async def run_network(b: Brokers, rate: float = 1.0,
                      say: Callable[[str], None] = lambda text: None) -> None:
    """Publish until cancelled; the troubles of :data:`TROUBLES` on their
    schedule. ``rate`` scales every pace and the schedule."""
    import nats

    from ..net.tls import client_context

    rng = random.Random(42)
    creds = b.creds
    tls = client_context(ca=str(b.ca))

    def mqtt(user: str, client_id: str, *, secure: bool = True,
             password: str | None = None) -> MqttClient:
        return MqttClient(ConnectOptions(
            host="127.0.0.1", port=b.mqtts_port if secure else b.mqtt_port,
            client_id=client_id, username=user,
            password=creds[user] if password is None else password, version=4,
            ssl=tls if secure else None, server_hostname="localhost"))

    url = f"nats://127.0.0.1:{b.nats_port}"
    # the routers speak plaintext MQTT, as in seed 001: a true finding for the demo
    routers = mqtt("router", "junos-gw", secure=False)
    sensors = mqtt("sensor", "sensor-hub")
    camera = mqtt("camera", "door-camera")
    for c in (routers, sensors, camera):
        await c.connect()
    agents = [await nats.connect(url, user=f"agent-{i}", password=creds[f"agent-{i}"],
                                 name=f"agent-{a[:8]}") for i, a in enumerate(AGENTS)]
    director = await nats.connect(url, user="director", password=creds["director"],
                                  name="bosh-director")
    hm = await nats.connect(url, user="hm", password=creds["hm"], name="bosh-hm")
    await hm.subscribe("hm.agent.heartbeat.*")
    silent: set[int] = set()
    schema_changed = False

    for i, agent in enumerate(AGENTS):
        async def agent_rpc(msg: Any, nc: Any = agents[i]) -> None:
            await nc.publish(msg.reply, json.dumps({"value": {"job_state": "running"}}).encode())

        await agents[i].subscribe(f"agent.{agent}", cb=agent_rpc)

    async def every(period: float, fn: Any) -> None:
        while True:
            await fn()
            await asyncio.sleep(period / rate)

    async def junos() -> None:
        for router in ROUTERS:
            topic, body = jet_event(router, rng)
            if "LINK" in topic:  # a link event now and then, not a flap
                if rng.random() > 0.1:
                    continue
                iface = body["jet-event"]["attributes"]["interface-name"]
                for down in (True, False):
                    topic, body = link_event(router, iface, down)
                    await routers.publish(topic, json.dumps(body, indent=4).encode(), qos=1)
                continue
            await routers.publish(topic, json.dumps(body, indent=4).encode(), qos=1)

    async def readings() -> None:
        for s in SENSORS:
            await sensors.publish(f"sensors/{s}/temperature",
                                  f"{18 + 6 * rng.random():.1f}".encode())
        moisture = 40 + rng.randrange(5)
        status = {"moist": str(moisture), "ok": True} if schema_changed \
            else {"moisture": moisture, "ok": True}
        await sensors.publish("plant/p1/status", json.dumps(status).encode())

    async def snapshots() -> None:
        await camera.publish("cameras/door/snapshot", os.urandom(64))

    async def heartbeats() -> None:
        for i, agent in enumerate(AGENTS):
            if i not in silent:
                await agents[i].publish(f"hm.agent.heartbeat.{agent}",
                                        json.dumps(heartbeat(i, rng)).encode())
        if rng.random() < 0.1:
            alert = {"id": str(uuid.uuid4()), "severity": 2, "title": "process is not running",
                     "summary": "route_emitter is not running", "created_at": int(time.time())}
            await agents[1].publish(f"hm.agent.alert.{AGENTS[1]}", json.dumps(alert).encode())

    async def director_calls() -> None:
        agent = rng.choice([a for i, a in enumerate(AGENTS) if i not in silent])
        reply = f"director.{uuid.uuid4()}.{agent}.{uuid.uuid4()}"
        sub = await director.subscribe(reply, max_msgs=1)
        await director.publish(f"agent.{agent}", json.dumps(
            {"protocol": 3, "method": "get_state", "arguments": ["full"],
             "reply_to": reply}).encode(), reply=reply)
        with contextlib.suppress(Exception):
            await sub.next_msg(timeout=1)

    async def trouble(name: str) -> None:
        nonlocal schema_changed
        if name == "attacker":
            for guess in ("admin", "123456", "password", "router", "letmein", "qwerty"):
                c = mqtt("admin", f"scanner-{rng.randrange(1000)}", secure=False,
                         password=guess)
                with contextlib.suppress(ConnectError):
                    await c.connect()
                    await c.close()
            spy = mqtt("camera", "scanner-777", secure=False)
            await spy.connect()
            await spy.subscribe([("#", 0), ("$SYS/#", 0)])
            await asyncio.sleep(1)
            await spy.close()
        elif name == "spoof":
            await agents[0].publish(f"hm.agent.heartbeat.{AGENTS[1]}",
                                    json.dumps(heartbeat(1, rng)).encode())
        elif name == "flap":
            for _ in range(3):
                for down in (True, False):
                    topic, body = link_event("vmx5", "ge-0/0/1.0", down)
                    await routers.publish(topic, json.dumps(body).encode(), qos=1)
                    await asyncio.sleep(0.5 / rate)
        elif name == "flood":
            for _ in range(200):
                await sensors.publish("sensors/greenhouse-2/temperature",
                                      f"{18 + 6 * rng.random():.1f}".encode())
                await asyncio.sleep(0.02 / rate)
        elif name == "schema":
            schema_changed = True
        elif name == "silent":
            silent.add(2)

    async def schedule() -> None:
        start = time.monotonic()
        for at, name, text in TROUBLES:
            await asyncio.sleep(max(0.0, start + at / rate - time.monotonic()))
            say(text)
            try:
                await trouble(name)
            except (ConnectError, OSError) as exc:  # the show goes on
                say(f"{name}: {exc}")
        await asyncio.Event().wait()

    try:
        await asyncio.gather(every(1.0, junos), every(0.5, readings), every(2.0, snapshots),
                             every(1.0, heartbeats), every(2.0, director_calls), schedule())
    finally:
        for c in (routers, sensors, camera):
            with contextlib.suppress(Exception):
                await c.close()
        for nc in (*agents, director, hm):
            with contextlib.suppress(Exception):
                await nc.close()
