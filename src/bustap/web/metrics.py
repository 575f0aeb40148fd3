"""``/metrics`` in the Prometheus text format (prometheus-client).

Inside ``bustap run`` the pipeline's own counters (received, written,
dropped by reason, errors, per source, queue depth, spooled; the same per
component as ``bustap_component_*{component, name}``) and the
per-topic counters of :class:`TopicCounter` are exported as they are.
``bustap serve`` alone has no pipeline: it exports gauges read from the
store at scrape time (records, messages and bytes per source, messages per
topic, alerts by rule and state). Topic labels are capped (``max_topics``):
the rest is summed under ``topic="__other__"`` so a bus with a million
subjects cannot blow up a Prometheus server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ..record import Record
from ..store.backend import Store
from ..store.schema import TABLE

if TYPE_CHECKING:
    from ..pipeline import Pipeline

MAX_TOPICS = 200
OTHER = "__other__"


class TopicCounter:
    """A pipeline processor: messages and bytes per topic, at most
    ``max_topics`` labels (later topics count under ``__other__``)."""

    def __init__(self, max_topics: int = MAX_TOPICS) -> None:
        self.max_topics = max_topics
        self.messages: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()

    def __call__(self, records: list[Record]) -> None:
        for rec in records:
            if rec.get("kind") != "message":
                continue
            topic = str(rec.get("topic"))
            if topic not in self.messages and len(self.messages) >= self.max_topics:
                topic = OTHER
            self.messages[topic] += 1
            size = rec.get("size")
            self.bytes[topic] += size if isinstance(size, int) else 0


def pipeline_health(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline's counters plus what is waiting: queue depth, spooled records."""
    return pipeline.metrics()


#: per component counters (telemetry.py): metric name, key, help
_COMPONENT = (("received", "records received"), ("sent", "records sent on"),
              ("spooled", "records spooled to disk while the sink was down"),
              ("errors", "failed writes and payloads kept raw"))


def _components(h: dict[str, Any]) -> Iterator[Metric]:
    """bustap_component_*{component="source"|"sink", name=...}: one family per counter."""
    rows = [(kind, name, c) for kind in ("source", "sink")
            for name, c in h[f"{kind}s"].items()]
    for key, doc in _COMPONENT:
        family = CounterMetricFamily(f"bustap_component_{key}", doc,
                                     labels=["component", "name"])
        for kind, name, c in rows:
            family.add_metric([kind, name], c[key])
        yield family
    dropped = CounterMetricFamily("bustap_component_dropped", "records dropped, by reason",
                                  labels=["component", "name", "reason"])
    depth = GaugeMetricFamily("bustap_component_queue_depth", "what waits: batches in the "
                              "pipeline queue (source), records in the spool (sink)",
                              labels=["component", "name"])
    for kind, name, c in rows:
        for reason, n in sorted(c["dropped"].items()):
            dropped.add_metric([kind, name, reason], n)
        depth.add_metric([kind, name], c["queue_depth"])
    yield dropped
    yield depth


class BustapCollector(Collector):
    def __init__(self, *, open_store: Callable[[], Store] | None,
                 pipeline: Pipeline | None = None, topics: TopicCounter | None = None,
                 max_topics: int = MAX_TOPICS) -> None:
        self.open_store = open_store
        self.pipeline = pipeline
        self.topics = topics
        self.max_topics = max_topics

    def collect(self) -> Iterator[Metric]:
        if self.pipeline is not None:
            yield from self._pipeline(self.pipeline)
        if self.topics is not None:
            yield from self._topic_counters(self.topics)
        if self.open_store is not None:
            yield from self._store(self.open_store)

    def _pipeline(self, pipeline: Pipeline) -> Iterator[Metric]:
        h = pipeline_health(pipeline)
        for name, key, doc in (
                ("bustap_received", "received", "bus messages received"),
                ("bustap_records", "records", "records made (messages, events, alerts)"),
                ("bustap_written", "written", "records written to the sinks"),
                ("bustap_bytes_in", "bytes_in", "payload bytes received"),
                ("bustap_decode_errors", "decode_errors", "payloads kept raw")):
            yield CounterMetricFamily(name, doc, value=h[key])
        dropped = CounterMetricFamily("bustap_dropped", "records dropped, by reason",
                                      labels=["reason"])
        for reason, n in sorted(pipeline.counters.dropped.items()):
            dropped.add_metric([reason], n)
        yield dropped
        errors = CounterMetricFamily("bustap_errors", "errors, by code", labels=["code"])
        for code, n in sorted(pipeline.counters.errors.items()):
            errors.add_metric([code], n)
        yield errors
        per_source = CounterMetricFamily("bustap_source_messages", "messages per source",
                                         labels=["source"])
        for source, n in sorted(pipeline.counters.per_source.items()):
            per_source.add_metric([source], n)
        yield per_source
        yield GaugeMetricFamily("bustap_queue_depth", "batches waiting in the pipeline queue",
                                value=h["queue_depth"])
        yield GaugeMetricFamily("bustap_spooled", "records spooled to disk, not yet replayed",
                                value=h["spooled"])
        yield from _components(h)

    def _topic_counters(self, topics: TopicCounter) -> Iterator[Metric]:
        msgs = CounterMetricFamily("bustap_topic_messages", "messages per topic (capped)",
                                   labels=["topic"])
        size = CounterMetricFamily("bustap_topic_bytes", "payload bytes per topic (capped)",
                                   labels=["topic"])
        for topic in sorted(topics.messages):
            msgs.add_metric([topic], topics.messages[topic])
            size.add_metric([topic], topics.bytes[topic])
        yield msgs
        yield size

    def _store(self, open_store: Callable[[], Store]) -> Iterator[Metric]:
        try:
            store = open_store()
        except Exception:
            yield GaugeMetricFamily("bustap_store_up", "1 when the store could be read",
                                    value=0)
            return
        try:
            yield GaugeMetricFamily("bustap_store_up", "1 when the store could be read",
                                    value=1)
            yield from self._store_metrics(store)
        finally:
            store.close()

    def _store_metrics(self, store: Store) -> Iterator[Metric]:
        _, rows = store.execute(f"SELECT count(*) FROM {TABLE}")
        yield GaugeMetricFamily("bustap_store_records", "records in the store",
                                value=rows[0][0])
        msgs = GaugeMetricFamily("bustap_store_messages", "stored bus messages per source",
                                 labels=["source"])
        size = GaugeMetricFamily("bustap_store_bytes", "stored payload bytes per source",
                                 labels=["source"])
        _, rows = store.execute(
            f"SELECT source, count(*), coalesce(sum(size), 0) FROM {TABLE} "
            "WHERE kind = 'message' AND source IS NOT NULL GROUP BY source ORDER BY source")
        for source, n, nbytes in rows:
            msgs.add_metric([source], n)
            size.add_metric([source], float(nbytes))
        yield msgs
        yield size
        if self.topics is None:  # serve alone: per topic from the store
            topic = GaugeMetricFamily("bustap_store_topic_messages",
                                      "stored messages per topic (the biggest, capped; the "
                                      f"rest as topic=\"{OTHER}\")", labels=["topic"])
            _, rows = store.execute(
                f"SELECT topic, count(*) AS n FROM {TABLE} WHERE kind = 'message' "
                "AND topic IS NOT NULL GROUP BY topic ORDER BY n DESC, topic")
            for name, n in rows[:self.max_topics]:
                topic.add_metric([name], n)
            if len(rows) > self.max_topics:
                topic.add_metric([OTHER], sum(r[1] for r in rows[self.max_topics:]))
            yield topic
        from .api import alerts

        by_state: Counter[tuple[str, str]] = Counter(
            (str(a.get("rule")), str(a.get("state"))) for a in alerts(store))
        family = GaugeMetricFamily("bustap_alerts", "alerts by rule and state (latest "
                                   "notification of each)", labels=["rule", "state"])
        for (rule, state), n in sorted(by_state.items()):
            family.add_metric([rule, state], n)
        yield family


def registry(collector: BustapCollector) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    return reg
