"""bustap: tap MQTT and NATS buses and broker logs for network and IoT telemetry."""

from __future__ import annotations

from .errors import BustapError, ConfigError, ConnectError, DecodeError, SinkError
from .message import Message
from .record import Record, Writer

__version__ = "0.1.0"

__all__ = ["BustapError", "ConfigError", "ConnectError", "DecodeError", "Message", "Record",
           "SinkError", "Writer", "__version__"]
