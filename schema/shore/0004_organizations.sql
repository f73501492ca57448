-- Shore users and vessels belong to organizations (a ship manager, an
-- owner); a user sees only the vessels of their own organization.
CREATE TABLE organizations (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
) STRICT;
INSERT INTO organizations (id, name, created_at_ms) VALUES ('default', 'Default organization', 0);

-- SQLite cannot add a column with both a foreign key and a default, so the
-- store checks that the organization exists when it sets one.
ALTER TABLE vessels ADD COLUMN org_id TEXT NOT NULL DEFAULT 'default';
CREATE INDEX vessels_org ON vessels(org_id);

CREATE TABLE user_orgs (
    username TEXT PRIMARY KEY REFERENCES users(username) ON DELETE CASCADE,
    org_id   TEXT NOT NULL REFERENCES organizations(id)
) STRICT;
