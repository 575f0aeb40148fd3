"""nats-server 2.x log lines -> ``broker_event`` records.

Line shape (nats-server logger/log.go): ``[<pid>] 2006/01/02 15:04:05.000000
[INF] <msg>``; the pid and the time are optional (``-T=false``), and a line
sent to syslog (``-r udp://...``, ``-s``) has a syslog header instead of the
label. A client-scoped message starts ``<ip>:<port> - cid:<n> - `` and, once
the client has sent CONNECT, carries ``"v<ver>:<lang>:<name>"`` and (2.10+)
``"<ACCOUNT>/user:<user>"`` before the text.

Both wordings of the errors are read: 2.9 (``Publish Violation - User "bob",
Subject "foo"``, ``authentication error - User "bob"``) and 2.12+ (``Publish
Violation - Subject "foo"``, bare ``authentication error``); where a line does
not name the user, the user learned from the connection's CONNECT is used.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..record import Record
from . import LogParser, register_parser
from ._wording import Wording, friendly_bytes
from .nats_wording import RAFT_RULES, RULES
from .syslog import looks_like_syslog, parse_syslog

KIND = "broker_event"
BROKER = "nats"

LEVELS = {"INF": "info", "DBG": "debug", "TRC": "debug", "WRN": "warning", "ERR": "error",
          "FTL": "crit"}
_CONN_KINDS = {"cid": "client", "rid": "route", "lid": "leafnode", "gid": "gateway",
               "wid": "websocket", "mid": "mqtt"}
# What container tools put before a line: "nats-1  | " (docker compose),
# "nats-0 nats " (stern), "[pod/nats-0/nats] " (kubectl logs --prefix).
_CONTAINER = re.compile(
    r"(\[[^\]\s]{1,200}\] +|(?:[^\s\[|]\S{0,100} +){1,3}?(?:\| +)?)"
    r"(?=\[\d+\] |\d{4}/\d\d/\d\d |\[(?:INF|WRN|ERR|DBG|TRC|FTL)\] )")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LISTENING = re.compile(r"Listening for (\w+) (?:clients|connections) on (\S+)")
_QUOTED = re.compile(r'([A-Za-z][A-Za-z ]*?):? "((?:[^"\\]|\\.)*)"')
_SID = re.compile(r"SID (\S+)")
_SECRET_KEYS = frozenset({"pass", "auth_token", "sig", "jwt", "password", "token"})
_INFO_KEYS = {"Version": "version", "Git": "git", "Go build": "go", "Name": "server_name",
              "ID": "server_id"}


def _host_port(text: str) -> tuple[str, int | None]:
    text = text.split("://", 1)[-1]
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit():
        return host.strip("[]"), int(port)
    return text, None


@register_parser("nats")
class NatsParser(LogParser):
    def __init__(self, *, max_clients: int = 100_000) -> None:
        super().__init__()
        self.max_clients = max_clients
        self._conns: dict[str, dict[str, Any]] = {}
        self.version: str | None = None
        self._listing = ""

    @staticmethod
    def sniff(line: str) -> bool:
        i = line.find("] ") + 2 if line.startswith("[") else 0
        j = line.find(" [", i)
        if j >= 0 and line[j + 1:j + 6][:1] == "[" and line[j + 2:j + 5] in LEVELS:
            return True
        if line.startswith("[") and line[1:4] in LEVELS and line[4:6] == "] ":
            return True
        if "nats-server" in line[:80] and (looks_like_syslog(line) or line[:1].isdigit()):
            return True
        # Behind a container prefix ("nats-1  | [1] 2025/... [INF] ...") or colours.
        head = _ANSI.sub("", line[:200]) if "\x1b[" in line[:200] else line[:160]
        return any(f"] [{label}] " in head or f" [{label}] " in head[:60] for label in LEVELS)

    def _line(self, line: str, out: list[Record]) -> None:
        s = line
        extra: dict[str, object] | None = None
        if "\x1b[" in s:  # a terminal's colours (docker/kubectl logs of a tty)
            s = _ANSI.sub("", s)
        c = s[:1]
        if c == "[":
            if not s[1:2].isdigit() and s[1:4] not in LEVELS:
                m = _CONTAINER.match(s)  # kubectl logs --prefix: "[pod/nats-0/nats] "
                if m is not None:
                    extra = {"container": m.group(1).strip(" []|")}
                    s = s[m.end(1):]
        elif not (c.isdigit() and s[4:5] == "/"):
            if looks_like_syslog(s) or (c.isdigit() and s[4:5] == "-"):
                sm = parse_syslog(s)
                if sm is not None:
                    extra = sm.fields()
                    s = sm.msg
            else:
                m = _CONTAINER.match(s)
                if m is not None:
                    extra = {"container": m.group(1).rstrip(" |")}
                    s = s[m.end(1):]
        pos = 0
        severity = None
        log_time = None
        if s.startswith("["):
            j = s.find("] ", 1, 12)
            if j > 0 and s[1:j].isdigit():
                pos = j + 2
        if s[pos:pos + 1].isdigit() and s[pos + 4:pos + 5] == "/":
            j = s.find(" [", pos)
            if j > 0:
                t = s[pos:j]
                log_time = t[:10].replace("/", "-") + "T" + t[11:]
                pos = j + 1
        if s[pos:pos + 1] == "[" and s[pos + 4:pos + 6] == "] ":
            severity = LEVELS.get(s[pos + 1:pos + 4])
            if severity is not None:
                pos += 6
        msg = s[pos:]
        rec = self._message(msg)
        if rec is None:
            self.unparsed += 1
            rec = {"kind": KIND, "broker": BROKER, "event": "unparsed"}
            if msg is not line and msg:
                rec["message"] = msg
        if extra:
            rec.update(extra)
        if severity is not None:
            rec["severity"] = severity
            if s[pos - 5:pos - 2] == "TRC":
                rec["trace"] = True
        if log_time is not None:
            rec["log_time"] = log_time
        rec["line"] = line
        out.append(rec)

    # --- messages ------------------------------------------------------------------

    def _message(self, msg: str) -> Record | None:
        c = msg[:1]
        if ("0" <= c <= "9" or c == "[") and " - " in msg:
            return self._scoped(msg)
        if "A" <= c <= "Z" and msg.startswith(("ACCOUNT - ", "SYSTEM - ", "JETSTREAM - ")):
            scope, _, text = msg.partition(" - ")
            rec = self._text(text, None)
            if rec is not None:
                rec["scope"] = scope.lower()
            return rec
        return self._global(msg)

    def _scoped(self, msg: str) -> Record | None:
        first = msg.find(" - ")
        addr = msg[:first]
        rest = msg[first + 3:]
        colon = rest.find(":")
        tag = rest[:colon]
        if colon < 0 or tag not in _CONN_KINDS:
            return None
        k = rest.find(" - ", colon)
        ident = rest[colon + 1:k] if k > 0 else rest[colon + 1:]
        rest = rest[k + 3:] if k > 0 else ""
        key = f"{tag}:{ident}"
        conns = self._conns
        conn = conns.get(key)
        if conn is None:
            address, port = _host_port(addr)
            conn = {"address": address}
            if port is not None:
                conn["port"] = port
            conn["client_id"] = key
            if tag != "cid":
                conn["conn_kind"] = _CONN_KINDS[tag]
            conns[key] = conn
            if len(conns) > self.max_clients:
                del conns[next(iter(conns))]
        # "v<ver>:<lang>:<name>" and "<ACCOUNT>/user:<name>" after CONNECT.
        while rest.startswith('"'):
            end = rest.find('" - ', 1)
            if end < 0:
                break
            token = rest[1:end]
            rest = rest[end + 4:]
            if token.startswith("v") and ":" in token and "/" not in token:
                ver, _, tail = token[1:].partition(":")
                lang, _, name = tail.partition(":")
                conn["client_version"] = ver
                if lang:
                    conn["lang"] = lang
                if name:
                    conn["name"] = name
            elif "/" in token:
                account, _, user = token.partition("/")
                conn["account"] = account
                if user:
                    conn["username"] = user.removeprefix("user:")
            elif token:
                conn["remote_name"] = token  # 2.10+: routes and leafnodes name the peer
        rec = self._text(rest, conn)
        if rec is None:
            return None
        rec.update(conn)
        if rec["event"] in _CLOSED_EVENTS:
            conns.pop(key, None)
        return rec

    def _text(self, text: str, conn: dict[str, Any] | None) -> Record | None:
        c = text[:1]
        if c == "<" or c == "-":
            return self._trace(text, conn)
        if text.endswith(" connection created"):
            kind = conn.get("conn_kind", "client") if conn is not None else "client"
            return {"kind": KIND, "broker": BROKER, "event": _OPENED.get(kind, "connection_opened")}
        i = text.find("connection closed")
        if i >= 0 and (text.endswith("connection closed") or text[i + 17:i + 19] == ": "):
            why = text[i + 19:]
            kind = conn.get("conn_kind", "client") if conn is not None else "client"
            rec: Record = {"kind": KIND, "broker": BROKER,
                           "event": _CLOSED.get(kind, "client_disconnected")}
            if why:
                # 2.10+: "Client Closed - Account: $G" (tags after " - ")
                why, _, tags = why.partition(" - ")
                rec["reason"] = _slug(why)
                rec["reason_text"] = why
                if tags:
                    rec["tags"] = tags
            else:
                rec["reason"] = "unknown"  # 1.x names no reason
            return rec
        if text.startswith(("authentication error", "authorization error")):
            rec = {"kind": KIND, "broker": BROKER, "event": "auth_failed"}
            _, _, detail = text.partition(" - ")
            if detail:
                what, _, value = detail.partition(' "')
                value = value.removesuffix('"')
                if what in ("User", "JWT User") and value:
                    rec["username"] = value
                    if conn is not None and value:
                        conn["username"] = value
                elif what == "Nkey":
                    rec["nkey"] = value
                rec["credential"] = what.lower().replace(" ", "_")
            return rec
        if text.startswith(("Publish Violation", "Subscription Violation")):
            return self._violation(text, conn)
        if text.startswith("Starting TLS"):
            return {"kind": KIND, "broker": BROKER, "event": "tls_handshake"}
        if conn is None:
            return self._global(text)
        return self._worded(text)

    def _violation(self, text: str, conn: dict[str, Any] | None) -> Record:
        rec: Record = {"kind": KIND, "broker": BROKER, "event": "acl_denied",
                       "action": "publish" if text[0] == "P" else "subscribe"}
        for name, value in _QUOTED.findall(text.partition(" - ")[2]):
            name = name.strip().lower()
            if name == "user":
                rec["username"] = value
            elif name == "subject":
                rec["topic"] = value
            elif name == "reply":
                rec["reply"] = value
            elif name == "queue":
                rec["queue"] = value
        sid = _SID.search(text)
        if sid:
            rec["sid"] = sid.group(1)
        if "username" in rec and conn is not None:
            conn.setdefault("username", rec["username"])
        return rec

    def _trace(self, text: str, conn: dict[str, Any] | None) -> Record | None:
        direction = text[:3]
        body = text[4:]
        if body.startswith("MSG_PAYLOAD: "):
            return {"kind": KIND, "broker": BROKER, "event": "payload",
                    "direction": "in" if direction == "<<-" else "out"}
        if not (body.startswith("[") and body.endswith("]")):
            return None
        body = body[1:-1]
        verb, _, args = body.partition(" ")
        if direction == "<<-":
            if verb == "PUB" or verb == "HPUB":
                parts = args.split(" ")
                rec: Record = {"kind": KIND, "broker": BROKER, "event": "publish_in",
                               "topic": parts[0]}
                if parts[0].startswith("$JS.API."):
                    _js_api(parts[0], rec)
                if len(parts) >= 3 and parts[1]:
                    rec["reply"] = parts[1]
                if parts[-1].isdigit():
                    rec["bytes"] = int(parts[-1])
                return rec
            if verb == "SUB":
                parts = args.split(" ")
                rec = {"kind": KIND, "broker": BROKER, "event": "subscribe", "topic": parts[0],
                       "sid": parts[-1]}
                if len(parts) >= 3 and parts[1]:
                    rec["queue"] = parts[1]
                return rec
            if verb == "UNSUB":
                return {"kind": KIND, "broker": BROKER, "event": "unsubscribe",
                        "sid": args.split(" ")[0]}
            if verb == "CONNECT":
                return self._connect(args, conn)
            return {"kind": KIND, "broker": BROKER, "event": "packet_in", "packet": verb}
        if direction == "->>":
            if verb == "MSG" or verb == "HMSG":
                parts = args.split(" ")
                rec = {"kind": KIND, "broker": BROKER, "event": "publish_out",
                       "topic": parts[0], "sid": parts[1] if len(parts) > 1 else None}
                if len(parts) >= 4 and verb == "MSG":
                    rec["reply"] = parts[2]
                if parts[-1].isdigit():
                    rec["bytes"] = int(parts[-1])
                return rec
            if verb == "-ERR":
                return {"kind": KIND, "broker": BROKER, "event": "error_sent",
                        "error": args.strip("'")}
            return {"kind": KIND, "broker": BROKER, "event": "packet_out", "packet": verb}
        return {"kind": KIND, "broker": BROKER, "event": "packet", "packet": verb,
                "detail": args or None}

    def _connect(self, args: str, conn: dict[str, Any] | None) -> Record:
        rec: Record = {"kind": KIND, "broker": BROKER, "event": "client_connected"}
        try:
            info = orjson.loads(args)
        except orjson.JSONDecodeError:
            rec["connect_error"] = "unreadable CONNECT"
            return rec
        if not isinstance(info, dict):
            return rec
        fields: dict[str, Any] = {}
        if isinstance(info.get("name"), str) and info["name"]:
            fields["name"] = info["name"]
        if isinstance(info.get("lang"), str):
            fields["lang"] = info["lang"]
        if isinstance(info.get("version"), str):
            fields["client_version"] = info["version"]
        if isinstance(info.get("user"), str) and info["user"]:
            fields["username"] = info["user"]
        if conn is not None:
            conn.update(fields)
        rec.update(fields)
        for key in ("protocol", "tls_required", "verbose", "pedantic", "echo", "headers",
                    "no_responders"):
            if key in info:
                rec[key] = info[key]
        if "nkey" in info:
            rec["nkey"] = info["nkey"]
        rec["credentials"] = sorted(k for k in info if k in _SECRET_KEYS or k in ("user",
                                                                                   "nkey"))
        return rec

    def _global(self, text: str) -> Record | None:
        c = text[:1]
        if c == " ":
            stripped = text.strip()
            key, sep, value = stripped.partition(":")
            field = _INFO_KEYS.get(key)
            if sep and field:
                value = value.strip()
                if field == "git":
                    value = value.strip("[]")
                if field == "version":
                    self.version = value
                return {"kind": KIND, "broker": BROKER, "event": "broker_info", field: value}
            js = _JS_KEYS.get(key.rstrip())  # "  System  : ..." (operator banner)
            if sep and js:
                return _js_setting(js[0], js[1], value.strip())
            if not stripped or _BANNER.fullmatch(stripped):
                return {"kind": KIND, "broker": BROKER, "event": "banner"}
            if stripped in ("Exports:", "Imports:"):
                self._listing = stripped[:-2].lower()
                return {"kind": KIND, "broker": BROKER, "event": "account_" + self._listing + "s"}
            if self._listing and " " not in stripped:
                # One subject per line after "  Exports:" (account set-up, debug).
                return {"kind": KIND, "broker": BROKER, "event": "account_" + self._listing,
                        "subject": stripped}
            return self._worded(stripped)
        if c == "R" and text.startswith("RAFT ["):
            return self._raft(text)
        if text.startswith("Starting nats-server"):
            rec: Record = {"kind": KIND, "broker": BROKER, "event": "broker_started"}
            self._conns.clear()
            if "version " in text:  # 1.x: "Starting nats-server version 1.4.1"
                rec["version"] = self.version = text.rsplit(" ", 1)[-1]
            return rec
        if text.startswith("Listening for "):
            m = _LISTENING.match(text)
            if m is None:
                return None
            host, port = _host_port(m.group(2))
            return {"kind": KIND, "broker": BROKER, "event": "listener_opened",
                    "listener": m.group(1).lower().removesuffix("s"), "address": host,
                    "listener_port": port}
        if text.startswith(("Starting http monitor on ", "Starting https monitor on ")):
            host, port = _host_port(text.rsplit(" ", 1)[-1])
            return {"kind": KIND, "broker": BROKER, "event": "listener_opened",
                    "listener": "monitor", "address": host, "listener_port": port,
                    "tls": text[13] == "s"}
        simple = _SIMPLE.get(text)
        if simple is not None:
            return {"kind": KIND, "broker": BROKER, "event": simple}
        if text.startswith("Plaintext passwords detected"):
            return {"kind": KIND, "broker": BROKER, "event": "plaintext_passwords",
                    "message": text}
        if text.startswith("Using configuration file: "):
            path = text[26:].split(" (sha256:", 1)[0]
            return {"kind": KIND, "broker": BROKER, "event": "config_loaded", "config": path}
        if text.startswith("Trapped "):
            return {"kind": KIND, "broker": BROKER, "event": "signal",
                    "signal": text[8:].split(" ", 1)[0].strip('"')}
        if text.startswith("Websocket not configured with TLS"):
            return {"kind": KIND, "broker": BROKER, "event": "insecure_websocket",
                    "message": text}
        if text.startswith(("Reloaded server configuration", "Reloading server configuration")):
            return {"kind": KIND, "broker": BROKER, "event": "config_reloaded"}
        if text.startswith("Git commit ["):  # 1.x and 2.0-2.1
            return {"kind": KIND, "broker": BROKER, "event": "broker_info",
                    "git": text[12:].rstrip("]")}
        if text.startswith("Server id is "):
            return {"kind": KIND, "broker": BROKER, "event": "broker_info",
                    "server_id": text[13:]}
        if not text or _BANNER.fullmatch(text):
            return {"kind": KIND, "broker": BROKER, "event": "banner"}
        return self._worded(text)

    def _worded(self, text: str) -> Record | None:
        fields = WORDING.match(text)
        if fields is None:
            return None
        rec: Record = {"kind": KIND, "broker": BROKER}
        rec.update(fields)
        return rec

    def _raft(self, text: str) -> Record:
        """``RAFT [<node> - <group>] <text>`` (raft.go, 2.2+)."""
        end = text.find("] ", 6)
        node, _, group = text[6:end].partition(" - ") if end > 0 else ("", "", "")
        rest = text[end + 2:] if end > 0 else text[5:]
        rec: Record = {"kind": KIND, "broker": BROKER}
        fields = RAFT_WORDING.match(rest)
        if fields is None:
            fields = {"event": "raft", "message": rest}
        rec.update(fields)
        rec["raft_node"] = node
        rec["raft_group"] = group
        return rec


def _js_api(subject: str, rec: Record) -> None:
    """``$JS.API.STREAM.CREATE.ORDERS`` -> jetstream_api ``STREAM.CREATE``, stream
    ``ORDERS``: which JetStream request a traced publish is (created/deleted...)."""
    tokens = subject.split(".")
    if len(tokens) < 4:
        return
    if tokens[3] == "DURABLE" and len(tokens) > 4:  # $JS.API.CONSUMER.DURABLE.CREATE.S.C
        tokens = [*tokens[:3], tokens[4], *tokens[5:]]
        rec["durable"] = True
    rec["jetstream_api"] = ".".join(tokens[2:4])
    if tokens[2] in ("STREAM", "CONSUMER") and len(tokens) > 4:
        rec["stream"] = tokens[4]
        if tokens[2] == "CONSUMER" and len(tokens) > 5:
            rec["consumer"] = tokens[5]


def _js_setting(event: str, field: str, value: str) -> Record:
    rec: Record = {"kind": KIND, "broker": BROKER, "event": event}
    if event == "jetstream_limits":
        rec[field] = value
        size = friendly_bytes(value)
        if size is not None:
            rec[f"{field}_bytes"] = size
    elif field == "api_level":
        rec[field] = int(value) if value.isdigit() else value
    elif field in ("store_dir", "operator", "system_account"):
        rec[field] = value[1:-1] if value[:1] == '"' and value[-1:] == '"' else value
    elif event == "jetstream_config":
        rec["setting"] = field
        rec["value"] = value
    else:
        rec[field] = value
    return rec


# "  Max Memory:      1.00 GB" and the rest of the JetStream banner (jetstream.go).
_JS_KEYS = {
    "Max Memory": ("jetstream_limits", "max_memory"),
    "Max Storage": ("jetstream_limits", "max_storage"),
    "Store Directory": ("jetstream_store_dir", "store_dir"),
    "API Level": ("jetstream_api_level", "api_level"),
    "Strict": ("jetstream_config", "strict"),
    "Domain": ("jetstream_config", "domain"),
    "Encryption": ("jetstream_config", "encryption"),
    "TPM File": ("jetstream_config", "tpm_file"),
    "Sync Interval": ("jetstream_config", "sync_interval"),
    "Cluster": ("broker_info", "cluster"),
    "Node": ("broker_info", "node"),
    "Operator": ("operator", "operator"),
    "System": ("operator", "system_account"),
    "Issued": ("operator", "issued"),
    "Expires": ("operator", "expires"),
}
# The JetStream ASCII art, its rulers and its link.
_BANNER = re.compile(
    r"[\s_|/\\()-]*|-+ ?(?:JETSTREAM)? ?-+|https://\S+/jetstream|Trusted Operators")

WORDING = Wording(RULES)
RAFT_WORDING = Wording(RAFT_RULES)
_OPENED = {"route": "route_connected", "gateway": "gateway_connected",
           "leafnode": "leafnode_connected"}
_CLOSED = {"route": "route_closed", "gateway": "gateway_closed", "leafnode": "leafnode_closed"}
_CLOSED_EVENTS = frozenset(("client_disconnected", *_CLOSED.values()))


_SIMPLE = {
    "Server is ready": "broker_ready",
    "Initiating Shutdown...": "broker_stopping",
    "Server Exiting..": "broker_stopped",
    "TLS required for client connections": "tls_required",
    "Client accept loop exiting..": "listener_closed",
    "Created system account: \"$SYS\"": "system_account",
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unknown"


# Every event name this parser produces, for the consumers of its records
# (alert detectors, queries): the hand-written ones and those of the tables.
EVENTS: tuple[str, ...] = tuple(dict.fromkeys((
    "unparsed", "broker_started", "broker_info", "broker_ready", "broker_stopping",
    "broker_stopped", "listener_opened", "listener_closed", "config_loaded", "config_reloaded",
    "signal", "plaintext_passwords", "insecure_websocket", "tls_required", "system_account",
    "banner", "operator", "jetstream_limits", "jetstream_store_dir", "jetstream_api_level",
    "jetstream_config", "account_exports", "account_export", "account_imports",
    "account_import", "connection_opened", "client_connected", "client_disconnected",
    *_OPENED.values(), *_CLOSED.values(), "auth_failed", "acl_denied", "tls_handshake",
    "publish_in", "publish_out", "subscribe", "unsubscribe", "payload", "packet", "packet_in",
    "packet_out", "error_sent", "raft", *WORDING.events, *RAFT_WORDING.events)))
