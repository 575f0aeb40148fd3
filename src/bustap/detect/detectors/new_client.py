"""A client never seen before (after learning): seed 001's "new clients"
tag. Clients are named by what is steady about them (NATS connection name,
a client id that is not made up per connection, the user name)."""

from __future__ import annotations

from ...record import Record
from .. import register_detector
from ..base import where_from, who
from ._login import EVENTS
from ._novelty import NewValue


@register_detector
class NewClient(NewValue):
    id = "new_client"
    title = "a client never seen before"
    events = EVENTS
    what = "client"
    accepted_only = True

    def value(self, rec: Record) -> str | None:
        return who(rec)

    def describe(self, rec: Record, value: str) -> str:
        user = rec.get("username")
        as_user = f" as {user}" if user and user != value else ""
        return f"new client {value}{as_user}{where_from(rec)}"
