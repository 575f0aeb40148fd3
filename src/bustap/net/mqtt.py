"""A small asyncio MQTT 3.1.1 / 5.0 client made for capture.

Why not paho-mqtt or gmqtt: measured on this machine (issue 6), paho's
callback API receives ~50k msg/s and gmqtt ~80k msg/s of 438-byte messages,
while ``mosquitto_sub`` receives 130-150k msg/s. Both libraries also
acknowledge QoS 1/2 before the application has stored the message. This
client parses every PUBLISH in a read in one loop, hands them over as one
batch, and sends PUBACK/PUBREC only when the batch has been written
(``ack-after-store``). It does what a subscriber needs: CONNECT (TLS,
credentials, persistent sessions, MQTT 5 properties), SUBSCRIBE, receive at
QoS 0/1/2, keepalive, PUBLISH (for the sink and tests) and DISCONNECT.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConnectError
from ..message import Message
from .tls import describe_ssl_error

# Packet types (high nibble of the first byte).
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = (
    8, 9, 10, 11, 12, 13, 14, 15)

CONNACK_V3 = {
    1: "unacceptable protocol version", 2: "client identifier rejected",
    3: "server unavailable", 4: "bad user name or password", 5: "not authorised",
}
REASONS_V5 = {
    0x04: "disconnect with will message", 0x80: "unspecified error",
    0x81: "malformed packet", 0x82: "protocol error", 0x83: "implementation specific error",
    0x84: "unsupported protocol version", 0x85: "client identifier not valid",
    0x86: "bad user name or password", 0x87: "not authorised", 0x88: "server unavailable",
    0x89: "server busy", 0x8A: "banned", 0x8B: "server shutting down",
    0x8C: "bad authentication method", 0x8D: "keep alive timeout",
    0x8E: "session taken over", 0x8F: "topic filter invalid", 0x90: "topic name invalid",
    0x91: "packet identifier in use", 0x93: "receive maximum exceeded",
    0x94: "topic alias invalid", 0x95: "packet too large", 0x96: "message rate too high",
    0x97: "quota exceeded", 0x98: "administrative action", 0x99: "payload format invalid",
    0x9A: "retain not supported", 0x9B: "QoS not supported", 0x9C: "use another server",
    0x9D: "server moved", 0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded", 0xA0: "maximum connect time",
    0xA1: "subscription identifiers not supported", 0xA2: "wildcard subscriptions not supported",
}
# CONNACK refusals that retrying cannot fix.
FATAL_CONNACK_V3 = {1, 2, 4, 5}
FATAL_CONNACK_V5 = {0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C}

# MQTT 5 properties: id -> (name, type).
_BYTE, _TWO, _FOUR, _VARINT, _STR, _BIN, _PAIR = range(7)
PROPERTIES: dict[int, tuple[str, int]] = {
    0x01: ("payload_format_indicator", _BYTE), 0x02: ("message_expiry_interval", _FOUR),
    0x03: ("content_type", _STR), 0x08: ("response_topic", _STR),
    0x09: ("correlation_data", _BIN), 0x0B: ("subscription_identifier", _VARINT),
    0x11: ("session_expiry_interval", _FOUR), 0x12: ("assigned_client_identifier", _STR),
    0x13: ("server_keep_alive", _TWO), 0x15: ("authentication_method", _STR),
    0x16: ("authentication_data", _BIN), 0x17: ("request_problem_information", _BYTE),
    0x18: ("will_delay_interval", _FOUR), 0x19: ("request_response_information", _BYTE),
    0x1A: ("response_information", _STR), 0x1C: ("server_reference", _STR),
    0x1F: ("reason_string", _STR), 0x21: ("receive_maximum", _TWO),
    0x22: ("topic_alias_maximum", _TWO), 0x23: ("topic_alias", _TWO),
    0x24: ("maximum_qos", _BYTE), 0x25: ("retain_available", _BYTE),
    0x26: ("user_property", _PAIR), 0x27: ("maximum_packet_size", _FOUR),
    0x28: ("wildcard_subscription_available", _BYTE),
    0x29: ("subscription_identifier_available", _BYTE),
    0x2A: ("shared_subscription_available", _BYTE),
}
_PROPERTY_IDS = {name: (pid, kind) for pid, (name, kind) in PROPERTIES.items()}


class ProtocolError(Exception):
    """The peer sent bytes that are not MQTT."""


class NoConnack(ConnectError):
    """The broker closed the connection after our CONNECT, or kept silent,
    instead of answering it: what brokers that know only MQTT 3.1.1 do with an
    MQTT 5 CONNECT (RabbitMQ's MQTT plugin before 3.13 closes, amqtt waits)."""


# --- encoding --------------------------------------------------------------

def encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _str(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("!H", len(b)) + b


def _bin(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def encode_properties(props: dict[str, Any] | None,
                      user: Iterable[tuple[str, str]] = ()) -> bytes:
    out = bytearray()
    for name, value in (props or {}).items():
        if value is None:
            continue
        pid, kind = _PROPERTY_IDS[name]
        out.append(pid)
        if kind == _BYTE:
            out.append(int(value))
        elif kind == _TWO:
            out += struct.pack("!H", value)
        elif kind == _FOUR:
            out += struct.pack("!I", value)
        elif kind == _VARINT:
            out += encode_varint(value)
        elif kind == _STR:
            out += _str(value)
        elif kind == _BIN:
            out += _bin(value)
    for key, value in user:
        out.append(0x26)
        out += _str(key) + _str(value)
    return encode_varint(len(out)) + bytes(out)


def packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + encode_varint(len(body)) + body


def decode_properties(buf: bytes | bytearray, pos: int) -> tuple[dict[str, Any], int]:
    """Parse a property block at ``pos``; return (properties, position after it).
    User properties go to ``user_property`` as a list of [key, value] pairs."""
    length, pos = decode_varint(buf, pos)
    end = pos + length
    props: dict[str, Any] = {}
    while pos < end:
        pid = buf[pos]
        pos += 1
        spec = PROPERTIES.get(pid)
        if spec is None:
            raise ProtocolError(f"unknown property 0x{pid:02x}")
        name, kind = spec
        value: Any
        if kind == _BYTE:
            value = buf[pos]
            pos += 1
        elif kind == _TWO:
            value = (buf[pos] << 8) | buf[pos + 1]
            pos += 2
        elif kind == _FOUR:
            value = struct.unpack_from("!I", buf, pos)[0]
            pos += 4
        elif kind == _VARINT:
            value, pos = decode_varint(buf, pos)
        elif kind in (_STR, _BIN):
            n = (buf[pos] << 8) | buf[pos + 1]
            raw = bytes(buf[pos + 2:pos + 2 + n])
            pos += 2 + n
            value = raw.decode("utf-8", "replace") if kind == _STR else raw
        else:
            k = (buf[pos] << 8) | buf[pos + 1]
            key = bytes(buf[pos + 2:pos + 2 + k]).decode("utf-8", "replace")
            pos += 2 + k
            v = (buf[pos] << 8) | buf[pos + 1]
            val = bytes(buf[pos + 2:pos + 2 + v]).decode("utf-8", "replace")
            pos += 2 + v
            props.setdefault("user_property", []).append([key, val])
            continue
        if name == "subscription_identifier":
            props.setdefault(name, []).append(value)
        else:
            props[name] = value
    if pos != end:
        raise ProtocolError("property block overruns its length")
    return props, end


def decode_varint(buf: bytes | bytearray, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ProtocolError("truncated variable byte integer")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ProtocolError("variable byte integer longer than 4 bytes")


# --- received messages -----------------------------------------------------

@dataclass(slots=True)
class ConnectOptions:
    host: str
    port: int
    client_id: str = ""
    clean: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    keepalive: int = 60
    version: int = 5  # 4 = MQTT 3.1.1, 5 = MQTT 5.0
    ssl: ssl.SSLContext | None = None
    server_hostname: str | None = None
    session_expiry: int = 0
    receive_maximum: int = 65_535
    connect_timeout: float = 5.0
    max_pending: int = 5_000
    batch_max: int = 1_000
    name: str = ""  # redacted URL, for error messages


class MqttProtocol(asyncio.Protocol):
    """The parsing half: bytes in, Message objects and control packets out."""

    def __init__(self, opts: ConnectOptions) -> None:
        self.opts = opts
        self.version = opts.version
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self.pending: list[Message] = []
        self.wakeup = asyncio.Event()
        self.connack: asyncio.Future[tuple[bool, int, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future())
        self.acks: dict[int, asyncio.Future[list[int]]] = {}
        self.closed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.paused = False
        self.last_rx = time.monotonic()
        self.aliases: dict[int, str] = {}
        self.disconnect_reason: str | None = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        reason = self.disconnect_reason or (
            describe_ssl_error(exc) if exc else "connection closed by broker")
        if not self.closed.done():
            self.closed.set_result(reason)
        waiting: list[asyncio.Future[Any]] = [self.connack, *self.acks.values()]
        for fut in waiting:
            if not fut.done():
                fut.set_exception(ConnectError(self.opts.name, reason))
        self.wakeup.set()

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        buf = self._buf
        buf += data
        n = len(buf)
        pos = 0
        pending = self.pending
        now = time.time()
        v5 = self.version == 5
        try:
            while n - pos >= 2:
                first = buf[pos]
                # Remaining length, inlined: this loop runs once per message.
                i = pos + 1
                b = buf[i]
                length = b & 0x7F
                shift = 7
                while b & 0x80:
                    i += 1
                    if i >= n:
                        break
                    b = buf[i]
                    length |= (b & 0x7F) << shift
                    shift += 7
                    if shift > 28:
                        raise ProtocolError("remaining length longer than 4 bytes")
                else:
                    i += 1
                    end = i + length
                    if end > n:
                        break
                    if first >> 4 == PUBLISH:
                        qos = (first >> 1) & 3
                        tl = (buf[i] << 8) | buf[i + 1]
                        j = i + 2 + tl
                        topic = buf[i + 2:j].decode("utf-8", "replace")
                        pid = 0
                        if qos:
                            pid = (buf[j] << 8) | buf[j + 1]
                            j += 2
                        props = None
                        if v5:
                            if buf[j] == 0:
                                j += 1
                            else:
                                props, j = decode_properties(buf, j)
                                alias = props.pop("topic_alias", None)
                                if alias is not None:
                                    if topic:
                                        self.aliases[alias] = topic
                                    else:
                                        topic = self.aliases.get(alias, "")
                                if not props:
                                    props = None
                        # positional: keyword calls cost ~30% more on this path
                        pending.append(Message("mqtt", topic, bytes(buf[j:end]), now, qos,
                                               first & 1 == 1, first & 8 == 8, None, None,
                                               props, pid))
                    else:
                        self._control(first, bytes(buf[i:end]))
                    pos = end
                    continue
                break  # incomplete remaining length
        except (ProtocolError, IndexError, struct.error) as exc:
            self.disconnect_reason = f"malformed packet from broker: {exc}"
            if self.transport:
                self.transport.close()
            return
        finally:
            if pos:
                del buf[:pos]
        if pending:
            self.wakeup.set()
            if len(pending) >= self.opts.max_pending and not self.paused and self.transport \
                    and not self.acks:
                # Backpressure: stop reading the socket, so TCP pushes back on the broker.
                # Not while an ack is awaited: a resumed session's backlog comes
                # before the SUBACK, which would never be read (kill -9 at scale).
                self.paused = True
                self.transport.pause_reading()

    def _control(self, first: int, body: bytes) -> None:
        kind = first >> 4
        if kind == CONNACK:
            if self.connack.done():
                return
            session_present = bool(body[0] & 1)
            code = body[1]
            props: dict[str, Any] = {}
            if self.version == 5 and len(body) > 2:
                props, _ = decode_properties(body, 2)
            self.connack.set_result((session_present, code, props))
        elif kind in (SUBACK, UNSUBACK):
            pid = (body[0] << 8) | body[1]
            pos = 2
            if self.version == 5:
                _, pos = decode_properties(body, pos)
            fut = self.acks.pop(pid, None)
            if fut and not fut.done():
                fut.set_result(list(body[pos:]))
        elif kind == PUBREL:
            pid = (body[0] << 8) | body[1]
            self.write(packet(PUBCOMP << 4, struct.pack("!H", pid)))
        elif kind in (PUBACK, PUBCOMP):
            pid = (body[0] << 8) | body[1]
            fut = self.acks.pop(pid, None)
            if fut and not fut.done():
                fut.set_result([body[2]] if len(body) > 2 else [0])
        elif kind == PUBREC:
            pid = (body[0] << 8) | body[1]
            self.write(packet((PUBREL << 4) | 2, struct.pack("!H", pid)))
        elif kind == DISCONNECT:
            code = body[0] if body else 0
            self.disconnect_reason = (
                f"broker disconnected us: {REASONS_V5.get(code, hex(code))}")
        elif kind == PINGRESP:
            pass
        else:
            raise ProtocolError(f"unexpected packet type {kind}")

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def take(self, limit: int) -> list[Message]:
        """Up to ``limit`` parsed messages; reading resumes once the rest fit."""
        if len(self.pending) <= limit:
            batch = self.pending
            self.pending = []
        else:
            batch = self.pending[:limit]
            del self.pending[:limit]
        if not self.pending:
            self.wakeup.clear()
        if self.paused and self.transport and len(self.pending) < self.opts.max_pending:
            self.paused = False
            self.transport.resume_reading()
        return batch


class MqttClient:
    """``async with MqttClient(opts) as c: await c.subscribe(...); async for batch in c``."""

    def __init__(self, opts: ConnectOptions) -> None:
        self.opts = opts
        self.proto: MqttProtocol | None = None
        self.info: dict[str, Any] = {}
        self._next_pid = 0
        self._pinger: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MqttClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        opts = self.opts
        loop = asyncio.get_running_loop()
        name = opts.name or f"mqtt://{opts.host}:{opts.port}"
        try:
            _, proto = await asyncio.wait_for(loop.create_connection(
                lambda: MqttProtocol(opts), opts.host, opts.port, ssl=opts.ssl,
                server_hostname=(opts.server_hostname or opts.host) if opts.ssl else None),
                opts.connect_timeout)
        except TimeoutError as exc:
            raise ConnectError(name, f"timed out after {opts.connect_timeout:g}s") from exc
        except ssl.SSLError as exc:
            raise ConnectError(name, describe_ssl_error(exc), fatal=True) from exc
        except OSError as exc:
            raise ConnectError(name, exc.strerror or str(exc)) from exc
        self.proto = proto
        proto.write(self._connect_packet())
        try:
            session_present, code, props = await asyncio.wait_for(proto.connack,
                                                                  opts.connect_timeout)
        except TimeoutError as exc:
            self._abort()
            raise NoConnack(name, "no CONNACK from broker (is this an MQTT port?)") from exc
        except ConnectError as exc:
            if exc.fatal:
                raise
            raise NoConnack(name, exc.reason) from exc
        if code:
            self._abort()
            if opts.version == 5:
                reason = REASONS_V5.get(code, f"reason code 0x{code:02x}")
                fatal = code in FATAL_CONNACK_V5
                if props.get("reason_string"):
                    reason += f" ({props['reason_string']})"
            else:
                reason = CONNACK_V3.get(code, f"return code {code}")
                fatal = code in FATAL_CONNACK_V3
            err = ConnectError(name, f"connection refused: {reason}", fatal=fatal)
            err.value = code
            raise err
        transport = proto.transport
        sslobj = transport.get_extra_info("ssl_object") if transport else None
        self.info = {
            "protocol_version": "5.0" if opts.version == 5 else "3.1.1",
            "client_id": props.get("assigned_client_identifier", opts.client_id),
            "session_present": session_present,
            "tls": sslobj is not None,
        }
        if sslobj is not None:
            self.info["tls_version"] = sslobj.version()
            self.info["tls_cipher"] = (sslobj.cipher() or ("",))[0]
        for key in ("maximum_qos", "retain_available", "server_keep_alive",
                    "shared_subscription_available", "wildcard_subscription_available",
                    "maximum_packet_size", "receive_maximum"):
            if key in props:
                self.info[key] = props[key]
        keepalive = props.get("server_keep_alive", opts.keepalive)
        if keepalive:
            self._pinger = asyncio.create_task(self._ping(keepalive), name="mqtt-ping")

    def _abort(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.close()

    def _connect_packet(self) -> bytes:
        o = self.opts
        flags = 0x02 if o.clean else 0
        if o.username is not None:
            flags |= 0x80
        if o.password is not None:
            flags |= 0x40
        body = _str("MQTT") + bytes([o.version, flags]) + struct.pack("!H", o.keepalive)
        if o.version == 5:
            body += encode_properties({
                "session_expiry_interval": o.session_expiry or None,
                "receive_maximum": o.receive_maximum,
                "request_problem_information": 1,
            })
        body += _str(o.client_id)
        if o.username is not None:
            body += _str(o.username)
        if o.password is not None:
            body += _bin(o.password.encode("utf-8"))
        return packet(CONNECT << 4, body)

    def _pid(self) -> int:
        self._next_pid = self._next_pid % 65535 + 1
        return self._next_pid

    async def _request(self, data: bytes, pid: int) -> list[int]:
        assert self.proto is not None
        fut: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self.proto.acks[pid] = fut
        self.proto.write(data)
        try:
            return await asyncio.wait_for(fut, self.opts.connect_timeout)
        finally:
            self.proto.acks.pop(pid, None)

    async def subscribe(self, filters: list[tuple[str, int]]) -> list[int]:
        """Subscribe to (filter, qos) pairs; returns the granted codes, one each."""
        pid = self._pid()
        body = struct.pack("!H", pid)
        if self.opts.version == 5:
            body += b"\x00"
        for flt, qos in filters:
            body += _str(flt) + bytes([qos])
        return await self._request(packet((SUBSCRIBE << 4) | 2, body), pid)

    async def publish(self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False,
                      properties: dict[str, Any] | None = None,
                      user_properties: Iterable[tuple[str, str]] = ()) -> None:
        assert self.proto is not None
        body = _str(topic)
        pid = 0
        if qos:
            pid = self._pid()
            body += struct.pack("!H", pid)
        if self.opts.version == 5:
            body += encode_properties(properties, user_properties)
        data = packet((PUBLISH << 4) | (qos << 1) | int(retain), body + payload)
        if qos:
            await self._request(data, pid)
        else:
            self.proto.write(data)

    def ack(self, messages: Iterable[Message]) -> None:
        """PUBACK (QoS 1) / PUBREC (QoS 2) the given messages: call after storing them."""
        if self.proto is None:
            return
        out = bytearray()
        for m in messages:
            if m.qos == 1:
                out += b"\x40\x02" + struct.pack("!H", m.ack_id)
            elif m.qos == 2:
                out += b"\x50\x02" + struct.pack("!H", m.ack_id)
        if out:
            self.proto.write(bytes(out))

    def __aiter__(self) -> MqttClient:
        return self

    async def __anext__(self) -> list[Message]:
        proto = self.proto
        assert proto is not None
        while not proto.pending:
            if proto.closed.done():
                raise ConnectError(self.opts.name, proto.closed.result())
            await proto.wakeup.wait()
            proto.wakeup.clear()
        return proto.take(self.opts.batch_max)

    async def _ping(self, keepalive: int) -> None:
        proto = self.proto
        assert proto is not None
        interval = max(keepalive * 0.5, 0.5)
        while not proto.closed.done():
            await asyncio.sleep(interval)
            proto.write(b"\xc0\x00")
            if time.monotonic() - proto.last_rx > keepalive * 1.5 and proto.transport:
                proto.disconnect_reason = "keepalive timeout: no data from broker"
                proto.transport.close()

    async def close(self) -> None:
        if self._pinger:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        proto = self.proto
        if proto and proto.transport and not proto.transport.is_closing():
            proto.write(b"\xe0\x00")
            proto.transport.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(proto.closed), 1.0)


# The protocol version that worked with a broker (host, port) in "auto" mode,
# so that reconnects do not knock on the MQTT 5 door again (bounded: a few
# brokers per process).
_LEARNED: dict[tuple[str, int], int] = {}
_V5_REFUSED = (0x84, 1)  # CONNACK "unsupported protocol version" in MQTT 5 and 3.1.1


async def connect_client(opts: ConnectOptions, *, auto: bool = False) -> MqttClient:
    """Connect with ``opts.version``. With ``auto``, a broker that turns MQTT 5
    down (a CONNACK "unsupported protocol version", or closing the connection
    instead of answering) is asked again in 3.1.1, and the version that worked
    is remembered for the next connections to that broker. ``opts.version`` is
    left at the version used."""
    key = (opts.host, opts.port)
    if auto:
        opts.version = _LEARNED.get(key, opts.version)
    client = MqttClient(opts)
    try:
        await client.connect()
    except ConnectError as exc:
        refused = isinstance(exc, NoConnack) or exc.value in _V5_REFUSED
        if not (auto and opts.version == 5 and refused):
            raise
        first = exc
        opts.version = 4
        client = MqttClient(opts)
        try:
            await client.connect()
        except NoConnack as again:
            # Not a matter of version: the broker closes on 3.1.1 too.
            opts.version = 5
            raise ConnectError(again.broker, f"{first.reason} (also with MQTT 3.1.1)"
                               ) from again
    if auto:
        if len(_LEARNED) > 1000:
            _LEARNED.clear()
        _LEARNED[key] = opts.version
    return client


def random_client_id(prefix: str = "bustap") -> str:
    return f"{prefix}-{os.urandom(6).hex()}"
