"""What ``new_client`` and ``new_address`` share: a set of values seen,
bounded, kept across restarts, quiet while the engine learns."""

from __future__ import annotations

from typing import Any

from ...record import Record
from ..base import Context, Detector, Finding, Keyed
from ._login import Logins


class NewValue(Detector):
    severity = "info"
    what = ""
    accepted_only = False

    def __init__(self, ctx: Context, **params: Any) -> None:
        super().__init__(ctx, **params)
        self.seen: Keyed[bool] = Keyed(ctx.max_keys * 10)
        # values from logins: only the ones the broker accepted
        self.logins = Logins(ctx.max_keys) if self.accepted_only else None

    def value(self, rec: Record) -> str | None:
        raise NotImplementedError

    def feed(self, rec: Record, t: float) -> list[Finding]:
        if self.logins is not None:
            login = self.logins.feed(rec, t)
            if login is None:
                return []
            rec, t = login
        value = self.value(rec)
        if not value:
            return []
        if value in self.seen:
            self.seen.move_to_end(value)
            return []
        self.seen.put(value, True)
        if self.ctx.learning(t):
            return []
        return [self.hit(rec, t, {self.what: value}, self.describe(rec, value),
                         subject=value)]

    def describe(self, rec: Record, value: str) -> str:
        return f"new {self.what} {value}"

    def state(self) -> dict[str, Any]:
        return {"seen": list(self.seen)}

    def restore(self, state: dict[str, Any]) -> None:
        for v in state.get("seen", []):
            if isinstance(v, str):
                self.seen.put(v, True)
