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
    # [detect] and [[rule]]: the alert engine's settings and a user rule
    assert cfg.detect.disable == ["new_client"] and cfg.detect.learn_secs == 600
    assert cfg.detect.detectors["auth_failure_burst"] == {"count": 5, "within_secs": 60}
    assert [r.id for r in cfg.detect.rules] == ["disk_full"]


def test_bad_detect_section_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _sample(monkeypatch).replace('severity = "warning"\nsummary',
                                        'severity = "loud"\nsummary')
    with pytest.raises(ConfigError, match="rule 'disk_full': severity"):
        config.parse(text)


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


def test_every_sink_sample_makes_a_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commented [[sink]] blocks of the sample, uncommented, are valid sinks."""
    monkeypatch.setenv("BUSTAP_AMQP_PASSWORD", "p@ss/word")
    lines = [line[2:] for line in config.SAMPLE.splitlines()
             if line.startswith(("# [[sink]]", "# url = ", "# password_env = "))]
    cfg = config.parse('[[source]]\nurl = "mqtt://h"\n' + "\n".join(lines))
    schemes = [s.url.scheme for s in cfg.sinks]
    assert schemes == ["amqp", "jetstream", "nats", "mqtts", "tcp"]
    amqp = cfg.sinks[0]
    assert amqp.url.username == "bustap" and amqp.url.password == "p@ss/word"
    assert "p@ss" not in amqp.name and "word" not in amqp.name


def test_sink_password_env_must_be_set() -> None:
    with pytest.raises(ConfigError, match="'NOPE_NOT_SET' is not set"):
        config.parse('[[source]]\nurl = "mqtt://h"\n[[sink]]\nurl = "amqp://u@h/"\n'
                     'password_env = "NOPE_NOT_SET"')
    with pytest.raises(ConfigError, match="names no user"):
        config.parse('[[source]]\nurl = "mqtt://h"\n[[sink]]\nurl = "amqp://h/"\n'
                     'password_env = "HOME"')


def test_the_readme_reference_is_the_sample() -> None:
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("readme_config",
                                                  root / "scripts" / "readme_config.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (root / "README.md").read_text()
    assert module.render(readme) == readme, "run scripts/readme_config.py"
