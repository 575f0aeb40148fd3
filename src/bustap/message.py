"""One bus message as received, before decoding: what every bus source yields
and what the decoders read."""

from __future__ import annotations

from typing import Any


class Message:
    __slots__ = ("ack_id", "dup", "headers", "payload", "properties", "protocol", "qos",
                 "received", "reply", "retain", "topic")

    def __init__(self, protocol: str, topic: str, payload: bytes, received: float,
                 qos: int | None = None, retain: bool | None = None, dup: bool | None = None,
                 reply: str | None = None, headers: dict[str, Any] | None = None,
                 properties: dict[str, Any] | None = None, ack_id: int = 0) -> None:
        self.protocol = protocol
        self.topic = topic
        self.payload = payload
        self.received = received
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.reply = reply
        self.headers = headers
        self.properties = properties
        self.ack_id = ack_id  # MQTT packet id, for PUBACK/PUBREC after storing

    def __repr__(self) -> str:
        return f"Message({self.protocol}, {self.topic!r}, {len(self.payload)} bytes)"
