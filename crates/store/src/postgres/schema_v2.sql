-- Service webhook and reachability settings, one JSON document per service.
ALTER TABLE services ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
