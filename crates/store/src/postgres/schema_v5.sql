-- Durable cursors of every background reader of the change log (webhooks, Cognito streams and
-- push): per service and consumer, how far it got and which node reads it (a lease).
CREATE TABLE log_cursors (
    service_sid TEXT COLLATE "C" NOT NULL REFERENCES services(sid) ON DELETE CASCADE,
    consumer TEXT COLLATE "C" NOT NULL,
    delivered_seq BIGINT NOT NULL,
    lease_owner TEXT,
    lease_expires BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (service_sid, consumer)
);
INSERT INTO log_cursors (service_sid, consumer, delivered_seq, lease_owner, lease_expires)
    SELECT service_sid, 'webhooks', delivered_seq, lease_owner, lease_expires FROM webhook_cursors;
DROP TABLE webhook_cursors;
