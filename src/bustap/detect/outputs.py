"""Where alert records go besides the sinks: the console (one line on
stderr), a webhook (HTTP POST of the JSON), an MQTT or NATS publish (topic
or subject template such as ``bustap/alerts/{rule}``).

Each output but the console has a bounded queue and its own task: capture
only appends to the queue (when it is full the oldest alert is dropped and
counted); a delivery that fails is retried with capped exponential backoff
and counted; an output that is down never slows capture.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
from collections import Counter, deque
from typing import Any, TextIO

import orjson

from ..errors import BustapError, ConfigError
from ..record import Record
from ..urls import Url, parse_url

log = logging.getLogger("bustap.detect")
QUEUE_MAX = 1_000
BACKOFF_MAX_SECS = 30.0
_TEMPLATE = re.compile(r"\{(\w+)\}")


def console_line(rec: Record) -> str:
    state = "RESOLVED" if rec.get("state") == "resolved" else "ALERT"
    count = rec.get("count", 1)
    times = f" (x{count})" if isinstance(count, int) and count > 1 else ""
    return (f"bustap: {state} [{rec.get('severity')}] {rec.get('rule')}: "
            f"{rec.get('summary')}{times}")


def fill(template: str, rec: Record, *, sep: str) -> str:
    """A topic or subject from record fields, each value made safe for it
    (no wildcards or separators inside a value, never empty)."""
    def one(m: re.Match[str]) -> str:
        value = str(rec.get(m.group(1)) or "_")
        return re.sub(r"[\s#+*>/.$]", "_", value)[:100] or "_"
    return _TEMPLATE.sub(one, template).strip(sep) or "bustap"


class Output:
    def __init__(self, name: str) -> None:
        self.name = name
        self.counters: Counter[str] = Counter()

    def send(self, rec: Record) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        pass

    async def aclose(self, timeout: float = 2.0) -> None:
        pass


class ConsoleOutput(Output):
    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__("console")
        self.stream = stream

    def send(self, rec: Record) -> None:
        stream = self.stream or sys.stderr
        try:
            stream.write(console_line(rec) + "\n")
            stream.flush()
            self.counters["sent"] += 1
        except (OSError, ValueError):
            self.counters["errors"] += 1


class QueuedOutput(Output):
    """A queue and a task that delivers it, retrying what fails."""

    max_attempts = 8

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.queue: deque[Record] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def send(self, rec: Record) -> None:
        if len(self.queue) >= QUEUE_MAX:
            self.queue.popleft()
            self.counters["dropped_queue_full"] += 1
        self.queue.append(rec)
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"alert output {self.name}")

    def scrub(self, exc: BaseException) -> str:
        """The reason, without the URL's credentials (client errors may quote it)."""
        text = _reason(exc)
        url: Url | None = getattr(self, "url", None)
        if url is not None:
            text = text.replace(url.raw, url.redacted)
            if url.password:
                text = text.replace(url.password, "***")
        return text

    async def deliver(self, rec: Record) -> None:
        raise NotImplementedError

    async def disconnect(self) -> None:
        pass

    async def _run(self) -> None:
        delay = 0.5
        attempts = 0
        while True:
            if not self.queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            rec = self.queue[0]
            try:
                await self.deliver(rec)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempts += 1
                self.counters["errors"] += 1
                if attempts == 1:
                    log.warning("alert output %s: %s (retrying)", self.name, self.scrub(exc))
                await self.disconnect()
                if attempts >= self.max_attempts:
                    self.queue.popleft()
                    self.counters["dropped_undeliverable"] += 1
                    attempts = 0
                if self._closing:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_SECS)
                continue
            self.queue.popleft()
            self.counters["sent"] += 1
            attempts = 0
            delay = 0.5

    async def aclose(self, timeout: float = 2.0) -> None:
        """Deliver what is queued for up to ``timeout`` seconds, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        if self.queue:
            self.counters["dropped_at_exit"] += len(self.queue)
        await self.disconnect()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BustapError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class WebhookOutput(QueuedOutput):
    def __init__(self, url: Url) -> None:
        super().__init__(url.redacted)
        self.url = url
        self._client: Any = None
        self._httpx: Any = None

    async def start(self) -> None:
        import httpx  # at start, not with the first alert: it takes a while to import

        self._httpx = httpx
        await super().start()

    async def deliver(self, rec: Record) -> None:
        if self._client is None:
            self._client = self._httpx.AsyncClient(timeout=5.0)
        resp = await self._client.post(self.url.raw, content=orjson.dumps(rec),
                                       headers={"content-type": "application/json"})
        if resp.status_code >= 300:
            raise BustapError(f"HTTP {resp.status_code}")

    async def disconnect(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await client.aclose()


class NatsOutput(QueuedOutput):
    def __init__(self, url: Url) -> None:
        super().__init__(url.redacted)
        self.url = url
        self.subject = (url.query.get("subject") or ["bustap.alerts.{rule}"])[0]
        self._nc: Any = None

    async def deliver(self, rec: Record) -> None:
        from ..net.nats import connect, connect_kwargs

        if self._nc is None:
            self._nc = await connect(self.url, connect_kwargs(self.url, name="bustap-alerts"))
        await self._nc.publish(fill(self.subject, rec, sep="."), orjson.dumps(rec))
        await self._nc.flush(timeout=5)

    async def disconnect(self) -> None:
        if self._nc is not None:
            nc, self._nc = self._nc, None
            with contextlib.suppress(Exception):
                await nc.close()


class MqttOutput(QueuedOutput):
    def __init__(self, url: Url) -> None:
        super().__init__(url.redacted)
        self.url = url
        self.topic = (url.query.get("topic") or ["bustap/alerts/{rule}"])[0]
        qos = (url.query.get("qos") or ["1"])[0]
        if qos not in ("0", "1"):
            raise ConfigError(f"alert output {url.redacted}: qos must be 0 or 1", value=qos)
        self.qos = int(qos)
        self._client: Any = None

    async def deliver(self, rec: Record) -> None:
        from ..net.mqtt import ConnectOptions, MqttClient, random_client_id
        from ..net.tls import client_context

        if self._client is None:
            tls = self.url.scheme == "mqtts"
            client = MqttClient(ConnectOptions(
                host=self.url.host or "127.0.0.1", port=self.url.port or (8883 if tls else 1883),
                client_id=random_client_id("bustap-alerts"), username=self.url.username,
                password=self.url.password, version=4, name=self.url.redacted,
                ssl=client_context() if tls else None))
            await client.connect()
            self._client = client
        await asyncio.wait_for(self._client.publish(
            fill(self.topic, rec, sep="/"), orjson.dumps(rec), qos=self.qos), 10)

    async def disconnect(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(Exception):
                await client.close()


def make_output(target: str) -> Output:
    """``console``, ``http(s)://...`` (webhook), ``mqtt(s)://host?topic=T``,
    ``nats://host?subject=S``."""
    if target == "console":
        return ConsoleOutput()
    url = parse_url(target)
    if url.scheme in ("http", "https"):
        return WebhookOutput(url)
    if url.scheme in ("nats", "tls"):
        return NatsOutput(url)
    if url.scheme in ("mqtt", "mqtts"):
        return MqttOutput(url)
    raise ConfigError(f"unknown alert output {url.redacted!r} (console, http(s)://, "
                      "mqtt://, nats://)", value=url.redacted)


class Outputs:
    """All alert outputs of a run."""

    def __init__(self, targets: list[str]) -> None:
        self.outputs = [make_output(t) for t in targets]

    def send(self, records: list[Record]) -> None:
        for rec in records:
            for out in self.outputs:
                out.send(rec)

    async def start(self) -> None:
        for out in self.outputs:
            await out.start()

    async def aclose(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, all outputs at once, for up to ``timeout``."""
        await asyncio.gather(*(out.aclose(timeout) for out in self.outputs))

    def stats(self) -> dict[str, dict[str, int]]:
        return {o.name: dict(o.counters) for o in self.outputs}
