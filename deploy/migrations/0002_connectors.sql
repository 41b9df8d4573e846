-- Connectors: the device registry every sighting is enriched from, and the sources allowed to send.

CREATE TABLE devices (
    device_id     text PRIMARY KEY,             -- camera, gate or checkpoint lane id as the sender names it
    source_id     text NOT NULL,                -- the feed that reports it
    name          text NOT NULL,                -- for people: 椒江万达广场停车场 1号入口
    kind          text CHECK (kind IN ('parking_entry', 'parking_exit', 'checkpoint')),  -- overrides the feed's guess
    address       text NOT NULL DEFAULT '',
    latitude      double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude     double precision CHECK (longitude BETWEEN -180 AND 180),
    district      text NOT NULL,                -- jurisdiction: administrative division code, e.g. 331002
    owner         text NOT NULL DEFAULT '',     -- parking operator or traffic police unit
    device_group  text NOT NULL,                -- for stale-feed alerts: reads expected together
    timezone      text NOT NULL DEFAULT 'Asia/Shanghai',
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);

CREATE TABLE sources (
    source_id     text PRIMARY KEY CHECK (source_id ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
    connector     text NOT NULL CHECK (connector IN ('parking', 'gat1400', 'isapi', 'backfill')),
    vendor        text NOT NULL DEFAULT 'generic',  -- parking adapter that maps the vendor's format
    auth          text NOT NULL CHECK (auth IN ('api_key', 'hmac', 'digest')),
    key_version   integer NOT NULL DEFAULT 1,       -- bump to rotate the source's credential
    enabled       boolean NOT NULL DEFAULT true,
    description   text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Connectors cache both tables and reload on these notifications.
CREATE FUNCTION notify_registry_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('seizewatch_registry', TG_TABLE_NAME);
    RETURN NULL;
END $$;
CREATE TRIGGER devices_changed AFTER INSERT OR UPDATE OR DELETE ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_change();
CREATE TRIGGER sources_changed AFTER INSERT OR UPDATE OR DELETE ON sources
    FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_change();

ALTER TABLE hits ADD COLUMN district text, ADD COLUMN device_name text;
