-- Whom the traffic police call about a court's vehicle (SeizureRequestV1.court_contact): the court's
-- on-duty contact now, computed from the roster by the pager (alerts/traffic_contacts.py) and kept here
-- so every publication of a request (streams/watchstore.py) and the export carry it without the core
-- reading rosters. A NULL contact: nobody on the roster to give (the pager warned); no row: not computed.
CREATE TABLE court_contacts (
    court       text PRIMARY KEY,
    contact     text CHECK (contact <> ''),
    officer_id  text,                 -- whose contact it is (NULL: not an officer)
    updated_at  timestamptz NOT NULL
);
