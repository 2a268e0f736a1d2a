-- The platform schema: tenants, users, memberships, invitations, sites, sessions, audit trail.
-- Runs as cloop_owner; the roles cloop_owner and cloop_app exist (app/core/bootstrap.py).

-- Row-level security for a table with a tenant_id column: enabled AND forced, one policy on
-- the transaction-local tenant setting (no tenant set: no rows), DML granted to the app role.
CREATE FUNCTION enable_tenant_rls(tbl regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s'
        ' USING (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)'
        ' WITH CHECK (tenant_id = nullif(current_setting(''app.tenant_id'', true), '''')::uuid)',
        tbl);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO cloop_app', tbl);
END
$$;

CREATE TABLE tenants (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    plan text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'team')),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The tenant row itself is tenant data: visible only inside its own scope.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = nullif(current_setting('app.tenant_id', true), '')::uuid)
    WITH CHECK (id = nullif(current_setting('app.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants TO cloop_app;

-- People who sign in; one user may belong to several tenants.
CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
GRANT SELECT, INSERT, UPDATE, DELETE ON users TO cloop_app;

CREATE TABLE memberships (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);
SELECT enable_tenant_rls('memberships');

-- The one sanctioned cross-tenant read: which tenants does this (verified) user belong to.
CREATE FUNCTION user_memberships(p_user uuid)
RETURNS TABLE (tenant_id uuid, tenant_name text, plan text, role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT m.tenant_id, t.name, t.plan, m.role
    FROM memberships m JOIN tenants t ON t.id = m.tenant_id
    WHERE m.user_id = p_user
    ORDER BY m.created_at, m.tenant_id
$$;
REVOKE ALL ON FUNCTION user_memberships(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION user_memberships(uuid) TO cloop_app;

CREATE TABLE invitations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    token_hash bytea NOT NULL UNIQUE,
    invited_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    accepted_at timestamptz
);
CREATE INDEX invitations_tenant_idx ON invitations (tenant_id);
SELECT enable_tenant_rls('invitations');

CREATE TABLE sites (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    allowed_origins text[] NOT NULL DEFAULT '{}',
    persona text NOT NULL DEFAULT '' CHECK (length(persona) <= 4000),
    language text NOT NULL DEFAULT 'en',
    phase text NOT NULL DEFAULT '' CHECK (length(phase) <= 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- lets tables of later migrations reference (tenant_id, site_id): same-tenant by construction
    UNIQUE (tenant_id, id)
);
SELECT enable_tenant_rls('sites');

-- Rotating refresh tokens, stored as SHA-256; a family is one sign-in's chain of rotations.
CREATE TABLE refresh_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id uuid NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (tenant_id, user_id);
SELECT enable_tenant_rls('refresh_tokens');

-- Authentication events. tenant_id is NULL when no tenant is known (a failed sign-in): the app
-- may write such rows but never read them; the owner role (purges, exports) sees all.
CREATE TABLE audit_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id uuid REFERENCES tenants (id),
    occurred_at timestamptz NOT NULL DEFAULT now(),
    event text NOT NULL,
    actor text,
    ip text,
    outcome text NOT NULL CHECK (outcome IN ('success', 'failure')),
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, occurred_at DESC);
CREATE INDEX audit_events_occurred_idx ON audit_events (occurred_at);
SELECT enable_tenant_rls('audit_events');
CREATE POLICY anonymous_events ON audit_events FOR INSERT TO cloop_app WITH CHECK (tenant_id IS NULL);
-- The trail is append-only for the app.
REVOKE UPDATE, DELETE ON audit_events FROM cloop_app;

-- Who changed what on a site, when, before and after (kind: settings, knowledge, token...).
CREATE TABLE site_changes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    site_id uuid NOT NULL,
    kind text NOT NULL DEFAULT 'settings',
    actor text,
    changed_at timestamptz NOT NULL DEFAULT now(),
    before jsonb,
    after jsonb
);
CREATE INDEX site_changes_site_idx ON site_changes (tenant_id, site_id, changed_at DESC);
CREATE INDEX site_changes_changed_idx ON site_changes (changed_at);
SELECT enable_tenant_rls('site_changes');
REVOKE UPDATE, DELETE ON site_changes FROM cloop_app;
