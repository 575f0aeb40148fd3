"""MQTT checks: TLS on the port and on 8883, anonymous login, ``#`` and
``$SYS/#`` (topics, retained messages and the secrets in them), the broker
version from ``$SYS`` against the advisories table, MQTT 5 support, and
credentials accepted over plaintext. ``--write-test`` adds one publish.

Non-destructive: nothing is published unless ``write_test``; sessions are
clean, so the broker keeps nothing of ours. The anonymous attempt sends no
secret, so it goes ahead even over a certificate that does not verify (that
is reported as its own finding); the user's credentials are only sent over a
verified connection, or with ``--insecure``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time

from .. import advisories
from ..errors import ConnectError
from ..message import Message
from ..net.mqtt import ConnectOptions, MqttClient
from ..net.tls import client_context
from ..sources import SourceOptions
from ..sources.mqtt import MqttSource, connect_options
from ..urls import Url
from .base import AuditSettings, Heard, examples, plural
from .findings import Severity, TargetReport
from .tls import add_cert_findings, probe

MQTTS_PORT = 8883
_V5_REFUSED = (0x84, 1)  # MQTT 5 "unsupported protocol version", 3.1.1 return code 1
_REFUSED_LOGIN = (0x86, 0x87, 4, 5)


async def audit_mqtt(url: Url, options: SourceOptions, settings: AuditSettings
                     ) -> TargetReport:
    report = TargetReport(url.redacted, "mqtt")
    base = connect_options(MqttSource(url, options), default_client_id=_client_id())
    base.connect_timeout = settings.timeout_secs
    base.keepalive = 30
    host, port = base.host, base.port
    report.broker["tls"] = base.ssl is not None
    if base.ssl is not None:
        await _check_tls(report, host, port, options, tls=True, speaks_mqtt=False)

    forced = options.protocol_version.lower() not in ("auto", "5", "5.0", "mqttv5")
    # no secret in an anonymous CONNECT: a certificate's flaws are findings, not a stop
    anon = dataclasses.replace(base, username=None, password=None,
                               ssl=client_context(insecure=True) if base.ssl else None)
    anon_client, anon_error = await _connect(anon, report, forced=forced)
    if anon_client is not None:
        report.add("anonymous_access", f"CONNACK success without user name or password "
                   f"(MQTT {anon_client.info['protocol_version']}) on port {port}")
    elif anon_error is not None and _refused_login(anon_error):
        report.notes.append(f"anonymous login refused: {anon_error.reason}")
    if base.ssl is None:
        # a plaintext MQTT answer settles that the port is not TLS: only 8883 is probed
        speaks = anon_client is not None or (anon_error is not None
                                             and _refused_login(anon_error))
        plain_to_tls = await _check_tls(report, host, port, options, tls=False,
                                        speaks_mqtt=speaks)
    else:
        plain_to_tls = False

    user_client: MqttClient | None = None
    user_error: ConnectError | None = None
    who_user = repr(base.username) if base.username is not None else "(client certificate)"
    # never a password in clear to a TLS port: the note says to use mqtts://
    has_login = base.username is not None or base.password is not None or options.tls_cert
    if has_login and not plain_to_tls:
        user_client, user_error = await _connect(
            dataclasses.replace(base, client_id=_client_id()), report, forced=forced)
        if user_client is not None and base.ssl is None:
            report.add("plaintext_credentials", f"login as {who_user} accepted on "
                       f"plaintext port {port}: the password crosses the network in clear")
        elif user_error is not None:
            report.notes.append(f"login as {who_user} failed: {user_error.reason}")
    if anon_client is None and user_client is None:
        if anon_error is not None and not _refused_login(anon_error):
            report.error = (user_error or anon_error).reason
            return report
        if user_error is None:
            report.notes.append("anonymous login refused and no credentials given (-u/-P): "
                                "topic, $SYS and retained checks skipped")

    session = anon_client or user_client
    who = "anonymous clients" if anon_client is not None else f"user {who_user}"
    try:
        if session is not None:
            await _listen_checks(report, session, who=who, anonymous=anon_client is not None,
                                 settings=settings)
    finally:
        for c in (anon_client, user_client):
            if c is not None:
                await c.close()
    return report


def _client_id() -> str:
    return f"bustap-audit-{os.urandom(4).hex()}"


def _refused_login(exc: ConnectError) -> bool:
    return exc.value in _REFUSED_LOGIN


async def _check_tls(report: TargetReport, host: str, port: int, o: SourceOptions, *,
                     tls: bool, speaks_mqtt: bool) -> bool:
    """TLS findings for the port (and 8883 beside a plaintext port); True
    when the port itself speaks TLS."""
    here = (None if speaks_mqtt else
            await probe(host, port, ca=o.tls_ca, cert=o.tls_cert, key=o.tls_key,
                        timeout=2.0 if tls else 1.0))
    if tls:
        # no handshake: the connection attempt that follows fails and says why
        if here is not None:
            report.broker["tls_version"] = here.version
            add_cert_findings(report, here, host=host)
        return here is not None
    if here is not None:
        report.notes.append(f"port {port} speaks TLS: audit it as mqtts://{host}:{port}")
        add_cert_findings(report, here, host=host)
        return True
    if not speaks_mqtt:
        return False  # nothing to say about TLS on a port that does not answer
    other = (await probe(host, MQTTS_PORT, ca=o.tls_ca, cert=o.tls_cert, key=o.tls_key)
             if port != MQTTS_PORT else None)
    if other is None:
        report.add("tls_missing", f"plaintext MQTT on port {port}, and no TLS on port "
                   f"{MQTTS_PORT}")
    else:
        report.add("tls_optional", f"plaintext MQTT on port {port} beside TLS on port "
                   f"{MQTTS_PORT}")
        add_cert_findings(report, other, host=host)
    return False


async def _connect(opts: ConnectOptions, report: TargetReport, *, forced: bool
                   ) -> tuple[MqttClient | None, ConnectError | None]:
    """Connect with MQTT 5, falling back to 3.1.1 (and noting it) unless the
    user chose the version."""
    client = MqttClient(opts)
    try:
        await client.connect()
        return client, None
    except ConnectError as exc:
        if forced or opts.version != 5 or exc.value not in _V5_REFUSED:
            return None, exc
    if not any(f.id == "mqtt5_unsupported" for f in report.findings):
        report.add("mqtt5_unsupported", "CONNECT with protocol level 5 refused; 3.1.1 used")
    client = MqttClient(dataclasses.replace(opts, version=4))
    try:
        await client.connect()
        return client, None
    except ConnectError as exc:
        return None, exc


async def _listen_checks(report: TargetReport, client: MqttClient, *, who: str,
                         anonymous: bool, settings: AuditSettings) -> None:
    report.broker["protocol_version"] = client.info.get("protocol_version")
    marker = f"bustap-audit/{os.urandom(6).hex()}/write-test"
    filters = [("#", 0), ("$SYS/#", 0)]
    if settings.write_test:
        filters.append((marker, 0))
    try:
        codes = await client.subscribe(filters)
    except (ConnectError, TimeoutError) as exc:
        report.notes.append(f"SUBSCRIBE failed: {exc}")
        return
    granted = {flt for (flt, _), code in zip(filters, codes, strict=False) if code < 0x80}
    heard = Heard()
    echoed = False
    loop = asyncio.get_running_loop()
    # nothing granted, nothing to hear
    deadline = loop.time() + (settings.listen_secs if granted else 0)
    published = False
    while (left := deadline - loop.time()) > 0:
        if settings.write_test and not published and granted & {marker, "#"}:
            published = True
            await _write_test(client, marker, report)
        try:
            batch: list[Message] = await asyncio.wait_for(anext(client), left)
        except TimeoutError:
            break
        except ConnectError as exc:
            report.notes.append(f"connection lost while listening: {exc.reason}")
            break
        for m in batch:
            if m.topic == marker:
                echoed = True
                continue
            heard.add(m.topic, m.payload, retained=bool(m.retain),
                      system=m.topic.startswith("$SYS/"))
            if m.topic == "$SYS/broker/version":
                report.broker["version"] = m.payload.decode("utf-8", "replace").strip()

    secs = f"{settings.listen_secs:g}s"
    if "#" in granted:
        severity = (None if anonymous and heard.topics else
                    Severity.MEDIUM if anonymous else Severity.LOW)
        seen = (f"{plural(len(heard.topics), 'topic')} delivered in {secs} "
                f"({len(heard.retained)} retained), e.g. {examples(heard.topics)}"
                if heard.topics
                else f"no message delivered in {secs}")
        report.add("wildcard_subscribe", f"SUBACK granted '#' to {who}; {seen}",
                   severity=severity)
    if heard.system_topics:
        report.add("sys_exposed", f"$SYS/# delivered {plural(len(heard.system_topics), 'topic')} "
                   f"to {who}, e.g. {examples(heard.system_topics)}",
                   severity=None if anonymous else Severity.LOW)
    heard.add_secret_findings(report, who=who)
    if settings.write_test and echoed:
        report.add("write_allowed", f"{who} published to {marker!r} and received it back",
                   severity=None if anonymous else Severity.LOW)
    elif settings.write_test:
        report.notes.append(f"write test: nothing came back on {marker!r} (publishing "
                            "or reading it back is denied)")
    report.broker.update(topics=len(heard.topics), retained=len(heard.retained),
                         messages=heard.messages)
    version = report.broker.get("version")
    if version:
        report.broker["name"] = "mosquitto" if "mosquitto" in version.lower() else None
        old = advisories.check("mosquitto", version) if "mosquitto" in version.lower() else None
        if old is not None:
            report.add("version_outdated", f"{version} (from $SYS/broker/version) is below "
                       f"{old.minimum}: {', '.join(old.advisories)}")
    else:
        report.notes.append("broker version unknown ($SYS/broker/version not readable)")


async def _write_test(client: MqttClient, topic: str, report: TargetReport) -> None:
    try:
        await client.publish(topic, b"bustap audit write test " + str(time.time()).encode(),
                             qos=1)
    except (ConnectError, TimeoutError) as exc:
        report.notes.append(f"write test: publish failed: {exc}")

