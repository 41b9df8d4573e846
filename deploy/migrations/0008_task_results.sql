-- A task may start from the traffic police's own stop (一键扣车) rather than from a page, and each of
-- their results is applied once, whatever resends it.
ALTER TABLE tasks ALTER COLUMN page_id DROP NOT NULL;

CREATE TABLE traffic_results (
    result_id    text PRIMARY KEY,
    request_id   uuid NOT NULL,
    task_id      uuid REFERENCES tasks (task_id),
    result       text NOT NULL,
    received_at  timestamptz NOT NULL,
    outcome      text NOT NULL,
    payload      jsonb NOT NULL
);

-- Task messages (updates, cancellations, traffic-police news) are notifications too; one that belongs to
-- a task started by the police has no page.
ALTER TABLE notifications ALTER COLUMN page_id DROP NOT NULL;
ALTER TABLE notifications ADD COLUMN task_id uuid REFERENCES tasks (task_id);
CREATE UNIQUE INDEX notifications_task_step_officer ON notifications (task_id, step, officer_id)
    WHERE task_id IS NOT NULL;
