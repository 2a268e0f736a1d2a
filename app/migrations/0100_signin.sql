-- Sign-in: external identities, pending sign-in flows, per-tenant SSO, the SAML replay cache.

-- An account at a provider (Google, Microsoft, GitHub, or one tenant's SSO: 'sso:<tenant id>')
-- linked to a user. Global like users: it says who a person is, not what a tenant holds.
CREATE TABLE identities (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider text NOT NULL CHECK (length(provider) BETWEEN 1 AND 100),
    subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 500),
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_signin_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, subject)
);
CREATE INDEX identities_user_idx ON identities (user_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON identities TO cloop_app;

-- A sign-in in progress: the state handed to the browser is stored only as its SHA-256, with
-- the nonce and PKCE verifier (OIDC) or the AuthnRequest id (SAML). tenant_id is the tenant
-- whose SSO runs, NULL for a product-wide provider. Single use: the app cannot read the table,
-- only take (delete and return) one flow by its state through take_signin_flow().
CREATE TABLE signin_flows (
    id bytea PRIMARY KEY,
    tenant_id uuid REFERENCES tenants (id) ON DELETE CASCADE,
    provider text NOT NULL CHECK (length(provider) BETWEEN 1 AND 100),
    nonce text,
    code_verifier text,
    saml_request_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX signin_flows_expires_idx ON signin_flows (expires_at);
SELECT enable_tenant_rls('signin_flows');
CREATE POLICY anonymous_flows ON signin_flows FOR INSERT TO cloop_app WITH CHECK (tenant_id IS NULL);
REVOKE SELECT, UPDATE, DELETE ON signin_flows FROM cloop_app;

-- Spend one flow (and sweep expired ones): the sanctioned pre-authentication read, by a secret.
CREATE FUNCTION take_signin_flow(p_id bytea) RETURNS SETOF signin_flows
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH stale AS (DELETE FROM signin_flows WHERE expires_at < now() - interval '1 hour')
    DELETE FROM signin_flows WHERE id = p_id RETURNING *
$$;
REVOKE ALL ON FUNCTION take_signin_flow(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION take_signin_flow(bytea) TO cloop_app;

-- One SSO connection per tenant (Team plan): OIDC (Entra ID, Google Workspace) or SAML 2.0.
CREATE TABLE sso_configs (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    protocol text NOT NULL CHECK (protocol IN ('oidc', 'saml')),
    -- OIDC: entra (directory = tenant id) or google_workspace (directory = domain)
    oidc_kind text CHECK (oidc_kind IN ('entra', 'google_workspace')),
    oidc_directory text CHECK (length(oidc_directory) <= 255),
    oidc_client_id text CHECK (length(oidc_client_id) <= 255),
    oidc_client_secret text CHECK (length(oidc_client_secret) <= 1024),
    -- SAML: the IdP as its metadata describes it
    saml_idp_entity_id text CHECK (length(saml_idp_entity_id) <= 1024),
    saml_idp_sso_url text CHECK (length(saml_idp_sso_url) <= 2048),
    saml_idp_certificate text CHECK (length(saml_idp_certificate) <= 16384),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (
        (protocol = 'oidc' AND oidc_kind IS NOT NULL AND oidc_directory IS NOT NULL
            AND oidc_client_id IS NOT NULL AND oidc_client_secret IS NOT NULL)
        OR (protocol = 'saml' AND saml_idp_entity_id IS NOT NULL AND saml_idp_sso_url IS NOT NULL
            AND saml_idp_certificate IS NOT NULL)
    )
);
SELECT enable_tenant_rls('sso_configs');

-- Assertion ids seen at a tenant's ACS, kept until the assertion would have expired anyway.
CREATE TABLE saml_assertion_ids (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    assertion_id text NOT NULL CHECK (length(assertion_id) BETWEEN 1 AND 256),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, assertion_id)
);
CREATE INDEX saml_assertion_ids_expires_idx ON saml_assertion_ids (expires_at);
SELECT enable_tenant_rls('saml_assertion_ids');
