"""Prometheus metrics of the core stages. Labels are low-cardinality: never a plate, phone or case."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SIGHTINGS_CONSUMED = Counter(
    "seizewatch_sightings_consumed_total",
    "Records of plate.sightings processed by the match stage (dead-lettered ones included). By source"
    " kind and district: seizewatch_sightings_published_total, counted where reads are published.",
)
CONSUMER_LAG = Gauge(
    "seizewatch_kafka_consumer_lag_records",
    "Records a stage's consumer group has yet to process (end offsets minus committed offsets).",
    ["stage"],
)
DEAD_LETTERS = Counter(
    "seizewatch_dead_letters_total", "Payloads sent to a dead-letter topic.", ["stage", "reason"]
)
MATCHES = Counter(
    "seizewatch_matches_total",
    "Watch-entry matches found, by kind and by what became of them (hit, below_min_score, kind_disabled).",
    ["match_kind", "outcome"],
)
FUZZY_ONLY_SKIPPED = Counter(
    "seizewatch_match_fuzzy_only_skipped_total",
    "Reads only an OCR kind could match while SEIZEWATCH_MATCH_HIT_KINDS makes no hit of one: not decoded,"
    " not matched (so not in seizewatch_matches_total).",
)
HITS = Counter("seizewatch_hits_total", "Hits recorded (new, not replays).", ["match_kind", "action"])
HITS_REPLAYED = Counter(
    "seizewatch_hits_replayed_total", "Hits found already recorded (a replayed sighting): not recorded again."
)
MATCH_SECONDS = Histogram(
    "seizewatch_match_processing_seconds",
    "Time to process one sighting in the match stage (decode, match, record hits).",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0),
)
SIGHTING_AGE_SECONDS = Histogram(
    "seizewatch_sighting_age_at_match_seconds",
    "From the device's observed time to the match stage having processed the read.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
STAGE_RETRIES = Counter(
    "seizewatch_stage_retries_total",
    "Attempts retried because Kafka or PostgreSQL failed (the event is held, never skipped).",
    ["stage"],
)
WORKER_HUGE_PAGES = Gauge(
    "seizewatch_worker_huge_pages_bytes",
    "Memory of this matcher worker on transparent huge pages (AnonHugePages; streams/hugepages.py). With a"
    " large watchlist, 0 means the index's tables are on 4 KiB pages and the per-read check is slower.",
)
WATCHLIST_ENTRIES = Gauge("seizewatch_watchlist_entries", "Active watch entries in this worker's index.")
WATCHLIST_CHANGES = Counter(
    "seizewatch_watchlist_changes_applied_total",
    "Watchlist change records read, by what they were: upserted, removed, or invalid (not applied: the"
    " vehicle is not watched as the court filed it).",
    ["change"],
)
for _change in ("upserted", "removed", "invalid"):
    WATCHLIST_CHANGES.labels(_change)  # every outcome exported from the start, at 0
WATCHLIST_REFUSED = Gauge(
    "seizewatch_watchlist_refused_entries",
    "Entry keys whose latest change this worker could not apply (invalid, keyed other than by its entry's"
    " id, or no valid key): each a vehicle not watched as filed, or a release not applied.",
)
WATCHLIST_CAUGHT_UP = Gauge(
    "seizewatch_watchlist_caught_up", "1 once the index has read the whole changes topic, else 0."
)
WATCHLIST_LAST_CHANGE = Gauge(
    "seizewatch_watchlist_last_change_timestamp_seconds",
    "Kafka timestamp of the latest change record applied (sync age = time() - this).",
)
OUTBOX_PUBLISHED = Counter("seizewatch_outbox_published_total", "Outbox rows published to Kafka.", ["topic"])
OUTBOX_LEADER = Gauge("seizewatch_outbox_relay_leader", "1 while this process holds the outbox relay lock.")
PROCESS_HEALTHY = Gauge(
    "seizewatch_process_healthy",
    "1 while every background loop of the process runs; 0 once one ended (the process then exits).",
    ["process"],
)
LOOP_FAILURES = Counter(
    "seizewatch_process_loop_failures_total",
    "Background loops that ended on their own (an error, or a return), by process and loop.",
    ["process", "loop"],
)
