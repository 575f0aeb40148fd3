"""The errors bustap raises.

    BustapError               root; ``exit_code`` is what the CLI returns
     +-- ConfigError          bad flag, URL, filter or config value (exit 2)
     +-- ConnectError         a broker or server refused or could not be reached (exit 2)
     +-- DecodeError          a payload or log line did not have the expected shape
     +-- SinkError            a sink could not write

Every error carries the bad value (``value``) and, where there is one, the
component it belongs to. Messages never contain passwords: URLs are passed
through :func:`bustap.urls.redact` before they reach an error.
"""

from __future__ import annotations


class BustapError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, value: object = None) -> None:
        super().__init__(message)
        self.value = value


class ConfigError(BustapError):
    exit_code = 2


class ConnectError(BustapError):
    """A broker refused us or could not be reached.

    ``broker`` is the redacted URL; ``fatal`` is True when retrying cannot help
    (bad credentials, failed certificate verification).
    """

    exit_code = 2

    def __init__(self, broker: str, reason: str, *, fatal: bool = False) -> None:
        super().__init__(f"{broker}: {reason}", value=broker)
        self.broker = broker
        self.reason = reason
        self.fatal = fatal


class DecodeError(BustapError):
    def __init__(self, decoder: str, reason: str, *, value: object = None) -> None:
        super().__init__(f"{decoder}: {reason}", value=value)
        self.decoder = decoder
        self.reason = reason


class SinkError(BustapError):
    def __init__(self, sink: str, reason: str) -> None:
        super().__init__(f"{sink}: {reason}", value=sink)
        self.sink = sink
        self.reason = reason
