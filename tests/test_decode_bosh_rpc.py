from __future__ import annotations

import orjson
import pytest
from tests.fixtures.decode_samples import AGENT, REPLY_SUBJECT, decode, seed

from bustap.decode._util import REDACTED, is_secret_key, redact, redact_text, redact_url

REQ = f"agent.{AGENT}"


def nats(topic: str, payload: bytes) -> dict:
    return decode(topic, payload, protocol="nats")


def test_seed_get_state() -> None:
    rec = nats(REQ, seed("bosh/rpc_get_state.json"))
    assert "decode_error" not in rec
    assert (rec["decoder"], rec["device"], rec["event"]) == ("bosh-rpc", AGENT, "get_state")
    f = rec["fields"]
    assert f["arguments"] == ["full"]
    assert f["protocol"] == 3
    assert f["reply_to"] == ("director.603ed0d3-9052-4d67-b17a-e6e83b1c5c82."
                             f"{AGENT}.03f9b923-9b6b-4e7b-846e-955ed130c43f")
    assert f["request_id"] == "03f9b923-9b6b-4e7b-846e-955ed130c43f"
    assert f["summary"] == "get_state(full)"
    assert rec["severity"] == "info"


def test_seed_ssh_setup_redacts_public_key() -> None:
    raw = seed("bosh/rpc_ssh_setup.json")
    rec = nats(REQ, raw)
    assert rec["event"] == "ssh"
    assert rec["fields"]["risk"] == "high"
    assert rec["severity"] == "notice"
    args = rec["fields"]["arguments"]
    assert args[0] == "setup"
    assert args[1] == {"public_key": REDACTED, "user": "bosh_dbcc937caee0496"}
    assert rec["payload"]["arguments"][1]["public_key"] == REDACTED
    assert "ssh-rsa" not in orjson.dumps(rec).decode()


def test_seed_ssh_cleanup() -> None:
    rec = nats(REQ, seed("bosh/rpc_ssh_cleanup.json"))
    assert rec["fields"]["arguments"] == ["cleanup", {"user_regex": "^bosh_dbcc937caee0496"}]
    assert rec["fields"]["summary"] == "ssh(cleanup, {user_regex})"


def test_seed_fetch_logs_signed_url_query_is_dropped() -> None:
    rec = nats(REQ, seed("bosh/rpc_fetch_logs.json"))
    assert rec["event"] == "fetch_logs_with_signed_url"
    arg = rec["fields"]["arguments"][0]
    assert arg["signed_url"] == ("https://<IP address>:25250/signed/48/"
                                 f"e228159d-c185-43e4-b67c-363d5f50b075?{REDACTED}")
    assert arg["log_type"] == "job"
    text = orjson.dumps(rec).decode()
    assert "Q39rHu4YXJRBogtE3o9LV1fh3d9HAWm26cC_YBUJPEk" not in text


def test_update_settings_secrets_never_in_the_record() -> None:
    rec = nats(REQ, seed("bosh/rpc_update_settings.json"))
    text = orjson.dumps(rec).decode()
    for secret in ("SECRETKEYDATA", "hashedsecretpw", "davpassword", "blobsecret"):
        assert secret not in text
    assert "MIID" in text  # certificates are public and stay
    assert rec["fields"]["risk"] == "high"


def test_seed_director_reply_is_truncated_json() -> None:
    rec = nats(REPLY_SUBJECT, seed("bosh/director_reply_truncated.json"))
    assert rec["decode_error"].startswith("bosh-rpc: payload is not JSON")
    assert rec["format"] == "text"
    assert rec["payload"].startswith('{"value":{"properties"')


def test_reply_value_and_exception() -> None:
    rec = nats(REPLY_SUBJECT, seed("bosh/director_reply_ping.json"))
    assert (rec["decoder"], rec["event"], rec["severity"]) == ("bosh-rpc", "reply", "info")
    assert rec["device"] == "d98ef019-9534-48e2-895b-cc35816bdac1"
    assert rec["fields"]["value"] == "pong"
    assert rec["fields"]["request_id"] == "3a5036df-2509-480c-9fcf-4fba634a00e5"
    rec = nats(REPLY_SUBJECT, seed("bosh/director_reply_exception.json"))
    assert (rec["event"], rec["severity"]) == ("exception", "error")
    assert rec["fields"]["exception"].startswith("Action Failed get_task")


def test_reply_with_state_is_flattened() -> None:
    body = {"value": {"job_state": "running", "agent_id": AGENT, "job": {"name": "ha_proxy",
            "templates": [{"name": "bpm"}]}, "properties": {"password": "hunter2"}}}
    rec = nats(REPLY_SUBJECT, orjson.dumps(body))
    f = rec["fields"]
    assert f["value.job_state"] == "running"
    assert f["value.job.name"] == "ha_proxy"
    assert f["summary"] == "reply: job_state running"
    assert "hunter2" not in orjson.dumps(rec).decode()


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    (REQ, b'{"protocol":3,"arguments":[]}', "method"),
    (REQ, b'{"method":"ssh","arguments":{"a":1}}', "arguments"),
    (REQ, b'{"method":"ping","reply_to":7}', "reply_to"),
    (REQ, b'"ping"', "not an object"),
    (REPLY_SUBJECT, b'{"other":1}', "neither"),
])
def test_wrong_shape(topic: str, payload: bytes, reason: str) -> None:
    rec = nats(topic, payload)
    assert rec["decode_error"].startswith("bosh-rpc: ")
    assert reason in rec["decode_error"]
    assert "event" not in rec


def test_truncated_request_keeps_no_secret() -> None:
    body = seed("bosh/rpc_update_settings.json")[:400]
    rec = nats(REQ, body)
    assert rec["decode_error"].startswith("bosh-rpc: ")
    assert "SECRETKEYDATA" not in rec["payload"]
    assert rec["payload"].startswith('{"protocol":3,"method":"update_settings"')


def test_invalid_utf8_request_is_text_without_secrets() -> None:
    rec = nats(REQ, b'\xff{"password": "hunter2", "x": 1')
    assert rec["format"] == "text"
    assert "hunter2" not in rec["payload"]


def test_not_claimed() -> None:
    assert nats("agent.inbox.x.y", b'{"method":"x"}')["decoder"] == "json"
    assert nats("director.a.b.c.d", b'{"value":1}')["decoder"] == "json"


@pytest.mark.parametrize(("name", "secret"), [
    ("password", True), ("private_key", True), ("public_key", True), ("api-token", True),
    ("clientSecret", True), ("key", True), ("user", False), ("keyboard", False),
    ("monkey", False), ("certificate", False), ("user_regex", False)])
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_key(name) is secret


def test_redact_helpers() -> None:
    assert redact_url("https://u:p@h:1/x?sig=1") == f"https://{REDACTED}@h:1/x?{REDACTED}"
    assert redact_url("https://h/x") == "https://h/x"
    assert redact({"a": [{"token": "t"}], "b": None, "password": ""}) == {
        "a": [{"token": REDACTED}], "b": None, "password": ""}
    assert redact_text('{"password": "x\\"y", "ok": "z"}') == \
        f'{{"password":"{REDACTED}", "ok": "z"}}'


def test_oversize_request_is_kept_without_secrets() -> None:
    from bustap.decode import MAX_PARSE_BYTES

    body = (b'{"method":"update_settings","arguments":[{"password":"hunter2","blob":"'
            + b"x" * MAX_PARSE_BYTES + b'"}]}')
    rec = nats(REQ, body)
    assert rec["decode_error"].startswith("bosh-rpc: payload of")
    assert rec["format"] == "text"
    assert "hunter2" not in rec["payload"]
