DROP INDEX IF EXISTS one_time_tokens_used_at_idx;
DROP INDEX IF EXISTS outbox_published_at_idx;
-- Drops every partition with it.
DROP TABLE IF EXISTS audit_log;
DROP TABLE IF EXISTS sent_emails;
