-- The log becomes a rowid table. Keyed by (service_sid, seq) WITHOUT ROWID, every event's whole
-- row, body included, was copied into the interior pages of its tree and every append rebalanced
-- a full leaf: two fifths of an append's work. An event's row id is now its service's number
-- shifted past 44 bits of sequence number, so a service's events are one range of ids, in
-- order, and an append lands on the end of that range.
--
-- A service's number is the lowest one free when it is made (at most 2^19 - 1 services at once);
-- removing a service removes its range of the log (the trigger below), so a number taken again
-- starts on an empty range.
ALTER TABLE services ADD COLUMN num INTEGER NOT NULL DEFAULT 0 CHECK (num BETWEEN 0 AND 524287);
UPDATE services SET num = r.n
  FROM (SELECT rowid AS id, row_number() OVER (ORDER BY rowid) AS n FROM services) AS r
 WHERE services.rowid = r.id;
CREATE UNIQUE INDEX services_by_num ON services (num);

CREATE TABLE events_by_id (
    id INTEGER PRIMARY KEY,
    object_sid TEXT NOT NULL,
    date INTEGER NOT NULL,
    body TEXT NOT NULL,
    prev_seq INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO events_by_id (id, object_sid, date, body, prev_seq)
    SELECT (s.num << 44) + e.seq, e.object_sid, e.date, e.body, e.prev_seq
      FROM events e JOIN services s ON s.sid = e.service_sid
     ORDER BY s.num, e.seq;
DROP TABLE events;
ALTER TABLE events_by_id RENAME TO events;

CREATE TRIGGER services_drop_log AFTER DELETE ON services BEGIN
    DELETE FROM events WHERE id BETWEEN old.num << 44 AND (old.num << 44) + 17592186044415;
END;
