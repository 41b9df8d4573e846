-- The traffic police's integration (一键扣车) is a source too: it posts what became of seizure requests.
-- The constraint is the one 0002 declared inline; PostgreSQL named it sources_connector_check.
ALTER TABLE sources DROP CONSTRAINT sources_connector_check;
ALTER TABLE sources ADD CONSTRAINT sources_connector_check
    CHECK (connector IN ('parking', 'gat1400', 'isapi', 'backfill', 'traffic'));
