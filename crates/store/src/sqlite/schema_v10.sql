-- Pruning a service's log drops its marks at or below the pruned horizon. The marks' key leads
-- with the object, so that delete read every mark of the service on every pruning run (one row
-- per 32 events still stored), on the writer thread. This index finds them by position; it
-- takes one more b-tree entry per 32 events.
CREATE INDEX object_marks_by_service_seq ON object_marks (service_sid, seq);
