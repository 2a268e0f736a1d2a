-- Conversations of website visitors, leads they leave, and metered AI usage per tenant/day.

CREATE TABLE chat_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    site_id uuid NOT NULL,
    visitor_id text NOT NULL CHECK (length(visitor_id) BETWEEN 8 AND 64),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, id)
);
CREATE INDEX chat_sessions_site_idx ON chat_sessions (tenant_id, site_id, created_at);
CREATE INDEX chat_sessions_visitor_idx ON chat_sessions (tenant_id, visitor_id);
SELECT enable_tenant_rls('chat_sessions');

CREATE TABLE chat_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_id uuid NOT NULL,
    visitor_id text NOT NULL,
    role text NOT NULL CHECK (role IN ('user', 'assistant')),
    content text NOT NULL CHECK (length(content) <= 20000),
    -- assistant rows: answered from sources, or not (analytics' unanswered questions)
    answered boolean,
    outcome text NOT NULL DEFAULT 'ok' CHECK (outcome IN ('ok', 'failed', 'capped')),
    sources jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, session_id) REFERENCES chat_sessions (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX chat_messages_session_idx ON chat_messages (session_id, id);
CREATE INDEX chat_messages_tenant_idx ON chat_messages (tenant_id, created_at);
CREATE INDEX chat_messages_visitor_idx ON chat_messages (tenant_id, visitor_id);
SELECT enable_tenant_rls('chat_messages');

-- A lead: an e-mail address given with consent. Never sent to the AI provider.
CREATE TABLE leads (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    site_id uuid NOT NULL,
    session_id uuid,
    visitor_id text NOT NULL,
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    name text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    consent_text text NOT NULL CHECK (length(consent_text) BETWEEN 1 AND 1000),
    consented_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX leads_site_idx ON leads (tenant_id, site_id, consented_at);
CREATE INDEX leads_visitor_idx ON leads (tenant_id, visitor_id);
SELECT enable_tenant_rls('leads');

-- Metered provider tokens and their cost (millionths of a euro) per tenant per UTC day.
CREATE TABLE ai_usage (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    day date NOT NULL,
    calls integer NOT NULL DEFAULT 0,
    tokens_in bigint NOT NULL DEFAULT 0,
    tokens_out bigint NOT NULL DEFAULT 0,
    cost_micro_eur bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);
SELECT enable_tenant_rls('ai_usage');
