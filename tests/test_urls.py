from __future__ import annotations

import pytest

from bustap.errors import ConfigError
from bustap.urls import parse_url, redact


@pytest.mark.parametrize(("raw", "shown"), [
    ("mqtt://alice:s3cret@h:1883", "mqtt://h:1883"),
    ("nats://TOKEN123@h:4222", "nats://h:4222"),
    ("postgresql://u:pw@db/test?sslmode=require&password=x", "postgresql://db/test?sslmode=require&password=***"),
    ("mqtt://h", "mqtt://h"),
    ("-", "-"),
])
def test_redact_removes_credentials(raw: str, shown: str) -> None:
    assert redact(raw) == shown


def test_parse_url_keeps_credentials_out_of_repr() -> None:
    url = parse_url("mqtt://alice:s%40cret@h:1884/?t=a/%23&t=b")
    assert (url.username, url.password, url.port) == ("alice", "s@cret", 1884)
    assert url.params("t") == ["a/#", "b"]
    assert "cret" not in repr(url) and "cret" not in url.redacted


def test_bad_url_is_a_config_error_without_password() -> None:
    with pytest.raises(ConfigError) as info:
        parse_url("mqtt://u:pw@h:notaport")
    assert "pw" not in str(info.value)
    with pytest.raises(ConfigError):
        parse_url("localhost:1883")
