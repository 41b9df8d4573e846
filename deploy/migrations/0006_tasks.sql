-- Seizure tasks: one live task per watched vehicle, its trail, every state change with who and when.

-- Why an entry left the watchlist (the funnel report counts settled cases from it).
ALTER TABLE watch_entries ADD COLUMN closed_reason text
    CHECK (closed_reason IN ('paid', 'settled', 'expired', 'withdrawn', 'seized', 'other'));

CREATE TABLE tasks (
    task_id            uuid PRIMARY KEY,
    entry_id           uuid NOT NULL REFERENCES watch_entries (entry_id),
    kind               text NOT NULL CHECK (kind IN ('seize', 'locate')),  -- locate: information, no seizure
    state              text NOT NULL CHECK (state IN
                           ('open', 'acknowledged', 'en_route', 'seized', 'not_found', 'cancelled', 'expired')),
    court              text NOT NULL,          -- the court that sealed the vehicle
    district           text,                   -- where it was first seen (open tasks by district)
    assignee           text,                   -- officer id of whoever took it
    page_id            uuid NOT NULL REFERENCES pages (page_id),  -- the page that opened it
    first_seen_at      timestamptz NOT NULL,
    last_seen_at       timestamptz NOT NULL,
    last_device_id     text,                   -- where it was last reported to people
    last_update_at     timestamptz,            -- when the last update SMS was decided
    updates            integer NOT NULL DEFAULT 0,
    custody_kind       text CHECK (custody_kind IN ('impound_lot', 'custodian')),
    custody_name       text,
    custody_address    text,
    closed_at          timestamptz,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
-- One live task per vehicle: a new sighting joins it instead of opening another.
CREATE UNIQUE INDEX tasks_one_live_per_entry ON tasks (entry_id)
    WHERE state IN ('open', 'acknowledged', 'en_route');
CREATE INDEX tasks_court_state ON tasks (court, state);
CREATE INDEX tasks_district_state ON tasks (district, state);

CREATE TABLE task_sightings (
    hit_id       uuid PRIMARY KEY REFERENCES hits (hit_id),  -- a replayed hit joins the trail once
    task_id      uuid NOT NULL REFERENCES tasks (task_id),
    observed_at  timestamptz NOT NULL,
    device_id    text NOT NULL,
    device_name  text,
    district     text,
    source_kind  text NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('opened', 'update_new_place', 'update_left', 'suppressed'))
);
CREATE INDEX task_sightings_task ON task_sightings (task_id, observed_at);

CREATE TABLE task_events (
    event_id    bigserial PRIMARY KEY,
    task_id     uuid NOT NULL REFERENCES tasks (task_id),
    at          timestamptz NOT NULL,
    actor       text NOT NULL,                -- officer id, 'traffic:<source>', 'system', a clerk's name
    channel     text NOT NULL CHECK (channel IN ('sms', 'api', 'cli', 'traffic_police', 'system')),
    from_state  text,
    to_state    text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX task_events_task ON task_events (task_id, at);
