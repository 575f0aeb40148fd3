"""TLS on a broker port: is it offered, and is its certificate one a client
should trust (chain, host name, expiry, self-signed)?

Two handshakes: one that accepts anything, to read the certificate whatever
it is, and one that verifies like a careful client (the ``--tls-ca`` given,
else the system store, and the host name), to learn why verification fails.
NATS speaks plaintext INFO before the TLS upgrade: ``nats_info`` reads it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtensionOID, NameOID

from ..net.tls import client_context
from .findings import Severity, TargetReport

EXPIRY_WARN_DAYS = 30
EXPIRY_HIGH_DAYS = 7
# OpenSSL X509_V_ERR_*: the leaf signed itself; an expired certificate.
_SELF_SIGNED_LEAF = 18
_EXPIRED = 10


@dataclass(frozen=True, slots=True)
class CertInfo:
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    self_signed: bool
    names: tuple[str, ...]

    @classmethod
    def from_der(cls, der: bytes) -> CertInfo:
        cert = x509.load_der_x509_certificate(der)
        self_signed = cert.issuer == cert.subject
        if self_signed:
            try:
                cert.verify_directly_issued_by(cert)
            except (ValueError, TypeError, InvalidSignature):
                self_signed = False
        names: list[str] = []
        with contextlib.suppress(x509.ExtensionNotFound):
            san = cert.extensions.get_extension_for_oid(
                ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
            assert isinstance(san, x509.SubjectAlternativeName)
            names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
            names += [str(n) for n in san.get_values_for_type(x509.IPAddress)]
        return cls(_name(cert.subject), _name(cert.issuer), cert.not_valid_before_utc,
                   cert.not_valid_after_utc, self_signed, tuple(names))


def _name(name: x509.Name) -> str:
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns:
        return f"CN={cns[0].value!s}"
    orgs = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return f"O={orgs[0].value!s}" if orgs else name.rfc4514_string() or "(empty name)"


@dataclass(frozen=True, slots=True)
class TlsProbe:
    """What a TLS handshake on a port showed; ``verify_error`` is None when a
    verifying client accepts the certificate."""

    port: int
    version: str
    cert: CertInfo | None
    verify_error: str | None
    verify_code: int | None
    handshake_note: str | None = None  # e.g. the server wants a client certificate


async def probe(host: str, port: int, *, ca: str | None = None, cert: str | None = None,
                key: str | None = None, nats_info: bool = False,
                timeout: float = 3.0) -> TlsProbe | None:
    """The TLS facts of ``host:port``, or None when the port does not speak TLS
    (or nothing listens there)."""
    anything = client_context(cert=cert, key=key, insecure=True)
    try:
        version, der = await _handshake(host, port, anything, nats_info, timeout)
    except (OSError, ssl.SSLError, TimeoutError, EOFError, asyncio.IncompleteReadError):
        return None
    info = CertInfo.from_der(der) if der else None
    careful = client_context(ca=ca, cert=cert, key=key)
    verify_error: str | None = None
    code: int | None = None
    note: str | None = None
    try:
        await _handshake(host, port, careful, nats_info, timeout)
    except ssl.SSLCertVerificationError as exc:
        verify_error = str(exc.verify_message or exc.reason)
        code = exc.verify_code
    except (ssl.SSLError, OSError, TimeoutError, EOFError, asyncio.IncompleteReadError) as exc:
        note = f"verifying handshake failed: {exc}"
    return TlsProbe(port, version, info, verify_error, code, note)


class _FirstLine(asyncio.Protocol):
    """Holds the connection until the server's first line (NATS INFO) is in."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.line: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"\n" in self.buf and not self.line.done():
            self.line.set_result(bytes(self.buf))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.line.done():
            self.line.set_exception(EOFError("connection closed before the first line"))


async def _handshake(host: str, port: int, ctx: ssl.SSLContext, nats_info: bool,
                     timeout: float) -> tuple[str, bytes | None]:
    loop = asyncio.get_running_loop()

    async def run() -> tuple[str, bytes | None]:
        if not nats_info:
            transport, _ = await loop.create_connection(asyncio.Protocol, host, port,
                                                        ssl=ctx, server_hostname=host)
        else:
            plain, proto = await loop.create_connection(_FirstLine, host, port)
            try:
                if not (await proto.line).startswith(b"INFO"):
                    raise EOFError("no NATS INFO before the TLS upgrade")
                upgraded = await loop.start_tls(plain, proto, ctx, server_hostname=host)
            except BaseException:
                plain.close()
                raise
            if upgraded is None:
                plain.close()
                raise EOFError("no TLS session")
            transport = upgraded
        try:
            sslobj = transport.get_extra_info("ssl_object")
            if sslobj is None:
                raise EOFError("no TLS session")
            return str(sslobj.version()), sslobj.getpeercert(binary_form=True)
        finally:
            transport.close()

    return await asyncio.wait_for(run(), timeout)


def add_cert_findings(report: TargetReport, found: TlsProbe, *, host: str,
                      now: dt.datetime | None = None) -> None:
    """cert_invalid / cert_self_signed / cert_expiring for one TLS port."""
    now = now or dt.datetime.now(dt.UTC)
    target = f"{report.target.split('://', 1)[0]}://{host}:{found.port}"
    info = found.cert
    about = "certificate"
    if info is not None:
        names = f" for {', '.join(info.names[:3])}" if info.names else ""
        about = f"certificate {info.subject}{names}, issued by {info.issuer}"
    if found.handshake_note:
        report.notes.append(f"port {found.port}: {found.handshake_note}")
    if found.verify_error is not None:
        if found.verify_code == _SELF_SIGNED_LEAF:
            report.add("cert_self_signed", f"{about}: {found.verify_error}", target=target)
        else:
            hint = ("" if found.verify_code == _EXPIRED else
                    " (give --tls-ca when the broker uses a private CA)")
            report.add("cert_invalid", f"{about}: {found.verify_error}{hint}", target=target)
    elif info is not None and info.self_signed:
        # verified only because the self-signed certificate itself was given as --tls-ca
        report.add("cert_self_signed", f"{about}: self-signed, trusted only as pinned",
                   severity=Severity.LOW, target=target)
    if info is None:
        return
    left = info.not_after - now
    if left.total_seconds() > 0 and left.days < EXPIRY_WARN_DAYS:
        report.add("cert_expiring", f"{about} expires {info.not_after:%Y-%m-%d %H:%M}Z "
                   f"(in {left.days} days)", target=target,
                   severity=Severity.HIGH if left.days < EXPIRY_HIGH_DAYS else None)
    elif left.total_seconds() <= 0 and found.verify_code != _EXPIRED:
        report.add("cert_invalid", f"{about} expired {info.not_after:%Y-%m-%d}",
                   target=target)
