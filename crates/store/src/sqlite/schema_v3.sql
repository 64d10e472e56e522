-- Per service: how far its webhooks were delivered, and the node delivering them (a lease).
CREATE TABLE webhook_cursors (
    service_sid TEXT PRIMARY KEY REFERENCES services(sid) ON DELETE CASCADE,
    delivered_seq INTEGER NOT NULL,
    lease_owner TEXT,
    lease_expires INTEGER NOT NULL DEFAULT 0
) STRICT;
-- Services that already have a webhook URL start at their log's head: no history is replayed.
INSERT INTO webhook_cursors (service_sid, delivered_seq)
    SELECT sid, head_seq FROM services WHERE json_extract(settings, '$.webhook_url') IS NOT NULL;
