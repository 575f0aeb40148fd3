"""Secret detection in retained payloads: what is found, and that a hint
never contains the secret itself."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bustap.audit.secrets import find_secrets, is_secret_name


def kinds(payload: str | bytes) -> set[str]:
    data = payload.encode() if isinstance(payload, str) else payload
    return {h.kind for h in find_secrets(data)}


@pytest.mark.parametrize(("payload", "kind"), [
    ('{"host": "db1", "password": "hunter2-secret"}', "password"),
    ('{"db": {"credentials": {"passwd": "x9x9x9"}}}', "password"),
    ("user=app password=hunter2 host=db1", "password"),
    ("DB_PASS: s3cr3t!", "password"),
    ('{"api_key": "k-12345678"}', "token"),
    ('{"clientSecret": "abcdefgh"}', "token"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----",
     "private_key"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn...", "private_key"),
    ("auth eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyMSJ9.c2lnbmF0dXJlLXZhbHVl", "jwt"),
    ("AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
    ("SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU", "nkey_seed"),
    ("forward to mqtt://bridge:brPass99@upstream.example:1883", "url_credentials"),
    ("contact: jane.doe@example.com", "email"),
    ("Authorization: Bearer abcdefghijklmnop1234", "bearer_token"),
])
def test_finds(payload: str, kind: str) -> None:
    assert kind in kinds(payload)


@pytest.mark.parametrize("payload", [
    "21.5", '{"temperature": 21.5, "unit": "C"}', '{"password": ""}',
    '{"password": "<redacted>"}', '{"public_key": "ssh-ed25519 AAAAC3Nza"}',
    '{"token_expires_at": "2026-01-01"}', "passenger count=4", b"\xff\xfe\x00binary",
    '{"key": "sensor-1"}',
])
def test_ignores(payload: str | bytes) -> None:
    assert kinds(payload) == set()


def test_url_credentials_are_not_also_an_email() -> None:
    assert kinds("mqtt://bridge:brPass99@upstream.example.com") == {"url_credentials"}


def test_hints_say_where_not_what() -> None:
    hits = find_secrets(json.dumps({"db": {"password": "hunter2-secret"},
                                    "mail": "jane.doe@example.com"}).encode())
    hints = " ".join(h.hint for h in hits)
    assert "db.password" in hints and "(14 chars)" in hints
    assert "hunter2" not in hints and "jane.doe" not in hints and "example.com" in hints


def test_names() -> None:
    assert is_secret_name("mqtt_password") and is_secret_name("accessKey")
    assert not is_secret_name("publicKey") and not is_secret_name("bypass")


# "S3" first: no fixed word of a hint ("password in a URL"...) can contain the secret
_secret = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                         exclude_characters="\"'\\&,;{}/"),
                  min_size=6, max_size=40).map(lambda s: "S3" + s)


@given(_secret, st.sampled_from(["password", "token", "api_key", "secret", "db_pass"]),
       st.sampled_from(["json", "kv", "url"]))
def test_a_hint_never_holds_the_secret(secret: str, key: str, shape: str) -> None:
    if shape == "json":
        payload = json.dumps({"cfg": {key: secret}})
    elif shape == "kv":
        payload = f"{key}={secret}"
    else:
        payload = f"amqp://user:{secret.replace('@', 'a').replace('/', 'b')}@host"
        secret = secret.replace("@", "a").replace("/", "b")
    hits = find_secrets(payload.encode())
    assert hits
    for hit in hits:
        assert secret not in str(hit)


@given(st.binary(max_size=512))
def test_any_bytes_are_scanned_without_error(data: bytes) -> None:
    find_secrets(data)
