-- Pages: one per hit that must reach someone, its frozen escalation plan, and every SMS sent for it.
-- The pager's clock is passed into every query ($n), never now(): tests drive time, and one process's
-- notion of "due" is the one that decided.

CREATE TABLE pages (
    page_id          uuid PRIMARY KEY,
    hit_id           uuid NOT NULL UNIQUE REFERENCES hits (hit_id),   -- a replayed hit finds its page
    entry_id         uuid NOT NULL REFERENCES watch_entries (entry_id),
    hit              jsonb NOT NULL,          -- the hit as received: what the messages say
    plan             jsonb NOT NULL,          -- the escalation plan frozen when the page started
    info_only        boolean NOT NULL,        -- locate-only entries: tell, do not send anyone to seize
    state            text NOT NULL CHECK (state IN ('open', 'acknowledged', 'exhausted', 'cancelled', 'not_paged')),
    not_paged_reason text,                    -- soft seal, backfill, late read…: why nobody was paged
    next_step        integer NOT NULL DEFAULT 0,
    next_due_at      timestamptz,             -- when the next step runs; NULL when none is pending
    acknowledged_by  text,
    acknowledged_at  timestamptz,
    sighted_at       timestamptz NOT NULL,    -- device time of the read (latency metrics)
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX pages_due ON pages (next_due_at) WHERE state = 'open';

CREATE SEQUENCE reply_code_seq;

-- One SMS per (page, step, officer): the row is written, and committed, before the provider is called.
CREATE TABLE notifications (
    notification_id     uuid PRIMARY KEY,
    page_id             uuid NOT NULL REFERENCES pages (page_id),
    step                integer NOT NULL,
    officer_id          text NOT NULL,
    phone               text NOT NULL,
    reply_code          text NOT NULL,
    body                text NOT NULL,
    send_state          text NOT NULL CHECK (send_state IN
                            ('pending', 'sending', 'sent', 'failed', 'ambiguous', 'skipped')),
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL,
    provider            text,
    provider_message_id text UNIQUE,
    provider_status     text,                 -- queued, sent, delivered, undelivered, failed (never backwards)
    error_code          text,
    error_message       text,
    created_at          timestamptz NOT NULL,
    accepted_at         timestamptz,          -- the provider accepted the message
    status_at           timestamptz,
    UNIQUE (page_id, step, officer_id)
);
CREATE INDEX notifications_pending ON notifications (next_attempt_at) WHERE send_state = 'pending';
CREATE INDEX notifications_reply ON notifications (officer_id, reply_code);

-- Every reply and acknowledgement, accepted or not: who answered what, and what it did.
CREATE TABLE page_replies (
    reply_id        bigserial PRIMARY KEY,
    received_at     timestamptz NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('sms', 'api')),
    from_phone      text,
    officer_id      text,
    page_id         uuid REFERENCES pages (page_id),
    command         text,
    body            text NOT NULL,
    outcome         text NOT NULL            -- taken, declined, already_taken, unknown_sender, not_yours, …
);
