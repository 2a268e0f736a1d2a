-- Data-subject rights (GDPR Art. 15-21): request tracking, erasure markers, restriction and
-- objection flags, per-tenant conversation retention.

-- Every data-subject request with its deadline: 30 days, extendable once to 90 with a notice
-- to the data subject (Art. 12(3)). Closed requests keep the date they were answered.
CREATE TABLE data_subject_requests (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    subject_kind text NOT NULL CHECK (subject_kind IN ('account', 'tenant', 'visitor')),
    -- user id, tenant id, visitor id or e-mail; replaced by a pseudonym once the subject is erased
    subject_ref text NOT NULL CHECK (length(subject_ref) BETWEEN 1 AND 320),
    right_invoked text NOT NULL CHECK (right_invoked IN (
        'access', 'portability', 'rectification', 'erasure', 'restriction', 'objection')),
    received_at timestamptz NOT NULL DEFAULT now(),
    due_at timestamptz NOT NULL,
    extended_at timestamptz,
    extension_notice text CHECK (length(extension_notice) BETWEEN 1 AND 2000),
    status text NOT NULL DEFAULT 'received'
        CHECK (status IN ('received', 'in_progress', 'completed', 'refused')),
    closed_at timestamptz,
    CHECK ((extended_at IS NULL) = (extension_notice IS NULL)),
    CHECK (due_at <= received_at + CASE WHEN extended_at IS NULL
                                         THEN interval '30 days' ELSE interval '90 days' END),
    CHECK ((status IN ('completed', 'refused')) = (closed_at IS NOT NULL))
);
CREATE INDEX data_subject_requests_open_idx ON data_subject_requests (due_at)
    WHERE status IN ('received', 'in_progress');
SELECT enable_tenant_rls('data_subject_requests');

-- An erased account or tenant: deactivated from the moment the row exists, purged by the job.
-- Once purged only the pseudonym remains (subject_id is cleared), so this table never keeps a
-- reference to the person or customer; the app may read and add markers, never change them.
CREATE TABLE privacy_erasures (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subject_kind text NOT NULL CHECK (subject_kind IN ('account', 'tenant')),
    subject_id uuid,
    subject_pseudonym text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    due_at timestamptz NOT NULL DEFAULT now() + interval '30 days',
    purged_at timestamptz,
    CHECK ((purged_at IS NULL) = (subject_id IS NOT NULL))
);
CREATE UNIQUE INDEX privacy_erasures_pending_key ON privacy_erasures (subject_kind, subject_id)
    WHERE subject_id IS NOT NULL;
GRANT SELECT, INSERT ON privacy_erasures TO cloop_app;

-- Art. 18 restriction (kind 'restriction': kept, not processed) and Art. 21 objection (kind
-- 'objection': no processing based on legitimate interest). visitor_id NULL = the whole tenant.
CREATE TABLE processing_restrictions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    visitor_id text CHECK (length(visitor_id) BETWEEN 1 AND 200),
    kind text NOT NULL CHECK (kind IN ('restriction', 'objection')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX processing_restrictions_key
    ON processing_restrictions (tenant_id, kind, coalesce(visitor_id, ''));
SELECT enable_tenant_rls('processing_restrictions');

-- Per-tenant retention of visitor conversations (default 12 months), enforced by the job.
CREATE TABLE privacy_settings (
    tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
    conversation_retention_months integer NOT NULL DEFAULT 12
        CHECK (conversation_retention_months BETWEEN 1 AND 120),
    updated_at timestamptz NOT NULL DEFAULT now()
);
SELECT enable_tenant_rls('privacy_settings');
