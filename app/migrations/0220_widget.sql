-- Widget embed tokens: one or more per site, stored as SHA-256, rotatable and revocable.
-- A site may require a signed visitor identity: HMAC-SHA256(identity_secret, visitor_id).

CREATE TABLE widget_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    site_id uuid NOT NULL,
    token_hash bytea NOT NULL UNIQUE,
    token_prefix text NOT NULL,
    identity_secret text,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX widget_tokens_site_idx ON widget_tokens (tenant_id, site_id);
SELECT enable_tenant_rls('widget_tokens');

-- The one sanctioned cross-tenant read for the widget: which live token has this hash.
-- It yields the tenant scope the widget's requests then run under.
CREATE FUNCTION widget_token_lookup(p_hash bytea)
RETURNS TABLE (token_id uuid, tenant_id uuid, site_id uuid, site_name text,
               allowed_origins text[], persona text, language text, phase text,
               identity_secret text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT w.id, w.tenant_id, w.site_id, s.name, s.allowed_origins, s.persona, s.language,
           s.phase, w.identity_secret
    FROM widget_tokens w JOIN sites s ON s.id = w.site_id AND s.tenant_id = w.tenant_id
    WHERE w.token_hash = p_hash AND w.revoked_at IS NULL
$$;
REVOKE ALL ON FUNCTION widget_token_lookup(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION widget_token_lookup(bytea) TO cloop_app;

-- Sliding-window rate-limit counters shared by every app worker (not tenant data: keys
-- are hashed client IPs, token ids and tenant ids). UNLOGGED: counters need no WAL.
CREATE UNLOGGED TABLE rate_counters (
    key text NOT NULL,
    bucket bigint NOT NULL,
    hits integer NOT NULL,
    PRIMARY KEY (key, bucket)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON rate_counters TO cloop_app;
