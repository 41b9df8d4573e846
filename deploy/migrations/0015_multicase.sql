-- One vehicle, several cases (issue 15 item 1). A vehicle is a plate with its colour, as on a watch
-- entry; the live task is the vehicle's, not one entry's, and lists every case (entry) it stands for.
-- A seizure under one case sets the vehicle's other entries to `seized_other_case` (not active: off every
-- matcher and the traffic police's list, no pages), each then settled (released) by its own court.
ALTER TABLE watch_entries DROP CONSTRAINT watch_entries_status_check;
ALTER TABLE watch_entries ADD CONSTRAINT watch_entries_status_check
    CHECK (status IN ('active', 'released', 'seized', 'seized_other_case'));
CREATE INDEX watch_entries_vehicle ON watch_entries (plate, plate_colour) WHERE status = 'active';

-- The vehicle of a task: plate '/' colour of the entry that opened it. Hits of one vehicle are keyed by
-- entry (several partitions, several pagers): the pager serializes a vehicle's hits with an advisory lock
-- on this key. No unique index: tasks opened before this migration may already be two for one vehicle.
ALTER TABLE tasks ADD COLUMN vehicle text;
UPDATE tasks t SET vehicle = e.plate || '/' || e.plate_colour FROM watch_entries e WHERE e.entry_id = t.entry_id;
ALTER TABLE tasks ALTER COLUMN vehicle SET NOT NULL;
CREATE INDEX tasks_vehicle_live ON tasks (vehicle) WHERE state IN ('open', 'acknowledged', 'en_route', 'stopped');

-- The cases (entries) a task stands for: the one that opened it and every other entry of the vehicle.
CREATE TABLE task_entries (
    task_id    uuid NOT NULL REFERENCES tasks (task_id),
    entry_id   uuid NOT NULL REFERENCES watch_entries (entry_id),
    joined_at  timestamptz NOT NULL,
    PRIMARY KEY (task_id, entry_id)
);
CREATE INDEX task_entries_entry ON task_entries (entry_id);
INSERT INTO task_entries (task_id, entry_id, joined_at) SELECT task_id, entry_id, created_at FROM tasks;

-- Whoever inserts a task (the pager, the traffic police's results, an operator's repair) gets the vehicle
-- filled from its entry and the entry listed among its cases: the invariants hold for every writer.
CREATE FUNCTION tasks_of_vehicle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND TG_WHEN = 'BEFORE' THEN
        IF NEW.vehicle IS NULL THEN
            SELECT e.plate || '/' || e.plate_colour INTO NEW.vehicle FROM watch_entries e
             WHERE e.entry_id = NEW.entry_id;
        END IF;
        RETURN NEW;
    END IF;
    INSERT INTO task_entries (task_id, entry_id, joined_at) VALUES (NEW.task_id, NEW.entry_id, NEW.created_at)
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER tasks_vehicle_filled BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_of_vehicle();
CREATE TRIGGER tasks_entry_listed AFTER INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION tasks_of_vehicle();

ALTER TABLE watch_entry_history DROP CONSTRAINT watch_entry_history_change_check;
ALTER TABLE watch_entry_history ADD CONSTRAINT watch_entry_history_change_check
    CHECK (change IN ('added', 'released', 'seized', 'seized_other_case', 'updated'));

-- A hit on an entry whose vehicle is in custody (made before the matcher heard) joins the trail of the
-- task that seized it, paging nobody.
ALTER TABLE task_sightings DROP CONSTRAINT task_sightings_outcome_check;
ALTER TABLE task_sightings ADD CONSTRAINT task_sightings_outcome_check
    CHECK (outcome IN ('opened', 'update_new_place', 'update_left', 'suppressed', 'in_custody'));
