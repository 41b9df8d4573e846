-- Duty rosters: courts and their officers, the "1+1+1" duty groups on rotation, overrides, the districts
-- each court covers and the police stations that hold a vehicle at night. Nothing here says who is on
-- duty "now": alerts/rosters.py computes it from these rows for any instant.
-- Closed vocabularies are text with CHECK constraints, as in 0001; rules that span rows (a group's judge
-- has the role judge and belongs to the group's court…) are checked by Roster.validate().

CREATE TABLE courts (
    court_id            text PRIMARY KEY CHECK (court_id <> ''),  -- the court's name as on watch entries
    timezone            text NOT NULL DEFAULT 'Asia/Shanghai',
    -- Paged at the escalation step after the group leader: a designated officer (FK added below, as
    -- officers reference courts too).
    bureau_duty_leader  text,
    -- Rotation: the group at position 0 takes over at `handoff` (local time) on this local date; each
    -- shift lasts `shift_days` local days, so the handoff keeps its wall-clock time across DST changes.
    rotation_anchor     date NOT NULL,
    handoff             time NOT NULL DEFAULT '08:30',
    shift_days          integer NOT NULL DEFAULT 1 CHECK (shift_days BETWEEN 1 AND 31),
    updated_by          text NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE officers (
    officer_id   text PRIMARY KEY CHECK (officer_id ~ '^[^[:space:]]{1,64}$'),
    name         text NOT NULL CHECK (name <> ''),
    -- E.164. NULL: cannot be texted; routing reports such an officer as unreachable, never skips them.
    -- Deferrable, so one import can swap two officers' numbers.
    phone        text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    court_id     text REFERENCES courts (court_id),  -- NULL only for police station duty contacts
    role         text NOT NULL CHECK (role IN ('bureau_leader', 'judge', 'judicial_police', 'station_duty')),
    active       boolean NOT NULL DEFAULT true,
    sms_enabled  boolean NOT NULL DEFAULT true,
    updated_by   text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT officers_phone_key UNIQUE (phone) DEFERRABLE INITIALLY DEFERRED,
    CHECK ((role = 'station_duty') = (court_id IS NULL))
);
CREATE INDEX officers_court ON officers (court_id);

ALTER TABLE courts ADD CONSTRAINT courts_bureau_duty_leader_fkey
    FOREIGN KEY (bureau_duty_leader) REFERENCES officers (officer_id) DEFERRABLE INITIALLY DEFERRED;

-- One "1+1+1" group: a bureau leader, an enforcement judge, a judicial police officer. A missing member
-- is allowed here (NULL) and reported by validate() and, when paged, by routing.
CREATE TABLE duty_groups (
    group_id         text PRIMARY KEY CHECK (group_id ~ '^[^[:space:]]{1,64}$'),
    court_id         text NOT NULL REFERENCES courts (court_id),
    name             text NOT NULL DEFAULT '',
    position         integer NOT NULL CHECK (position >= 0),  -- turn in the court's rotation, from 0
    bureau_leader    text REFERENCES officers (officer_id),
    judge            text REFERENCES officers (officer_id),
    judicial_police  text REFERENCES officers (officer_id),
    updated_by       text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (group_id, court_id),  -- target of the overrides' (group, court) reference
    -- Deferrable, so one import can reorder a rotation.
    CONSTRAINT duty_groups_position_key UNIQUE (court_id, position) DEFERRABLE INITIALLY DEFERRED
);

-- A whole group takes the court's duty for [starts_at, ends_at), whatever the rotation says.
CREATE TABLE group_overrides (
    override_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    court_id     text NOT NULL,
    group_id     text NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason       text NOT NULL DEFAULT '',
    updated_by   text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (group_id, court_id) REFERENCES duty_groups (group_id, court_id) ON DELETE CASCADE
);
CREATE INDEX group_overrides_court ON group_overrides (court_id, ends_at);

-- One member of a group is replaced for [starts_at, ends_at) (leave, illness, a hearing…).
CREATE TABLE member_overrides (
    override_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id     text NOT NULL REFERENCES duty_groups (group_id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('bureau_leader', 'judge', 'judicial_police')),
    officer_id   text NOT NULL REFERENCES officers (officer_id),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason       text NOT NULL DEFAULT '',
    updated_by   text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX member_overrides_group ON member_overrides (group_id, ends_at);

-- Jurisdiction: the districts (administrative division codes, as devices carry) each court covers.
CREATE TABLE court_districts (
    court_id    text NOT NULL REFERENCES courts (court_id),
    district    text NOT NULL CHECK (district <> ''),
    updated_by  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (court_id, district)
);
CREATE INDEX court_districts_district ON court_districts (district);

-- At night the district's police station duty contact holds a found vehicle until the court takes over.
-- The window may cross midnight (20:00–08:00, the default); it is read in `timezone`.
CREATE TABLE night_contacts (
    district     text PRIMARY KEY CHECK (district <> ''),
    station      text NOT NULL CHECK (station <> ''),
    officer_id   text NOT NULL REFERENCES officers (officer_id),  -- role station_duty (checked in code)
    night_start  time NOT NULL DEFAULT '20:00',
    night_end    time NOT NULL DEFAULT '08:00',
    timezone     text NOT NULL DEFAULT 'Asia/Shanghai',
    updated_by   text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (night_end <> night_start)
);

-- Processes that cache the roster reload on this notification.
CREATE FUNCTION notify_roster_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('seizewatch_roster', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER courts_changed AFTER INSERT OR UPDATE OR DELETE ON courts
    FOR EACH STATEMENT EXECUTE FUNCTION notify_roster_change();
CREATE TRIGGER officers_changed AFTER INSERT OR UPDATE OR DELETE ON officers
    FOR EACH STATEMENT EXECUTE FUNCTION notify_roster_change();
CREATE TRIGGER duty_groups_changed AFTER INSERT OR UPDATE OR DELETE ON duty_groups
    FOR EACH STATEMENT EXECUTE FUNCTION notify_roster_change();
CREATE TRIGGER group_overrides_changed AFTER INSERT OR UPDATE OR DELETE ON group_overrides
    FOR EACH STATEMENT EXECUTE FUNCTION notify_roster_change();
CREATE TRIGGER member_overrides_changed AFTER INSERT OR UPDATE OR DELETE ON member_overrides
    FOR EACH STATEMENT EXECUTE FUNCTION notify_roster_change();
CREATE TRIGGER court_districts_changed AFTER INSERT OR UPDATE OR DELETE ON court_districts
    FOR EACH STATEMENT EXECUTE FUNCTION notify_roster_change();
CREATE TRIGGER night_contacts_changed AFTER INSERT OR UPDATE OR DELETE ON night_contacts
    FOR EACH STATEMENT EXECUTE FUNCTION notify_roster_change();
