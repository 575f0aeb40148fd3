"""NATS checks: the INFO a server sends before authentication (version,
auth_required, tls_required, tls_available, max_payload, JetStream), TLS
and its certificate, an anonymous CONNECT answered by PONG (not ``-ERR``),
a ``>`` subscription allowed, the system account and the JetStream API
reachable, the monitoring port open without authentication (``/varz``,
``/connz``), and the version against the advisories table.

Non-destructive: only read-only requests (``$SYS.REQ.SERVER.PING``,
``$JS.API.INFO``, ``$JS.API.STREAM.NAMES``); one publish with ``write_test``.
Credentials go only over TLS that verifies (or with ``--insecure``), as for
MQTT; the anonymous attempt sends no secret and so tolerates a bad certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from typing import Any

import orjson

from .. import advisories
from ..errors import ConfigError, ConnectError
from ..net.nats import connect, connect_kwargs, error_text
from ..sources import SourceOptions
from ..sources.nats_monitor import http_get_json
from ..urls import Url
from .base import AuditSettings, Heard, examples, plural
from .findings import Severity, TargetReport
from .tls import add_cert_findings, probe

NATS_PORT = 4222
_INFO_KEYS = ("server_id", "server_name", "version", "go", "proto", "headers",
              "auth_required", "tls_required", "tls_available", "tls_verify", "max_payload",
              "jetstream", "cluster", "client_ip")


class _QuietTlsEof(logging.Filter):
    """nats-py upgrades an asyncio stream to TLS, and asyncio then warns
    "returning true from eof_received() has no effect when using ssl" each
    time the server closes such a connection: noise under an audit report."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "eof_received()" not in record.getMessage()


_QUIET = _QuietTlsEof()


async def read_info(host: str, port: int, timeout: float) -> dict[str, Any]:
    """The INFO line a NATS server sends on connect, before any TLS or auth."""
    name = f"nats://{host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        raise ConnectError(name, getattr(exc, "strerror", None) or
                           f"no connection in {timeout:g}s") from exc
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, TimeoutError) as exc:
        raise ConnectError(name, f"no INFO within {timeout:g}s (not a NATS port, or a "
                           "TLS-first server)") from exc
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    if not line.startswith(b"INFO "):
        raise ConnectError(name, "the server did not send INFO: not a NATS port")
    try:
        info = orjson.loads(line[5:])
    except orjson.JSONDecodeError as exc:
        raise ConnectError(name, "INFO is not JSON") from exc
    if not isinstance(info, dict):
        raise ConnectError(name, "INFO is not a JSON object")
    return info


async def audit_nats(url: Url, options: SourceOptions, settings: AuditSettings
                     ) -> TargetReport:
    report = TargetReport(url.redacted, "nats")
    logging.getLogger("asyncio").addFilter(_QUIET)  # once: filters are a set
    host, port = url.host or "127.0.0.1", url.port or NATS_PORT
    monitor = monitor_port(url, settings.monitor_port)
    try:
        info = await read_info(host, port, settings.timeout_secs)
    except ConnectError as exc:
        report.error = exc.reason
        return report
    report.broker.update({k: info[k] for k in _INFO_KEYS if k in info}, name="nats-server")
    version = str(info.get("version", ""))
    old = advisories.check("nats", version) if version else None
    if old is not None:
        report.add("version_outdated", f"nats-server {version} (from INFO) is below "
                   f"{old.minimum}: {', '.join(old.advisories)}")

    tls_required = bool(info.get("tls_required"))
    tls_available = bool(info.get("tls_available")) or tls_required
    if tls_available:
        found = await probe(host, port, ca=options.tls_ca, cert=options.tls_cert,
                            key=options.tls_key, nats_info=True,
                            timeout=settings.timeout_secs)
        if found is not None:
            report.broker["tls_version"] = found.version
            add_cert_findings(report, found, host=host)
        if not tls_required:
            report.add("tls_optional", "INFO says tls_available but not tls_required: "
                       "clients may connect in plaintext")
    else:
        report.add("tls_missing", f"INFO says tls_required false on port {port}: no TLS")
    wants_tls = (url.scheme in ("tls", "natss") or tls_required
                 or bool(options.tls_ca or options.tls_cert or options.insecure))

    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(error_text(exc))

    anon_url = dataclasses.replace(url, username=None, password=None)
    anon_kw = connect_kwargs(anon_url, connect_timeout=settings.timeout_secs,
                             insecure=wants_tls, name="bustap-audit")
    anon_nc, anon_error = await _try(anon_url, anon_kw, on_error)
    if anon_nc is not None:
        report.add("anonymous_access", "CONNECT without credentials answered by PONG "
                   f"(INFO auth_required {_json(info.get('auth_required'))})")

    secret_login = bool(options.username or options.password or options.token
                        or url.username)
    has_identity = secret_login or bool(options.creds or options.nkey or options.tls_cert)
    # a lone user part of a NATS URL is a token: never shown
    who_user = (repr(options.username) if options.username else
                repr(url.username) if url.password is not None else
                "(token)" if options.token or url.username else
                "(creds file)" if options.creds else "(nkey)" if options.nkey else
                "(client certificate)")
    user_nc = None
    user_error: ConnectError | None = None
    if has_identity:
        user_kw = connect_kwargs(
            url, username=options.username, password=options.password, token=options.token,
            creds=options.creds, nkey=options.nkey, tls_ca=options.tls_ca,
            tls_cert=options.tls_cert, tls_key=options.tls_key, insecure=options.insecure,
            connect_timeout=settings.timeout_secs, name="bustap-audit")
        user_nc, user_error = await _try(url, user_kw, on_error)
        if user_nc is not None and secret_login and "tls" not in user_kw and not tls_required:
            report.add("plaintext_credentials", f"login as {who_user} accepted without TLS "
                       f"on port {port}: the password or token crosses the network in clear")
        elif user_error is not None:
            report.notes.append(f"login as {who_user} failed: {user_error.reason}")
    if anon_error is not None:
        # the server sent INFO, so any failure here is a refusal (no credentials, no
        # client certificate), not an unreachable server
        why = ("client certificate required (INFO tls_verify true)"
               if info.get("tls_verify") else anon_error.reason)
        report.notes.append(f"anonymous CONNECT refused: {why}")
    if anon_nc is None and user_nc is None and not has_identity:
        report.notes.append("no credentials given (-u/-P, --token, --creds, --tls-cert): "
                            "subscription, $SYS and JetStream checks skipped")

    session = anon_nc or user_nc
    who = "anonymous clients" if anon_nc is not None else f"user {who_user}"
    try:
        if session is not None:
            await _session_checks(report, session, errors, who=who,
                                  anonymous=anon_nc is not None, settings=settings)
    finally:
        for nc in (anon_nc, user_nc):
            if nc is not None:
                with contextlib.suppress(Exception):
                    await nc.close()
    await _check_monitor(report, host, monitor, settings.timeout_secs)
    return report


def _json(flag: object) -> str:
    return "true" if flag else "false"


def monitor_port(url: Url, default: int) -> int:
    """The monitoring port to probe: ``?monitor=PORT`` in the URL, else ``default``."""
    raw = url.param("monitor")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 0 < value < 65536:
        raise ConfigError(f"?monitor= must be a port number, not {raw!r}", value=raw)
    return value


async def _try(url: Url, kwargs: dict[str, Any], on_error: Any
               ) -> tuple[Any | None, ConnectError | None]:
    try:
        return await connect(url, kwargs, error_cb=on_error), None
    except ConnectError as exc:
        return None, exc


def _denied(errors: list[str], what: str) -> bool:
    return any("permissions violation" in e.lower() and what.lower() in e.lower() for e in errors)


async def _session_checks(report: TargetReport, nc: Any, errors: list[str], *, who: str,
                          anonymous: bool, settings: AuditSettings) -> None:

    heard = Heard()
    marker = f"bustap.audit.{os.urandom(6).hex()}.write_test"
    echoed = asyncio.Event()

    async def on_msg(msg: Any) -> None:
        if msg.subject == marker:
            echoed.set()
            return
        heard.add(msg.subject, msg.data, system=msg.subject.startswith("$SYS."))

    timeout = settings.timeout_secs
    errors.clear()
    sub = await nc.subscribe(">", cb=on_msg)
    if settings.write_test:
        await nc.subscribe(marker, cb=on_msg)
    await nc.flush(timeout)
    await asyncio.sleep(0.05)  # an -ERR for the SUB arrives before the PONG, its callback after
    sub_denied = _denied(errors, 'Subscription to ">"')
    if settings.write_test:
        await nc.publish(marker, b"bustap audit write test")
        await nc.flush(timeout)
    await asyncio.sleep(settings.listen_secs)
    # our own requests below must not count as traffic heard
    await sub.unsubscribe()
    secs = f"{settings.listen_secs:g}s"
    if not sub_denied:
        seen = (f"{plural(len(heard.topics), 'subject')} seen in {secs}, "
                f"e.g. {examples(heard.topics)}" if heard.topics else f"no message seen in {secs}")
        report.add("wildcard_subscribe", f"SUB '>' allowed for {who}; {seen}",
                   severity=(None if anonymous and heard.topics else
                             Severity.MEDIUM if anonymous else Severity.LOW))
    heard.add_secret_findings(report, who=who)
    if settings.write_test and echoed.is_set():
        report.add("write_allowed", f"{who} published to {marker!r} and received it back",
                   severity=None if anonymous else Severity.LOW)
    elif settings.write_test:
        report.notes.append(f"write test: nothing came back on {marker!r}"
                            + (" (publish denied)" if _denied(errors, "Publish") else ""))

    # a denied request is only an -ERR and a timeout: wait for both at once
    await asyncio.gather(_check_system(report, nc, who=who, anonymous=anonymous,
                                       timeout=timeout),
                         _check_jetstream(report, nc, who=who, anonymous=anonymous,
                                          timeout=timeout))
    report.broker.update(subjects=len(heard.topics), messages=heard.messages)


async def _check_system(report: TargetReport, nc: Any, *, who: str, anonymous: bool,
                        timeout: float) -> None:
    from nats import errors as nerr

    try:
        await nc.request("$SYS.REQ.SERVER.PING", b"", timeout=min(timeout, 1.0))
    except (nerr.NoRespondersError, nerr.TimeoutError, TimeoutError):
        return
    # the system account can watch and steer every server: worse than MQTT's $SYS
    report.add("sys_exposed", f"{who} are in the system account: $SYS.REQ.SERVER.PING "
               "answered", severity=Severity.HIGH if anonymous else Severity.LOW)


async def _check_jetstream(report: TargetReport, nc: Any, *, who: str, anonymous: bool,
                           timeout: float) -> None:
    from nats import errors as nerr

    try:
        reply = await nc.request("$JS.API.INFO", b"", timeout=min(timeout, 1.0))
        info = orjson.loads(reply.data)
    except (nerr.NoRespondersError, nerr.TimeoutError, TimeoutError, orjson.JSONDecodeError):
        if report.broker.get("jetstream"):
            report.notes.append(f"JetStream enabled, its API not reachable for {who}")
        return
    if not isinstance(info, dict) or "error" in info:
        err = info.get("error", {}) if isinstance(info, dict) else {}
        report.notes.append(f"JetStream API for {who}: {err.get('description', 'refused')}")
        return
    names: list[str] = []
    with contextlib.suppress(Exception):
        got = orjson.loads((await nc.request("$JS.API.STREAM.NAMES", b"{}",
                                             timeout=min(timeout, 1.0))).data)
        names = list(got.get("streams") or [])
    listing = f": {examples(set(names))}" if names else ""
    report.add("jetstream_exposed", f"$JS.API.INFO answered for {who}: "
               f"{info.get('streams', 0)} streams{listing}, {info.get('consumers', 0)} "
               "consumers", severity=None if anonymous else Severity.LOW)


async def _check_monitor(report: TargetReport, host: str, port: int, timeout: float) -> None:
    try:
        varz = await http_get_json(host, port, "/varz", min(timeout, 2.0))
    except ConnectError:
        report.notes.append(f"monitoring port {port}: closed")
        return
    if not isinstance(varz, dict) or "server_id" not in varz:
        report.notes.append(f"port {port} answers HTTP but not as NATS monitoring")
        return
    parts = [f"/varz on port {port} answered without authentication: nats-server "
             f"{varz.get('version', '?')}, {varz.get('connections', '?')} connections"]
    with contextlib.suppress(ConnectError):
        connz = await http_get_json(host, port, "/connz?auth=true&limit=1024",
                                    min(timeout, 2.0))
        conns = (connz.get("connections") or []) if isinstance(connz, dict) else []
        users = {c["authorized_user"] for c in conns if c.get("authorized_user")}
        parts.append(f"/connz lists {len(conns)} client connections with their addresses"
                     + (f" and {len(users)} user names" if users else ""))
    report.add("monitor_exposed", "; ".join(parts), target=f"http://{host}:{port}")
