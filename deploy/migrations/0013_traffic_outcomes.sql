-- What a traffic-police result's outcome means, for the police to read back (GET .../results/{id} and
-- the POST answer): a plate mismatch names both plates, a released entry its reason.
ALTER TABLE traffic_results ADD COLUMN detail text NOT NULL DEFAULT '';
