from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import run_bustap

from bustap import config
from bustap.errors import ConfigError


def _sample(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BUSTAP_MQTT_PASSWORD", "from-env")
    monkeypatch.setenv("BUSTAP_JET_PASSWORD", "jet-from-env")
    return config.SAMPLE


def test_sample_config_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config.parse(_sample(monkeypatch))
    assert cfg.name == "tap1"
    assert [s.url.scheme for s in cfg.sources] == ["mqtt", "tls", "file"] + ["mqtt"] * 200
    assert cfg.sources[-1].name == "mqtt://rtr-200.example.net:1883"
    assert cfg.sources[-1].options.password == "jet-from-env"
    mqtt = cfg.sources[0]
    assert mqtt.options.filters == ["/junos/events/#", "sensors/#"]
    assert mqtt.options.password == "from-env" and mqtt.options.qos == 1
    assert len(cfg.decoders.rules) == 1 and cfg.workers == 0
    import pickle

    pickle.dumps(cfg.decoders.config)  # what worker processes are built from
    assert [type(s).__name__ for s in cfg.sinks]


@pytest.mark.parametrize(("text", "needle"), [
    ('[[source]]\nurl = "mqtt://h"\ntopicz = ["a"]', "unknown key 'topicz'"),
    ('[[source]]\nurl = "mqtt://h"\nqos = "1"', "source[0].qos: expected a number"),
    ('[[source]]\nurl = "mqtt://h"\npassword = 5', "***"),
    ('[[source]]\nurl = "mqtt://h"\ntopics = ["a/#/b"]', "invalid MQTT filter 'a/#/b'"),
    ('[[source]]\nurl = "mqtt://h"\npassword_env = "NOPE_NOT_SET"', "'NOPE_NOT_SET' is not set"),
    ('name = "x"', "no [[source]]"),
    ('[[source]]\nurl = "mqtt://h"\n[[decode.rules]]\nfilter = "a/#"\ndecoder = "nope"',
     "nope"),
    ("[[source]\n", "not valid TOML"),
    ('workers = -1\n[[source]]\nurl = "mqtt://h"', "workers must be an integer 0..64"),
    ('[[source]]\nurl = "mqtt://h"\n[[sink]]\nurl = "nosuch://x"', "unknown sink"),
])
def test_bad_configs_name_the_bad_value(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.parse(text)
    assert needle in str(info.value)


def test_config_check_and_sample_commands(tmp_path: Path) -> None:
    sample = run_bustap("config", "sample")
    assert sample.returncode == 0 and "[[source]]" in sample.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[[source]]\nurl = "mqtt://h"\npassword = "hunter2"\nqoss = 1\n')
    res = run_bustap("config", "check", str(bad))
    assert res.returncode == 2 and "unknown key 'qoss'" in res.stderr
    assert "hunter2" not in res.stderr
