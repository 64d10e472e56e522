-- An object's change stream is a chain through the log instead of an index over it: each event
-- points at its object's previous event (prev_seq) and each object row at its newest (last_seq).
-- The per-object index put one leaf page per object written into every commit; the chain adds
-- a column to pages a write dirties anyway. A removed object keeps its newest event in
-- object_tombstones, so its stream (ending in the removal) can still be read.
ALTER TABLE objects ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN prev_seq INTEGER NOT NULL DEFAULT 0;
CREATE TABLE object_tombstones (
    object_sid TEXT PRIMARY KEY,
    service_sid TEXT NOT NULL REFERENCES services(sid) ON DELETE CASCADE,
    last_seq INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
-- Pruning a service's log drops the tombstones whose streams it removed.
CREATE INDEX object_tombstones_by_service ON object_tombstones (service_sid, last_seq);
-- events_by_object is still here, so each link is one lookup.
UPDATE events SET prev_seq = COALESCE(
    (SELECT MAX(p.seq) FROM events p
      WHERE p.object_sid = events.object_sid AND p.seq < events.seq AND p.service_sid = events.service_sid), 0);
UPDATE objects SET last_seq = COALESCE(
    (SELECT MAX(e.seq) FROM events e WHERE e.object_sid = objects.sid AND e.service_sid = objects.service_sid), 0);
INSERT INTO object_tombstones (object_sid, service_sid, last_seq)
    SELECT e.object_sid, e.service_sid, MAX(e.seq) FROM events e
     WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.sid = e.object_sid)
     GROUP BY e.object_sid, e.service_sid;
DROP INDEX events_by_object;
