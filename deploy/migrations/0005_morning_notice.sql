-- A night page whose court was not woken (normal priority) tells the court when the night ends, so it
-- takes the vehicle over from the police station that holds it.
ALTER TABLE pages ADD COLUMN notice_due_at timestamptz;
CREATE INDEX pages_notice_due ON pages (notice_due_at) WHERE notice_due_at IS NOT NULL;
