-- Permissions as their own link table, so a role's permissions can be joined and
-- indexed; roles keep their names as keys.
CREATE TABLE role_permissions (
    role       text NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    permission text NOT NULL CHECK (permission ~ '^[a-z][a-z0-9_.-]{0,63}(:[a-z0-9_.*-]{1,64}){0,3}$'),
    PRIMARY KEY (role, permission)
);
INSERT INTO role_permissions (role, permission)
SELECT name, unnest(permissions) FROM roles;
ALTER TABLE roles DROP COLUMN permissions;

CREATE INDEX user_roles_role_idx ON user_roles (role);
-- The admin list pages newest first by (created_at, id) and filters by email prefix.
CREATE INDEX users_created_at_id_desc_idx ON users (created_at DESC, id DESC);
CREATE INDEX users_email_prefix_idx ON users (email text_pattern_ops);
DROP INDEX IF EXISTS users_created_at_id_idx;
