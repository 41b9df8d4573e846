-- Claims of SMS sends with an owner and a lease, reconciliation of sends with an unknown outcome, and
-- status lookups for callbacks that never came (alerts/sending.py, docs/alerts.md "Sending").
--
-- send_state gains 'reconciling': the provider may or may not have the message; it is looked up (by
-- recipient, sender and body) at next_attempt_at, found → 'sent', provably absent → sent again.
-- 'ambiguous' stays what it was for rows written before: an outcome nobody will learn, never resent.
ALTER TABLE notifications DROP CONSTRAINT notifications_send_state_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_send_state_check CHECK (send_state IN
    ('pending', 'sending', 'reconciling', 'sent', 'failed', 'ambiguous', 'skipped'));

ALTER TABLE notifications
    ADD COLUMN claimed_by       text,         -- the pager process holding the claim (or the lookup)
    ADD COLUMN claimed_at       timestamptz,  -- when the current attempt was claimed
    ADD COLUMN lease_until      timestamptz,  -- a claim past this is taken over: its request has landed
    ADD COLUMN first_claimed_at timestamptz,  -- the first attempt: no message of this row is older
    ADD COLUMN lookups          integer NOT NULL DEFAULT 0,  -- reconciliation lookups that failed
    ADD COLUMN status_check_at  timestamptz;  -- when to ask the provider for a status no callback brought

-- Claims made before this migration had no lease: they get the old two minutes after their claim.
UPDATE notifications SET claimed_at = next_attempt_at, first_claimed_at = next_attempt_at,
    lease_until = next_attempt_at + interval '2 minutes'
    WHERE send_state = 'sending';

CREATE INDEX notifications_leases ON notifications (lease_until) WHERE send_state = 'sending';
CREATE INDEX notifications_reconciling ON notifications (next_attempt_at) WHERE send_state = 'reconciling';
CREATE INDEX notifications_status_checks ON notifications (status_check_at) WHERE status_check_at IS NOT NULL;
