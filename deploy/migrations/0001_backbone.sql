-- Backbone: watch entries with their audit trail, the transactional outbox, and hits.
-- Closed vocabularies are text with CHECK constraints (easier to extend than enum types).

CREATE TABLE watch_entries (
    entry_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    plate         text NOT NULL,
    plate_colour  text NOT NULL DEFAULT 'unknown'
                  CHECK (plate_colour IN ('blue', 'yellow', 'green', 'yellow_green', 'white', 'black', 'unknown')),
    vehicle       text NOT NULL DEFAULT '',
    case_number   text NOT NULL CHECK (case_number <> ''),
    court         text NOT NULL CHECK (court <> ''),
    action        text NOT NULL CHECK (action IN ('seize', 'locate', 'soft_seal')),
    priority      text NOT NULL DEFAULT 'normal' CHECK (priority IN ('urgent', 'normal', 'low')),
    valid_from    timestamptz NOT NULL DEFAULT now(),
    valid_until   timestamptz CHECK (valid_until IS NULL OR valid_until > valid_from),
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'released', 'seized')),
    version       integer NOT NULL DEFAULT 1,
    note          text NOT NULL DEFAULT '',
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One active entry per vehicle and case; the same car may be sealed by several cases or courts.
CREATE UNIQUE INDEX watch_entries_active_plate_case ON watch_entries (plate, case_number) WHERE status = 'active';
CREATE INDEX watch_entries_court_status ON watch_entries (court, status);

-- Who changed what and when: one row per version of an entry.
CREATE TABLE watch_entry_history (
    entry_id    uuid NOT NULL REFERENCES watch_entries (entry_id),
    version     integer NOT NULL,
    change      text NOT NULL CHECK (change IN ('added', 'released', 'seized', 'updated')),
    changed_by  text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    reason      text NOT NULL DEFAULT '',
    snapshot    jsonb NOT NULL,
    PRIMARY KEY (entry_id, version)
);

-- Transactional outbox: written in the same transaction as the change, published by the relay.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,          -- logical topic name (the relay adds the prefix)
    key           text NOT NULL,
    payload       bytea,                  -- NULL: a tombstone
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- A read that matched a watch entry. Reads that match nothing are never stored here.
CREATE TABLE hits (
    hit_id              uuid PRIMARY KEY,  -- uuid5 of (sighting id, entry id): a replay finds the same row
    sighting_id         text NOT NULL,
    entry_id            uuid NOT NULL REFERENCES watch_entries (entry_id),
    match_kind          text NOT NULL CHECK (match_kind IN ('exact', 'province', 'ocr', 'ocr_province')),
    score               real NOT NULL,
    plate_read          text NOT NULL,     -- normalized plate as read (may differ from the entry's)
    plate_raw           text NOT NULL,
    source_kind         text NOT NULL,
    source_id           text NOT NULL,
    device_id           text NOT NULL,
    observed_at         timestamptz NOT NULL,
    observed_offset_min smallint NOT NULL, -- the device's UTC offset, kept beside the UTC instant
    received_at         timestamptz NOT NULL,
    location            jsonb,
    image_ref           text,
    backfill            boolean NOT NULL,
    matched_at          timestamptz NOT NULL DEFAULT now(),
    published_at        timestamptz,       -- when it reached the hits topic
    UNIQUE (sighting_id, entry_id)
);
CREATE INDEX hits_entry_observed ON hits (entry_id, observed_at);
