"""Prometheus metrics of the connectors. ``connector`` is parking, gat1400, isapi, traffic or backfill."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "seizewatch_ingest_requests_total", "HTTP requests to the connectors, by answer.", ["connector", "code"]
)
READS_RECEIVED = Counter("seizewatch_ingest_reads_received_total", "Plate reads received.", ["connector"])
READS_ACCEPTED = Counter(
    "seizewatch_ingest_reads_accepted_total",
    "Plate reads acknowledged by Kafka and answered 2xx.",
    ["connector"],
)
SIGHTINGS_PUBLISHED = Counter(
    "seizewatch_sightings_published_total",
    "Sightings acknowledged by Kafka on plate.sightings, by source kind and district (an administrative"
    " code; 'unknown' when the device is not registered). Backfilled history included.",
    ["source_kind", "district"],
)
READS_REJECTED = Counter(
    "seizewatch_ingest_reads_rejected_total", "Plate reads refused, by reason.", ["connector", "reason"]
)
UNKNOWN_DEVICE_READS = Counter(
    "seizewatch_ingest_unknown_device_reads_total",
    "Reads from devices missing in the registry (accepted and flagged).",
    ["connector"],
)
IGNORED_EVENTS = Counter(
    "seizewatch_ingest_ignored_events_total",
    "Events carrying no read (heartbeats, other alarms).",
    ["connector"],
)
DECODED = Counter(
    "seizewatch_ingest_decoded_total",
    "Text bodies by the encoding they were decoded with.",
    ["connector", "encoding"],
)
PRODUCE_SECONDS = Histogram(
    "seizewatch_ingest_produce_seconds",
    "From handing a request's reads to Kafka to every one acknowledged.",
    ["connector"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
KAFKA_UNAVAILABLE = Counter(
    "seizewatch_ingest_kafka_unavailable_total",
    "Requests answered 503 because Kafka did not acknowledge.",
    ["connector"],
)
LAST_READ = Gauge(
    "seizewatch_ingest_last_read_timestamp_seconds",
    "Receive time of the latest accepted live read, per device group (stale-feed alerts).",
    ["device_group"],
)
PRODUCER_RESTARTS = Counter(
    "seizewatch_ingest_producer_restarts_total",
    "Kafka producers replaced because only a new one could go on, by reason: out_of_order_sequence,"
    " unknown_producer_id, producer_fenced, batch_expired (a batch failed unsent: its sequence number is"
    " spent), broker_refused (another refusal retrying cannot fix), stuck (sends timing out while the"
    " broker answers). Requests get 503 while it happens.",
    ["reason"],
)
TRAFFIC_OUTCOMES = Counter(
    "seizewatch_ingest_traffic_outcomes_total",
    "Traffic-police results as answered to the sender, by outcome (pending: not applied yet).",
    ["outcome"],
)
