CREATE INDEX IF NOT EXISTS users_created_at_id_idx ON users (created_at, id);
DROP INDEX IF EXISTS users_email_prefix_idx;
DROP INDEX IF EXISTS users_created_at_id_desc_idx;
DROP INDEX IF EXISTS user_roles_role_idx;
ALTER TABLE roles ADD COLUMN permissions text[] NOT NULL DEFAULT '{}';
UPDATE roles r SET permissions = COALESCE(
    (SELECT array_agg(rp.permission ORDER BY rp.permission) FROM role_permissions rp WHERE rp.role = r.name), '{}');
DROP TABLE role_permissions;
