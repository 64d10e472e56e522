-- A service's head is read from its log (its last event, or the pruned horizon once every event
-- is pruned), so a commit no longer rewrites the service's row and page for every batch.
-- A head that no stored event backs any more becomes the pruned horizon first, so the head a
-- service reports never moves back and no sequence number is handed out twice.
UPDATE services SET pruned_seq = head_seq
  WHERE head_seq > pruned_seq
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.service_sid = services.sid AND e.seq >= services.head_seq);
ALTER TABLE services DROP COLUMN head_seq;
