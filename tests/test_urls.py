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


def test_nats_url_names_several_servers_with_credentials_once() -> None:
    url = parse_url("nats://tok3n@n0:4222,n1:4223,[::1]/x?subject=a,b",
                    default_ports={"nats": 4222})
    assert url.hosts == (("n0", 4222), ("n1", 4223), ("::1", 4222))
    assert (url.host, url.port, url.username, url.path) == ("n0", 4222, "tok3n", "/x")
    assert url.params("subject") == ["a,b"]  # a comma after the authority is not a server
    assert url.redacted == "nats://n0:4222,n1:4223,[::1]/x?subject=a,b"
    js = parse_url("JetStream://u:p%40ss@127.0.0.1:1,127.0.0.2:2/TAPS")
    assert (js.scheme, js.hosts, js.password) == ("jetstream", (("127.0.0.1", 1),
                                                                ("127.0.0.2", 2)), "p@ss")
    assert "p%40ss" not in js.redacted and "p@ss" not in js.redacted
    assert parse_url("tls://a,b").hosts == (("a", None), ("b", None))
    assert parse_url("mqtt://h:1883").hosts == (("h", 1883),)


@pytest.mark.parametrize(("raw", "says"), [
    ("mqtt://u:pw@h1:1883,h2:1883", "names several servers: only jetstream://, nats://, tls://"),
    ("mqtts://h1,h2", "names several servers"),
    ("nats://u:pw@h1,,h2", "an empty server in its list"),
    ("nats://h1:4222,", "an empty server in its list"),
    ("nats://h1,h2:port", "server 'h2:port'"),
    ("nats://h1,h2/x,h3", None),  # a comma in the path: one server, path "/x,h3"
])
def test_server_lists_outside_nats_or_malformed_are_config_errors(raw: str,
                                                                  says: str | None) -> None:
    if says is None:
        assert parse_url(raw).hosts == (("h1", None), ("h2", None))
        return
    with pytest.raises(ConfigError) as info:
        parse_url(raw)
    assert says in str(info.value)
    assert "pw" not in str(info.value)


def test_postgres_host_lists_are_left_to_libpq() -> None:
    url = parse_url("postgresql://u@db1,db2/telemetry")
    assert url.raw == "postgresql://u@db1,db2/telemetry" and url.path == "/telemetry"
