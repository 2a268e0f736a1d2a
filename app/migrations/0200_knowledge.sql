-- Knowledge base: sources (a crawl or an upload), documents, chunks with full-text and
-- vector columns, and ingestion jobs with visible progress. Vectors live here, in the local
-- Postgres (RES-6), each with the name of the model that made it.

CREATE TABLE kb_sources (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    site_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('crawl', 'upload')),
    location text NOT NULL CHECK (length(location) BETWEEN 1 AND 2048),
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, site_id) REFERENCES sites (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, id)
);
CREATE INDEX kb_sources_site_idx ON kb_sources (tenant_id, site_id);
SELECT enable_tenant_rls('kb_sources');

CREATE TABLE kb_documents (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    site_id uuid NOT NULL,
    source_id uuid NOT NULL,
    url text NOT NULL,
    title text NOT NULL,
    content_hash text NOT NULL,
    -- the original file in object storage (uploads), under tenants/<tenant_id>/
    object_key text,
    content_type text,
    byte_size integer,
    updated_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, source_id) REFERENCES kb_sources (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (source_id, url),
    UNIQUE (tenant_id, id)
);
CREATE INDEX kb_documents_site_idx ON kb_documents (tenant_id, site_id);
SELECT enable_tenant_rls('kb_documents');

CREATE TABLE kb_chunks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    site_id uuid NOT NULL,
    document_id uuid NOT NULL,
    ord integer NOT NULL,
    content text NOT NULL,
    tsv tsvector NOT NULL,
    embedding vector(384) NOT NULL,
    embedding_model text NOT NULL,
    FOREIGN KEY (tenant_id, document_id) REFERENCES kb_documents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX kb_chunks_document_idx ON kb_chunks (document_id);
CREATE INDEX kb_chunks_site_idx ON kb_chunks (tenant_id, site_id);
CREATE INDEX kb_chunks_tsv_idx ON kb_chunks USING gin (tsv);
-- One HNSW index per embedding model (vectors of different models never compare).
CREATE INDEX kb_chunks_minilm_hnsw ON kb_chunks USING hnsw (embedding vector_cosine_ops)
    WHERE embedding_model = 'all-MiniLM-L6-v2-onnx-int8';
CREATE INDEX kb_chunks_nebius_qwen3_hnsw ON kb_chunks USING hnsw (embedding vector_cosine_ops)
    WHERE embedding_model = 'Qwen/Qwen3-Embedding-8B';
SELECT enable_tenant_rls('kb_chunks');

CREATE TABLE kb_jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    site_id uuid NOT NULL,
    source_id uuid NOT NULL,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'done', 'failed')),
    pages_done integer NOT NULL DEFAULT 0,
    pages_unchanged integer NOT NULL DEFAULT 0,
    pages_skipped integer NOT NULL DEFAULT 0,
    chunks_done integer NOT NULL DEFAULT 0,
    detail text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    FOREIGN KEY (tenant_id, source_id) REFERENCES kb_sources (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX kb_jobs_site_idx ON kb_jobs (tenant_id, site_id, created_at DESC);
SELECT enable_tenant_rls('kb_jobs');
