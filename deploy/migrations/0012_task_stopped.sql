-- A stop reported by the traffic police (已拦停) is a task state of its own, with where and when the
-- vehicle was stopped and who holds it there (the police unit / station), until the court takes over.
-- A stopped task is live: a sighting still joins it, and it counts as the vehicle's one live task.
ALTER TABLE tasks DROP CONSTRAINT tasks_state_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_state_check CHECK (state IN
    ('open', 'acknowledged', 'en_route', 'stopped', 'seized', 'not_found', 'cancelled', 'expired'));
DROP INDEX tasks_one_live_per_entry;
CREATE UNIQUE INDEX tasks_one_live_per_entry ON tasks (entry_id)
    WHERE state IN ('open', 'acknowledged', 'en_route', 'stopped');
ALTER TABLE tasks ADD COLUMN stopped_at timestamptz;   -- when the police stopped it (their clock)
ALTER TABLE tasks ADD COLUMN stopped_place text;       -- where it is held
ALTER TABLE tasks ADD COLUMN stopped_by text;          -- the unit (交警大队) / station holding it
