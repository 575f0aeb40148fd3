"""Mosquitto 1.4 - 2.x log lines -> ``broker_event`` records.

Line formats are those of eclipse/mosquitto src/logging.c and the callers of
``log__printf`` (see shared/reference/protocols-and-security.md section 3).
A line may start with the unix-seconds prefix (``1700000000: ``), a
``log_timestamp_format`` prefix (``2024-05-01T10:00:00: ``), no prefix
(``log_timestamp false``), or be wrapped in a syslog header.

State: connections accepted but not yet CONNECTed (``pending``, by address and
port), connected clients (by client id) and the SUBSCRIBE/UNSUBSCRIBE block
being read. Lines about a client are joined with the address, port, listener
port and user name learned when it connected. Both maps are bounded and a
client is forgotten when it disconnects.

Multi-line blocks: a subscription is logged as ``\\t<filter> (QoS n)`` (log
type debug) and/or ``<client> <qos> <filter>`` (log type subscribe). The two
make one ``subscribe`` record whose ``line`` holds both lines, so a
subscription is counted once whatever the log types.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ..record import Record
from . import LogParser, register_parser
from ._wording import Wording
from .mosquitto_wording import RULES
from .syslog import looks_like_syslog, parse_syslog

KIND = "broker_event"
BROKER = "mosquitto"

_ISO_PREFIX = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?")
_PUBLISH = re.compile(
    r"(.*?) \(d(\d), q(\d), r(\d), m(\d+), '(.*)', \.\.\. \((\d+) bytes\)\)\Z", re.S)
_CONNECTED = re.compile(
    r"(.*?) as (.*?) \((?:p(\d+), )?c(\d), k(\d+)(?:, u'(.*)')?\)\.\Z", re.S)
_PUB_PREFIXES = ("Received PUBLISH from ", "Sending PUBLISH to ", "Denied PUBLISH from ")
_PUB_EVENTS = {"R": "publish_in", "S": "publish_out", "D": "acl_denied"}
_EMPTY: dict[str, Any] = {}
_WILL = re.compile(r"Will message specified \((\d+) bytes\) \(r(\d), q(\d)\)\.")
_CONNACK = re.compile(r"(.*) \((\d+), (\d+)\)\Z", re.S)
_QOS_TAIL = re.compile(r"(.*) \(QoS (\d+)\)\Z", re.S)
_OPENING = re.compile(r"Opening (\w+) listen socket on (port|path) (.*?)\.?\Z")

# "p%d": mosquitto's internal enum up to 2.0 (1 = 3.1, 2 = 3.1.1, 5 = 5.0), the
# real protocol level from 2.1 (3 = 3.1, 4 = 3.1.1, 5 = 5.0; ChangeLog 2.1.0).
PROTOCOL_VERSIONS = {1: "3.1", 2: "3.1.1", 3: "3.1", 4: "3.1.1", 5: "5.0"}
CONNACK_REASONS = {
    1: "unacceptable protocol version", 2: "identifier rejected", 3: "server unavailable",
    4: "bad user name or password", 5: "not authorised", 128: "unspecified error",
    132: "unsupported protocol version", 133: "client identifier not valid",
    134: "bad user name or password", 135: "not authorised", 136: "server unavailable",
    137: "server busy", 138: "banned", 140: "bad authentication method",
    159: "connection rate exceeded",
}
AUTH_CODES = frozenset({4, 5, 134, 135, 138, 140})

# "Client <id> <suffix>" -> reason of the client_disconnected event.
_DISCONNECTS = (
    (" disconnected.", "clean"),
    (" closed its connection.", "closed"),
    (" has exceeded timeout, disconnecting.", "timeout"),
    (" disconnected, not authorised.", "not_authorised"),
    (" disconnected, no longer authorised.", "not_authorised"),
    (" disconnected due to protocol error.", "protocol_error"),
    (" disconnected due to malformed packet.", "malformed_packet"),
    (" disconnected due to oversize packet.", "oversize_packet"),
    (" disconnected due to out of memory.", "out_of_memory"),
    (" already connected, closing old connection.", "takeover"),
    (" been disconnected by administrative action.", "administrative_action"),  # dynsec
)
# 2.1: "Client <id> [<ip>:<port>] disconnected: <why>." -> the 2.0 reason names.
_REASONS_21 = {
    "exceeded timeout": "timeout", "not authorised": "not_authorised",
    "malformed packet": "malformed_packet", "protocol error": "protocol_error",
    "oversize packet": "oversize_packet", "out of memory": "out_of_memory",
    "connection closed by client": "closed",
}
_JOIN = ("address", "port", "listener_port", "username")
_DROPPED = "Outgoing messages are being dropped for client "


WORDING = Wording(RULES)


def _dynsec(msg: str, rec: Record) -> None:
    """``dynsec: admin/admin | createClient | username=bob | password=*****``:
    the command's arguments, never a password (the plugin masks it anyway)."""
    for part in msg.split(" | ")[2:]:
        key, sep, value = part.partition("=")
        if sep and key.isidentifier() and "password" not in key:
            rec.setdefault(key, value)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unknown"


@register_parser("mosquitto")
class MosquittoParser(LogParser):
    def __init__(self, *, max_clients: int = 100_000, max_pending: int = 10_000) -> None:
        super().__init__()
        self.max_clients = max_clients
        self.max_pending = max_pending
        self._clients: dict[str, dict[str, Any]] = {}
        self._pending: dict[tuple[str, object], dict[str, Any]] = {}
        self._serial = 0
        self._block: str | None = None
        self._block_client: str | None = None
        self._held: Record | None = None
        self._held_key: str | None = None
        self._last_client: str | None = None
        self._refused: dict[str, Any] | None = None
        self._v1 = False
        self._sec = ""
        self._bridges: set[str] = set()  # this broker's own bridge connections
        self._sec_iso = ""

    @staticmethod
    def sniff(line: str) -> bool:
        head, sep, msg = line.partition(": ")
        if sep and head.isdigit():
            return True
        if "mosquitto" in line[:60] and looks_like_syslog(line):
            return True
        return msg.startswith(("New connection from", "New client connected from",
                               "Received PUBLISH from", "Sending PUBLISH to",
                               "mosquitto version"))

    # --- per line ---------------------------------------------------------------

    def flush(self) -> list[Record]:
        held = self._held
        self._held = None
        return [held] if held is not None else []

    def _line(self, line: str, out: list[Record]) -> None:
        msg = line
        log_time: str | None = None
        extra: dict[str, object] | None = None
        c = line[:1]
        if "0" <= c <= "9":
            i = line.find(": ")
            if i > 0:
                head = line[:i]
                if head.isdigit():
                    msg = line[i + 2:]
                    if head != self._sec:
                        self._sec = head
                        self._sec_iso = datetime.fromtimestamp(int(head), UTC).strftime(
                            "%Y-%m-%dT%H:%M:%SZ")
                    log_time = self._sec_iso
                elif _ISO_PREFIX.fullmatch(head):
                    msg = line[i + 2:]
                    log_time = head
        elif (c == "<" or "A" <= c <= "S") and looks_like_syslog(line):
            sm = parse_syslog(line)
            if sm is not None:
                extra = sm.fields()
                msg = sm.msg
                if sm.app is None:
                    # rsyslog templates like seed 001's "%syslogtag%%msg%" with a
                    # tag lacking its colon: "Mosquitto 1714557600: ...".
                    tag, sp, rest = msg.partition(" ")
                    if sp and rest[:1].isdigit() and tag.isalnum():
                        extra["app"] = tag
                        msg = rest
                head, sep, rest = msg.partition(": ")
                if sep and (head.isdigit() or _ISO_PREFIX.fullmatch(head)):
                    msg = rest
                    log_time = self._unix(head) if head.isdigit() else head
        elif msg.startswith("Time error: "):
            msg = msg[12:]

        held = self._held
        if held is None and extra is None and msg.startswith(_PUB_PREFIXES):
            # The bulk of a debug log, sliced without a regex:
            # "<verb> <client> (d0, q1, r0, m7, '<topic>', ... (<n> bytes))"
            v = 22 if msg[0] == "R" else (19 if msg[0] == "S" else 20)
            k = msg.find(" (d", v)
            t = msg.find(", '", k)
            j = msg.rfind("', ... (")
            f = msg[k + 2:t]
            if (k > 0 and t > 0 and j >= t and msg.endswith(" bytes))") and f[4:5] == "q"
                    and f[8:9] == "r" and f[12:13] == "m"):
                cid = msg[v:k]
                size = msg[j + 8:-8]
                conn = self._clients.get(cid)
                rec: Record = {"kind": KIND, "broker": BROKER, "event": _PUB_EVENTS[msg[0]],
                               "client_id": cid, "topic": msg[t + 3:j], "qos": int(f[5]),
                               "retain": f[9] == "1", "dup": f[1] == "1", "mid": int(f[13:]),
                               "bytes": int(size), **(conn or _EMPTY)}
                if msg[0] == "D":
                    rec["action"] = "publish"
                if log_time is not None:
                    rec["log_time"] = log_time
                rec["line"] = line
                out.append(rec)
                return
        if held is not None:
            self._held = None
            key = self._held_key
            if key == "\t" and msg[:1] == "\t":
                held["topic"] = msg[1:]
                held["line"] += "\n" + line
                out.append(held)
                return
            if msg == key:
                held["line"] += "\n" + line
                out.append(held)
                return
            out.append(held)

        rec = self._dispatch(msg)  # type: ignore[assignment]
        if rec is None and log_time is None:
            # An unknown log_timestamp_format prefix: try what follows ": ".
            i = msg.find(": ", 0, 64)
            if i > 0:
                rec = self._dispatch(msg[i + 2:])
                if rec is not None:
                    log_time = msg[:i]
        if rec is None:
            self.unparsed += 1
            rec = {"kind": KIND, "broker": BROKER, "event": "unparsed"}
        if log_time is not None:
            rec["log_time"] = log_time
        if extra:
            rec.update(extra)
        rec["line"] = line
        if rec is self._held:
            return
        out.append(rec)

    def _unix(self, head: str) -> str:
        return datetime.fromtimestamp(int(head), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _dispatch(self, msg: str) -> Record | None:
        return self._known(msg) or self._worded(msg) or self._subscribe_line(msg)

    def _known(self, msg: str) -> Record | None:
        c = msg[:1]
        if c == "R":
            if msg.startswith("Received PUBLISH from "):
                return self._publish("publish_in", msg, 22)
            if msg.startswith("Received "):
                return self._packet("packet_in", msg, 9, " from ")
            if msg == "Reloading config.":
                return self._ev("config_reloaded")
        elif c == "S":
            if msg.startswith("Sending PUBLISH to "):
                return self._publish("publish_out", msg, 19)
            if msg.startswith("Sending CONNACK to "):
                return self._connack(msg)
            if msg.startswith("Sending "):
                return self._packet("packet_out", msg, 8, " to ")
            if msg.startswith("Socket error on client ") and msg.endswith(", disconnecting."):
                return self._disconnect(msg[23:-16], "socket_error")
            if msg.startswith("Saving in-memory database to "):
                return self._ev("persistence_saved", path=msg[29:].rstrip("."))
            if msg.startswith("Starting in local only mode"):
                return self._ev("warning", message=msg, reason="local_only")
        elif c == "C":
            if msg.startswith("Client connection from "):
                return self._connection_failed(msg[23:])
            if msg.startswith("Client "):
                return self._client(msg[7:])
            if msg.startswith("Config loaded from "):
                return self._ev("config_loaded", config=msg[19:].removesuffix("."))
            if msg.startswith("Connection Refused: "):
                return self._ev("bridge_refused", reason=msg[20:].rstrip("."))
            if msg.startswith("Create a configuration file"):
                return self._ev("warning", message=msg, reason="local_only")
        elif c == "N":
            if msg.startswith("New connection from "):
                return self._new_connection(msg[20:])
            if msg.startswith("New client connected from "):
                return self._connected(msg[26:], bridge=False)
            if msg.startswith("New bridge connected from "):
                return self._connected(msg[26:], bridge=True)
            if msg == "No will message specified.":
                return self._join({"kind": KIND, "broker": BROKER, "event": "will",
                                   "will": False}, self._last_client)
        elif c == "D":
            if msg.startswith("Denied PUBLISH from "):
                rec = self._publish("acl_denied", msg, 20)
                if rec is not None:
                    rec["action"] = "publish"
                return rec
        elif c == "m":
            if msg.startswith("mosquitto version "):
                return self._banner(msg[18:])
        elif c == "O":
            if msg.startswith("Opening "):
                return self._opening(msg)
            if msg.startswith("OpenSSL Error"):
                rec = self._worded(msg) or self._ev("tls_error",
                                                    error=msg.partition(": ")[2])
                # Logged during the handshake of the newest accepted socket.
                if self._pending:
                    rec.update(next(reversed(self._pending.values())))
                return rec
            if msg.startswith(_DROPPED):
                cid = msg[len(_DROPPED):].removesuffix(".")
                return self._join(self._ev("messages_dropped", client_id=cid), cid)
        elif c == "W":
            if msg.startswith("Will message specified"):
                return self._will(msg)
            if msg.startswith("Warning: "):
                return self._worded(msg) or self._ev("warning", message=msg[9:])
        elif c == "E":
            if msg.startswith("Error: "):
                return self._worded(msg) or self._ev("error", message=msg[7:])
            if msg.startswith("Expiring client ") and msg.endswith(" due to timeout."):
                cid = msg[16:-16]
                return self._join(self._ev("session_expired", client_id=cid), cid)
        elif c == "P":
            if msg.startswith("Protocol error from ") and msg[20:].count(":") == 1:
                who, _, why = msg[20:].partition(": ")
                rec = self._ev("protocol_error", client_id=who,
                               error=why.removesuffix(", closing connection."))
                return self._join(rec, who)
        elif c == "B":
            if msg.startswith("Bad socket read/write on client "):
                rest = msg[32:]
                cid, _, err = rest.partition(": ")
                if not err:
                    cid = rest.removesuffix(", disconnecting.")
                rec = self._disconnect(cid, "socket_error")
                if err:
                    rec["error"] = err
                return rec
        elif c == "U":
            if msg == "Using default config.":
                return self._ev("config_loaded", config=None)
        elif c == "\t":
            return self._tab(msg[1:])
        return None

    # --- helpers -------------------------------------------------------------

    def _worded(self, msg: str) -> Record | None:
        fields = WORDING.match(msg)
        if fields is None:
            return None
        rec: Record = {"kind": KIND, "broker": BROKER}
        rec.update(fields)
        if fields["event"] == "dynsec_command":
            _dynsec(msg, rec)
        for flag in ("retain", "dup"):  # "(d0, q1, r0, ...)": booleans, as in publish_in
            if flag in rec:
                rec[flag] = rec[flag] == 1
        cid = rec.get("client_id")
        if isinstance(cid, str):
            if fields["event"].startswith("bridge_") and len(self._bridges) < self.max_clients:
                self._bridges.add(cid)
            conn = self._clients.get(cid)
            if conn is not None:
                for k, v in conn.items():
                    rec.setdefault(k, v)
        return rec

    @staticmethod
    def _ev(event: str, **fields: object) -> Record:
        rec: Record = {"kind": KIND, "broker": BROKER, "event": event}
        rec.update(fields)
        return rec

    def _join(self, rec: Record, cid: str | None) -> Record:
        if cid is not None:
            rec["client_id"] = cid
            conn = self._clients.get(cid)
            if conn is not None:
                rec.update(conn)
        return rec

    def _publish(self, event: str, msg: str, start: int) -> Record | None:
        m = _PUBLISH.match(msg, start)
        if m is None:
            return None
        cid, d, q, r, mid, topic, size = m.groups()
        rec: Record = {"kind": KIND, "broker": BROKER, "event": event, "client_id": cid,
                       "topic": topic, "qos": int(q), "retain": r == "1", "dup": d == "1",
                       "mid": int(mid), "bytes": int(size)}
        conn = self._clients.get(cid)
        if conn is not None:
            rec.update(conn)
        return rec

    def _packet(self, event: str, msg: str, start: int, sep: str) -> Record | None:
        i = msg.find(sep, start)
        if i < 0:
            return None
        packet = msg[start:i]
        who = msg[i + len(sep):]
        detail = None
        j = who.find(" (")
        if j >= 0:
            who, detail = who[:j], who[j + 2:].rstrip(")")
        if packet == "SUBSCRIBE":
            self._block, self._block_client = "sub", who
        elif packet == "UNSUBSCRIBE":
            self._block, self._block_client = "unsub", who
        elif packet in ("SUBACK", "UNSUBACK"):
            self._block = None
        rec: Record = {"kind": KIND, "broker": BROKER, "event": event, "packet": packet}
        if detail:
            rec["detail"] = detail
        return self._join(rec, who)

    def _tab(self, text: str) -> Record | None:
        cid = self._block_client
        if self._block == "sub":
            m = _QOS_TAIL.match(text)
            if m is None:
                return None
            topic, qos = m.group(1), int(m.group(2))
            rec = self._join({"kind": KIND, "broker": BROKER, "event": "subscribe",
                              "topic": topic, "qos": qos}, cid)
            self._held, self._held_key = rec, f"{cid} {qos} {topic}"
            return rec
        if self._block == "unsub":
            rec = self._join({"kind": KIND, "broker": BROKER, "event": "unsubscribe",
                              "topic": text}, cid)
            self._held, self._held_key = rec, f"{cid} {text}"
            return rec
        return None

    def _subscribe_line(self, msg: str) -> Record | None:
        """``<client> <qos> <filter>`` / ``<client> <filter>`` (log types
        subscribe / unsubscribe) without the debug block before them."""
        parts = msg.split(" ", 2)
        if len(parts) == 3 and parts[1] in ("0", "1", "2"):
            return self._join({"kind": KIND, "broker": BROKER, "event": "subscribe",
                               "topic": parts[2], "qos": int(parts[1])}, parts[0])
        if len(parts) == 2 and parts[0] in self._clients:
            return self._join({"kind": KIND, "broker": BROKER, "event": "unsubscribe",
                               "topic": parts[1]}, parts[0])
        return None

    def _split_address(self, text: str) -> tuple[str, int | None]:
        """``1.2.3.4:5678`` (2.0) or ``1.2.3.4`` (1.x); IPv6 has a port only in 2.0."""
        i = text.rfind(":")
        if (i > 0 and text[i + 1:].isdigit()
                and ("." in text[:i] or (not self._v1 and text.count(":") > 1))):
            return text[:i], int(text[i + 1:])
        return text, None

    def _new_connection(self, rest: str) -> Record | None:
        i = rest.rfind(" on port ")
        if i < 0:
            return None
        address, port = self._split_address(rest[:i])
        lport = rest[i + 9:].rstrip(".")
        conn: dict[str, Any] = {"address": address}
        if port is not None:
            conn["port"] = port
        if lport.isdigit():
            conn["listener_port"] = int(lport)
        pending = self._pending
        self._serial += 1
        pending[(address, port if port is not None else -self._serial)] = conn
        if len(pending) > self.max_pending:
            del pending[next(iter(pending))]
        rec: Record = {"kind": KIND, "broker": BROKER, "event": "connection_opened"}
        rec.update(conn)
        return rec

    def _take_pending(self, address: str, port: int | None = None) -> dict[str, Any] | None:
        pending = self._pending
        if port is not None:
            conn = pending.pop((address, port), None)
            if conn is not None:
                return conn
        # The CONNECT that follows an accept most closely is the newest one:
        # idle sockets (scanners) stay behind in the map.
        for key in reversed(pending):
            if key[0] == address or address == "":
                return pending.pop(key)
        return None

    def _connected(self, rest: str, *, bridge: bool) -> Record | None:
        m = _CONNECTED.match(rest)
        if m is None:
            return None
        addr_text, cid, proto, clean, keepalive, username = m.groups()
        address, port = self._split_address(addr_text)
        conn = self._take_pending(address, port) or {"address": address}
        if port is not None:
            conn["port"] = port
        if username is not None:
            conn["username"] = username
        clients = self._clients
        clients.pop(cid, None)
        clients[cid] = conn
        if len(clients) > self.max_clients:
            del clients[next(iter(clients))]
        self._last_client = cid
        rec: Record = {"kind": KIND, "broker": BROKER, "event": "client_connected",
                       "client_id": cid}
        rec.update(conn)
        if proto is not None:
            rec["protocol_version"] = PROTOCOL_VERSIONS.get(int(proto), proto)
        rec["clean_session"] = clean == "1"
        rec["keepalive"] = int(keepalive)
        if bridge:
            rec["bridge"] = True
        return rec

    def _will(self, msg: str) -> Record | None:
        m = _WILL.match(msg)
        if m is None:
            return None
        rec = self._join({"kind": KIND, "broker": BROKER, "event": "will", "will": True,
                          "bytes": int(m.group(1)), "retain": m.group(2) == "1",
                          "qos": int(m.group(3))}, self._last_client)
        self._held, self._held_key = rec, "\t"
        return rec

    def _connack(self, msg: str) -> Record | None:
        m = _CONNACK.match(msg, 19)
        if m is None:
            return self._packet("packet_out", msg, 8, " to ")
        who, rc = m.group(1), int(m.group(3))
        if rc == 0:
            rec = self._join({"kind": KIND, "broker": BROKER, "event": "packet_out",
                              "packet": "CONNACK", "session_present": m.group(2) == "1",
                              "rc": 0}, who)
            return rec
        # A refused CONNECT has no client id yet: mosquitto names the address.
        conn = self._clients.pop(who, None) or self._take_pending(who) or {"address": who}
        self._refused = conn
        rec = {"kind": KIND, "broker": BROKER,
               "event": "auth_failed" if rc in AUTH_CODES else "connect_refused",
               "rc": rc, "reason": CONNACK_REASONS.get(rc, f"code {rc}")}
        rec.update(conn)
        return rec

    def _connection_failed(self, rest: str) -> Record:
        who, sep, why = rest.partition(" failed: ")
        if sep:
            why = why.removesuffix(".")
            low = why.lower()
            tls = "ssl" in low or "tls" in low or "certificate" in low
            return {"kind": KIND, "broker": BROKER,
                    "event": "tls_error" if tls else "connection_failed", "address": who,
                    "error": why}
        who, sep, why = rest.partition(" denied: ")
        if "max_connections" in why:
            return {"kind": KIND, "broker": BROKER, "event": "max_connections", "address": who}
        return {"kind": KIND, "broker": BROKER, "event": "connection_denied", "address": who,
                "reason": why.removesuffix(".")}

    def _client(self, rest: str) -> Record | None:
        for suffix, reason in _DISCONNECTS:
            if rest.endswith(suffix):
                return self._disconnect(rest[:-len(suffix)], reason)
        i = rest.find(" disconnected: ")
        if i > 0:
            why = rest[i + 15:].rstrip(".")
            error = None
            if why.startswith("bad socket read/write"):
                reason, error = "socket_error", why.partition(": ")[2] or None
            else:
                reason = _REASONS_21.get(why) or _slug(why)
                error = why
            rec = self._disconnect(rest[:i], reason)
            if error:
                rec["error"] = error
            return rec
        return None

    def _disconnect(self, cid: str, reason: str) -> Record:
        rec: Record = {"kind": KIND, "broker": BROKER, "event": "client_disconnected",
                       "reason": reason}
        address = ""
        port = None
        if cid.endswith("]"):  # 2.1: "<id> [<ip>:<port>]"
            j = cid.rfind(" [")
            if j >= 0:
                address, port = self._split_address(cid[j + 2:-1])
                cid = cid[:j]
        if cid == "<unknown>":
            refused = self._refused
            self._refused = None
            if refused is not None and address and refused.get("address") != address:
                refused = None  # 2.1 names the address: that refusal was another's
            if refused is not None:
                rec.update(refused)
            else:
                conn = self._take_pending(address, port)
                if conn is None and address:
                    conn = {"address": address}
                    if port is not None:
                        conn["port"] = port
                if conn is not None:
                    rec.update(conn)
                if reason == "not_authorised":
                    # No CONNACK line (debug off): this line is the only sign.
                    rec["event"] = "auth_failed"
            return rec
        rec["client_id"] = cid
        if cid in self._bridges:
            rec["event"] = "bridge_disconnected"
        conn = self._clients.pop(cid, None)
        if conn is not None:
            rec.update(conn)
        elif address:
            rec["address"] = address
            if port is not None:
                rec["port"] = port
        if reason == "takeover":
            newest = next(reversed(self._pending.values()), None) if self._pending else None
            if newest is not None:
                rec["new_address"] = newest.get("address")
                if "port" in newest:
                    rec["new_port"] = newest["port"]
        if self._last_client == cid:
            self._last_client = None
        return rec

    def _banner(self, rest: str) -> Record | None:
        version, _, tail = rest.partition(" ")
        self._v1 = version.startswith("1.")
        state = tail.rsplit(" ", 1)[-1] if tail else ""
        event = {"starting": "broker_started", "running": "broker_running",
                 "terminating": "broker_stopping"}.get(state)
        if event is None:
            return None
        rec = self._ev(event, version=version)
        if tail.startswith("(build date "):
            rec["build_date"] = tail[12:tail.rfind(")")]
        if event == "broker_started":
            self._clients.clear()
            self._pending.clear()
        return rec

    def _opening(self, msg: str) -> Record | None:
        m = _OPENING.match(msg)
        if m is None:
            return None
        family, what, value = m.groups()
        rec = self._ev("listener_opened", address_family=family)
        if what == "port" and value.isdigit():
            rec["listener_port"] = int(value)
        else:
            rec["path"] = value
        return rec


# Every event name this parser produces, for the consumers of its records
# (alert detectors, queries): the hand-written ones and those of the table.
EVENTS: tuple[str, ...] = tuple(dict.fromkeys((
    "unparsed", "broker_started", "broker_running", "broker_stopping", "config_loaded",
    "config_reloaded", "listener_opened", "warning", "error", "connection_opened",
    "connection_failed", "connection_denied", "max_connections", "client_connected",
    "client_disconnected", "bridge_disconnected", "auth_failed", "connect_refused",
    "acl_denied", "tls_error", "publish_in", "publish_out", "packet_in", "packet_out",
    "subscribe", "unsubscribe", "will", "session_expired", "protocol_error",
    "messages_dropped", "persistence_saved", "bridge_refused", *WORDING.events)))
