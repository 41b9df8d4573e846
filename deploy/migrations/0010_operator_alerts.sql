-- Alerts about seizewatch itself (Prometheus → Alertmanager → the pager), texted to the system's operators.
-- One row per alert occurrence: Alertmanager names an alert by its fingerprint (a hash of its labels) and
-- an occurrence by when it started, and sends the same one again on every repeat and after a restart.
CREATE TABLE operator_alerts (
    alert_id          uuid PRIMARY KEY,
    fingerprint       text NOT NULL,
    starts_at         timestamptz NOT NULL,
    alertname         text NOT NULL,
    severity          text,
    labels            jsonb NOT NULL,
    annotations       jsonb NOT NULL,        -- as last received (the summary carries the latest value)
    first_received_at timestamptz NOT NULL,
    last_received_at  timestamptz NOT NULL,
    resolved_at       timestamptz,           -- Alertmanager's endsAt of the first "resolved" received
    UNIQUE (fingerprint, starts_at)
);

-- Their SMS are notifications like any other (same sender, retries, status callbacks, metrics), keyed
-- once per (alert, step, operator): step 0 says it fired, step 1 that it is resolved. They belong to no
-- page and no task; officer_id is the operator's id from SEIZEWATCH_PAGER_OPERATORS, prefixed `operator:`.
ALTER TABLE notifications ADD COLUMN operator_alert_id uuid REFERENCES operator_alerts (alert_id);
CREATE UNIQUE INDEX notifications_operator_alert_step_officer
    ON notifications (operator_alert_id, step, officer_id) WHERE operator_alert_id IS NOT NULL;
