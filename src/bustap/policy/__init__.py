"""Permission files of the brokers, decided as the brokers decide them:
nats-server authorization (:mod:`.nats_conf`) and Mosquitto's acl_file
(:mod:`.mosquitto_acl`); :mod:`.check` holds them against stored traffic."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .model import Action, Breadth, Decision, Grant, Policy

KINDS = ("auto", "nats", "mosquitto")


def detect_kind(path: str | Path) -> str:
    """``nats`` for a nats-server config, ``mosquitto`` for an acl_file or a
    mosquitto.conf: by the first meaningful word of the file."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", value=str(path)) from exc
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith(("#", "//")):
            continue
        if words[0] in ("topic", "pattern", "user", "acl_file", "password_file", "listener",
                        "allow_anonymous", "per_listener_settings", "persistence", "log_dest",
                        "log_type", "include_dir", "bind_address", "sys_interval", "pid_file"):
            return "mosquitto"
        return "nats"
    raise ConfigError(f"{path} is empty: no policy to read", value=str(path))


def load_policy(path: str | Path, *, kind: str = "auto",
                password_file: str | Path | None = None) -> Policy:
    if kind == "auto":
        kind = detect_kind(path)
    if kind == "nats":
        from .nats_conf import NatsPolicy

        if password_file is not None:
            raise ConfigError("--password-file is for Mosquitto ACL files", value=password_file)
        return NatsPolicy.load(path)
    if kind == "mosquitto":
        from .mosquitto_acl import MosquittoPolicy

        return MosquittoPolicy.load(path, password_file=password_file)
    raise ConfigError(f"unknown policy kind {kind!r} (nats or mosquitto)", value=kind)


__all__ = ["KINDS", "Action", "Breadth", "Decision", "Grant", "Policy", "detect_kind",
           "load_policy"]
