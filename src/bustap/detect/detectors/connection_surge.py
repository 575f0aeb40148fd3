"""Connections far above normal: open connections per address, per listener
and per broker, and new connections per address and bucket. SlowITe (the
slow DoS of hundreds of idle connections held open with a long keepalive)
and connection floods (mqtt-malaria, MQTTSA) both show here, from the
broker's log (``New connection`` / ``New client connected`` /
disconnections), the NATS monitoring endpoint's ``/connz`` and the
connection counts of ``$SYS`` and ``/varz``.

The open count is checked on every connection, so the alert comes with the
connection that crosses the mark: ``max(min_open, factor x baseline,
baseline + deviations x deviation)``; the baselines (robust EWMA, sampled
once a ``bucket_secs``) do not move while a surge lasts, and the alert
resolves once the count is under half the mark. Per listener and per broker
it fires only when no single address explains the surge (one attack, one
alert)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from ...record import Record
from .. import register_detector
from ..base import Clear, Context, Detector, Finding, Hit, Keyed
from ._baseline import Buckets, Ewma, alpha_of

OPEN = frozenset({"connection_opened", "client_connected"})
CLOSE = frozenset({"client_disconnected", "auth_failed", "connect_refused"})
MAX_PER_ADDRESS = 200_000
LONG_KEEPALIVE = 600


class _Surge:
    """One measure (the open connections of an address...): its baseline
    and whether it fires."""

    __slots__ = ("base", "firing", "mark")

    def __init__(self, base: Ewma | None = None) -> None:
        self.base = base or Ewma()
        self.firing = False
        self.mark = 0.0


@register_detector
class ConnectionSurge(Detector):
    id = "connection_surge"
    title = "connections far above normal (SlowITe, connection flood)"
    events = OPEN | CLOSE | {"broker_stats"}
    sticky = True  # resolved when the count is back under half the mark
    params = {"min_open": 50, "min_new": 100, "factor": 5.0, "deviations": 6.0,
              "bucket_secs": 10.0, "half_life_buckets": 60.0}
    min_open: int
    min_new: int
    factor: float
    deviations: float
    bucket_secs: float
    half_life_buckets: float

    def __init__(self, ctx: Context, **params: Any) -> None:
        super().__init__(ctx, **params)
        # address -> connection id -> (keepalive, listener port)
        self.open: Keyed[dict[str, tuple[int, int]]] = Keyed(ctx.max_keys)
        self.listeners: Counter[int] = Counter()
        self.new: Counter[str] = Counter()  # new connections this bucket, per address
        self.evidence: Keyed[list[int]] = Keyed(ctx.max_keys)
        self.surges: Keyed[_Surge] = Keyed(ctx.max_keys * 2)
        self.totals: dict[tuple[str, str], tuple[int, int]] = {}  # this bucket's last count
        self.hot: set[str] = set()  # per-address surges that fire
        self.buckets = Buckets(self.bucket_secs)
        self.alpha = alpha_of(self.half_life_buckets)

    # --- per event ---------------------------------------------------------------------

    def feed(self, rec: Record, t: float) -> list[Finding]:
        out = self._roll(t)
        ev = rec.get("event")
        if ev == "broker_stats":
            self._stats(rec)
            return out
        addr = rec.get("address")
        if not isinstance(addr, str) or not addr:
            return out
        port = rec.get("port")
        cid = f"{addr}:{port}" if isinstance(port, int) else f"{rec.get('source')}/" \
            f"{rec.get('client_id')}"
        if ev in CLOSE:
            conns = self.open.get(addr)
            if conns is not None and (held := conns.pop(cid, None)) is not None:
                if held[1] >= 0:
                    self.listeners[held[1]] -= 1
                self._closed(addr, len(conns), t, out)
            return out
        conns = self.open.touch(addr, dict)
        ka = rec.get("keepalive")
        lport = rec.get("listener_port")
        if cid in conns:
            if isinstance(ka, int):  # the CONNECT after the accept: now its keepalive
                conns[cid] = (ka, conns[cid][1])
            return out
        if len(conns) >= MAX_PER_ADDRESS:
            return out
        conns[cid] = (ka if isinstance(ka, int) else -1, lport if isinstance(lport, int) else -1)
        if isinstance(lport, int):
            self.listeners[lport] += 1
        self.new[addr] += 1
        seqs = self.evidence.touch(addr, list)
        if isinstance(seq := rec.get("seq"), int):
            seqs.append(seq)
            if len(seqs) > 20:
                del seqs[0]
        if self.ctx.learning(t):
            return out
        src = str(rec.get("source") or "")
        # one attack, one alert: connections held open, or a churn of new ones
        opened = self._surge(f"address={addr},connections=open", self.min_open)
        churn = self._surge(f"address={addr},connections=new", self.min_new)
        if opened.firing or churn.firing:
            return out
        if len(conns) >= opened.mark:
            opened.firing = True
            self.hot.add(f"address={addr},connections=open")
            long = sum(1 for k, _ in conns.values() if k >= LONG_KEEPALIVE)
            idle = f", {long} with a keepalive of {LONG_KEEPALIVE}s or more" if long else ""
            out.append(Hit(f"address={addr},connections=open",
                           {"address": addr, "connections": "open"}, addr,
                           f"{len(conns)} connections open from {addr} (normally "
                           f"{opened.base.mean:.0f}){idle}", list(seqs), t, src, len(conns)))
        elif self.new[addr] >= churn.mark:
            churn.firing = True
            self.hot.add(f"address={addr},connections=new")
            out.append(Hit(f"address={addr},connections=new",
                           {"address": addr, "connections": "new"}, addr,
                           f"{self.new[addr]} new connections from {addr} within "
                           f"{self.bucket_secs:g}s (normally {churn.base.mean:.0f})",
                           list(seqs), t, src, self.new[addr],
                           since=self.buckets.start or None))
        return out

    def _closed(self, addr: str, n: int, t: float, out: list[Finding]) -> None:
        key = f"address={addr},connections=open"
        s = self.surges.get(key)
        if s is not None and s.firing and n < s.mark / 2:
            s.firing = False
            self.hot.discard(key)
            out.append(Clear(key, t))

    def _stats(self, rec: Record) -> None:
        """A broker's own count ($SYS, /varz): judged at the end of the bucket,
        when the connections behind it have been counted per address."""
        n = rec.get("clients_connected", rec.get("connections"))
        if isinstance(n, int):
            seq = rec.get("seq")
            self.totals[(str(rec.get("broker") or "broker"), str(rec.get("source") or ""))] = (
                n, seq if isinstance(seq, int) else -1)

    def _judge_totals(self, t: float, quiet: bool, out: list[Finding]) -> None:
        for (broker, src), (n, seq) in self.totals.items():
            def hit(s: _Surge, key: str, broker: str = broker, src: str = src, n: int = n,
                    seq: int = seq) -> Hit:
                return Hit(key, {"broker": broker, "source": src}, broker,
                           f"{broker}: {n} clients connected (normally {s.base.mean:.0f})",
                           [seq] if seq >= 0 else [], t, src, n)

            self._judge(f"broker={broker},source={src}", n, quiet, t, out, hit)
        self.totals.clear()

    def _judge(self, key: str, n: int, quiet: bool, t: float, out: list[Finding],
               hit: Callable[[_Surge, str], Hit]) -> None:
        """A count of open connections against its learned mark: fire when
        over it (and ``quiet``), clear under half of it, else learn."""
        s = self._surge(key, self.min_open)
        if s.firing:
            if n < s.mark / 2:
                s.firing = False
                out.append(Clear(key, t))
        elif quiet and n >= s.mark:
            s.firing = True
            out.append(hit(s, key))
        else:
            self._learn(s, n, self.min_open)

    # --- baselines ---------------------------------------------------------------------

    def _surge(self, key: str, floor: int) -> _Surge:
        s = self.surges.get(key)
        if s is None:
            s = _Surge()
            s.mark = floor
            self.surges.put(key, s)
        else:
            self.surges.move_to_end(key)
        return s

    def _address_firing(self) -> bool:
        return any(self.surges[k].firing for k in self.hot if k in self.surges)

    def _learn(self, s: _Surge, n: float, floor: int) -> None:
        s.base.update(n, self.alpha, floor=max(0.1 * s.base.mean, 1.0))
        s.mark = max(floor, self.factor * s.base.mean,
                     s.base.mean + self.deviations * s.base.dev)

    def _roll(self, t: float) -> list[Finding]:
        out: list[Finding] = []
        if not self.buckets.due(t, limit=1):
            return out
        new, self.new = self.new, Counter()
        for addr, conns in self.open.items():
            s = self._surge(f"address={addr},connections=open", self.min_open)
            if not s.firing:
                self._learn(s, len(conns), self.min_open)
            s = self._surge(f"address={addr},connections=new", self.min_new)
            if s.firing and new[addr] < s.mark / 2:
                s.firing = False
                self.hot.discard(f"address={addr},connections=new")
                out.append(Clear(f"address={addr},connections=new", t))
            elif not s.firing:
                self._learn(s, new[addr], self.min_new)
        # per listener once a bucket: by then an address behind it has fired
        quiet = not self.ctx.learning(t) and not self._address_firing()
        for lport, n in list(self.listeners.items()):
            def hit(s: _Surge, key: str, lport: Any = lport, n: int = n) -> Hit:
                addrs = sum(1 for c in self.open.values()
                            if any(v[1] == lport for v in c.values()))
                return Hit(key, {"listener_port": lport}, f"port {lport}",
                           f"{n} connections open on port {lport} from {addrs} "
                           f"addresses (normally {s.base.mean:.0f})", [], t)

            self._judge(f"listener_port={lport}", n, quiet, t, out, hit)
        self._judge_totals(t, quiet, out)
        return out

    def tick(self, now: float) -> list[Finding]:
        return self._roll(now)

    # --- state ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {"surges": {k: [*s.base.dump(), s.firing, s.mark] for k, s in self.surges.items()},
                "open": {a: [[c, *v] for c, v in conns.items()]
                         for a, conns in self.open.items() if conns}}

    def restore(self, state: dict[str, Any]) -> None:
        for k, v in (state.get("surges") or {}).items():
            if isinstance(v, list) and len(v) == 5:
                s = _Surge(Ewma.load(v[:3]))
                s.firing, s.mark = bool(v[3]), float(v[4])
                self.surges.put(str(k), s)
                if s.firing and str(k).startswith("address="):
                    self.hot.add(str(k))
        for addr, conns in (state.get("open") or {}).items():
            d = self.open.touch(str(addr), dict)
            for c, ka, lp in conns:
                d[str(c)] = (int(ka), int(lp))
                if lp >= 0:
                    self.listeners[int(lp)] += 1
