"""Certificate findings from what a TLS handshake showed (no broker needed:
the certificates come from trustme)."""

from __future__ import annotations

import datetime as dt

import trustme

from bustap.audit.findings import Severity, TargetReport
from bustap.audit.tls import CertInfo, TlsProbe, add_cert_findings

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def info(days_left: int) -> CertInfo:
    ca = trustme.CA()
    cert = ca.issue_cert("broker.lab", not_before=NOW - dt.timedelta(days=100),
                         not_after=NOW + dt.timedelta(days=days_left))
    der = cert.cert_chain_pems[0].bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return CertInfo.from_der(x509.load_pem_x509_certificate(der).public_bytes(Encoding.DER))


def findings(found: TlsProbe) -> dict[str, Severity]:
    r = TargetReport("mqtts://broker.lab:8883", "mqtt")
    add_cert_findings(r, found, host="broker.lab", now=NOW)
    return {f.id: f.severity for f in r.findings}


def test_cert_info() -> None:
    c = info(200)
    assert c.names == ("broker.lab",) and not c.self_signed
    assert c.issuer.startswith("O=") or c.issuer.startswith("CN=")


def test_good_certificate_has_no_findings() -> None:
    assert findings(TlsProbe(8883, "TLSv1.3", info(200), None, None)) == {}


def test_expiring() -> None:
    assert findings(TlsProbe(8883, "TLSv1.3", info(20), None, None)) == {
        "cert_expiring": Severity.MEDIUM}
    assert findings(TlsProbe(8883, "TLSv1.3", info(3), None, None)) == {
        "cert_expiring": Severity.HIGH}


def test_verification_failures() -> None:
    c = info(200)
    assert findings(TlsProbe(8883, "TLSv1.3", c, "self-signed certificate", 18)) == {
        "cert_self_signed": Severity.MEDIUM}
    assert findings(TlsProbe(8883, "TLSv1.3", c, "unable to get local issuer certificate",
                             20)) == {"cert_invalid": Severity.HIGH}
    expired = info(-5)
    assert findings(TlsProbe(8883, "TLSv1.3", expired, "certificate has expired", 10)) == {
        "cert_invalid": Severity.HIGH}
