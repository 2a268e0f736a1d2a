"""SQL of the knowledge base (under RLS; every function takes the tenant scope)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from psycopg import sql

from app.core.db import TenantConnection
from app.core.tenancy import TenantId

# Full-text configurations by site language; others use 'simple' (no stemming).
TS_CONFIGS = {
    "en": "english",
    "fi": "finnish",
    "sv": "swedish",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "nl": "dutch",
    "da": "danish",
    "nb": "norwegian",
    "pt": "portuguese",
}
_JOB_COLUMNS = sql.SQL(
    "id, site_id, source_id, status, pages_done, pages_unchanged, pages_skipped,"
    " chunks_done, detail, created_at, finished_at"
)
# Transaction-local: HNSW keeps scanning until enough rows pass the tenant filter.
_HNSW_SETTINGS = (
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),"
    " set_config('hnsw.ef_search', '100', true)"
)


def ts_config(language: str) -> str:
    return TS_CONFIGS.get(language.split("-", maxsplit=1)[0].lower(), "simple")


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form; passed as a parameter and cast with ::vector."""
    return "[" + ",".join(f"{x:.6f}" for x in vector.tolist()) + "]"


async def site_language(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID
) -> str | None:
    cur = await conn.execute(
        "SELECT language FROM sites WHERE tenant_id = %s AND id = %s", [tenant_id, site_id]
    )
    row = await cur.fetchone()
    return str(row["language"]) if row else None


async def find_source(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, kind: str, location: str
) -> uuid.UUID | None:
    """The site's existing source for this location: a re-crawl reuses it."""
    cur = await conn.execute(
        "SELECT id FROM kb_sources WHERE tenant_id = %s AND site_id = %s AND kind = %s"
        " AND location = %s ORDER BY created_at LIMIT 1",
        [tenant_id, site_id, kind, location],
    )
    row = await cur.fetchone()
    return uuid.UUID(str(row["id"])) if row else None


async def insert_source(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, kind: str, location: str
) -> uuid.UUID:
    cur = await conn.execute(
        "INSERT INTO kb_sources (tenant_id, site_id, kind, location) VALUES (%s, %s, %s, %s)"
        " RETURNING id",
        [tenant_id, site_id, kind, location],
    )
    row = await cur.fetchone()
    assert row is not None
    return uuid.UUID(str(row["id"]))


async def get_source(
    conn: TenantConnection, tenant_id: TenantId, source_id: uuid.UUID
) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT id, site_id, kind, location FROM kb_sources WHERE tenant_id = %s AND id = %s",
        [tenant_id, source_id],
    )
    return await cur.fetchone()


async def insert_job(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID, source_id: uuid.UUID
) -> dict[str, Any]:
    cur = await conn.execute(
        sql.SQL(
            "INSERT INTO kb_jobs (tenant_id, site_id, source_id) VALUES (%s, %s, %s) RETURNING {}"
        ).format(_JOB_COLUMNS),
        [tenant_id, site_id, source_id],
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def get_job(
    conn: TenantConnection, tenant_id: TenantId, job_id: uuid.UUID
) -> dict[str, Any] | None:
    cur = await conn.execute(
        sql.SQL("SELECT {} FROM kb_jobs WHERE tenant_id = %s AND id = %s").format(_JOB_COLUMNS),
        [tenant_id, job_id],
    )
    return await cur.fetchone()


async def update_job(
    conn: TenantConnection, tenant_id: TenantId, job_id: uuid.UUID, **changes: Any
) -> None:
    """Set progress columns; names come from the caller's keywords, values are parameters."""
    finished = changes.get("status") in ("done", "failed")
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(col), sql.Placeholder()) for col in changes
    )
    query = sql.SQL("UPDATE kb_jobs SET {}{} WHERE tenant_id = %s AND id = %s").format(
        assignments, sql.SQL(", finished_at = now()" if finished else "")
    )
    await conn.execute(query, [*changes.values(), tenant_id, job_id])


async def document_hashes(
    conn: TenantConnection, tenant_id: TenantId, source_id: uuid.UUID
) -> dict[str, tuple[uuid.UUID, str]]:
    """url -> (document id, content hash) of a source: what a re-crawl compares against."""
    cur = await conn.execute(
        "SELECT id, url, content_hash FROM kb_documents WHERE tenant_id = %s AND source_id = %s",
        [tenant_id, source_id],
    )
    return {row["url"]: (row["id"], row["content_hash"]) for row in await cur.fetchall()}


async def upsert_document(
    conn: TenantConnection,
    tenant_id: TenantId,
    site_id: uuid.UUID,
    source_id: uuid.UUID,
    values: dict[str, Any],
) -> uuid.UUID:
    """Insert or update the document of (source, url); its old chunks are removed."""
    cur = await conn.execute(
        "INSERT INTO kb_documents (id, tenant_id, site_id, source_id, url, title, content_hash,"
        " object_key, content_type, byte_size) VALUES (coalesce(%s, gen_random_uuid()),"
        " %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (source_id, url) DO UPDATE SET title = excluded.title,"
        " content_hash = excluded.content_hash, updated_at = now() RETURNING id",
        [
            values.get("id"),
            tenant_id,
            site_id,
            source_id,
            values["url"],
            values["title"][:500],
            values["content_hash"],
            values.get("object_key"),
            values.get("content_type"),
            values.get("byte_size"),
        ],
    )
    row = await cur.fetchone()
    assert row is not None
    document_id = uuid.UUID(str(row["id"]))
    await conn.execute(
        "DELETE FROM kb_chunks WHERE tenant_id = %s AND document_id = %s", [tenant_id, document_id]
    )
    return document_id


async def insert_chunks(
    conn: TenantConnection,
    tenant_id: TenantId,
    site_id: uuid.UUID,
    document_id: uuid.UUID,
    *,
    chunks: Sequence[str],
    vectors: np.ndarray,
    model: str,
    config: str,
) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO kb_chunks (tenant_id, site_id, document_id, ord, content, tsv,"
            " embedding, embedding_model)"
            " VALUES (%s, %s, %s, %s, %s, to_tsvector(%s::regconfig, %s), %s::vector, %s)",
            [
                (tenant_id, site_id, document_id, n, text, config, text, vector_literal(vec), model)
                for n, (text, vec) in enumerate(zip(chunks, vectors, strict=True))
            ],
        )


async def delete_documents(
    conn: TenantConnection, tenant_id: TenantId, document_ids: Sequence[uuid.UUID]
) -> list[str]:
    """Delete documents (chunks go with them); returns their object keys to delete too."""
    cur = await conn.execute(
        "DELETE FROM kb_documents WHERE tenant_id = %s AND id = ANY(%s) RETURNING object_key",
        [tenant_id, list(document_ids)],
    )
    return [row["object_key"] for row in await cur.fetchall() if row["object_key"]]


async def list_documents(
    conn: TenantConnection, tenant_id: TenantId, site_id: uuid.UUID
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT d.id, d.source_id, s.kind, d.url, d.title, d.content_type, d.byte_size,"
        " d.updated_at, (SELECT count(*) FROM kb_chunks c WHERE c.document_id = d.id) AS chunks"
        " FROM kb_documents d JOIN kb_sources s ON s.id = d.source_id"
        " WHERE d.tenant_id = %s AND d.site_id = %s ORDER BY d.updated_at DESC, d.id",
        [tenant_id, site_id],
    )
    return await cur.fetchall()


async def search(
    conn: TenantConnection,
    tenant_id: TenantId,
    site_id: uuid.UUID,
    *,
    text: str,
    vector: np.ndarray,
    model: str,
    config: str,
    limit: int,
    max_distance: float,
) -> list[dict[str, Any]]:
    """Hybrid retrieval: HNSW nearest neighbours filtered to the tenant and site (iterative
    scan keeps looking until enough rows pass the filter) fused with full-text matches by
    reciprocal rank. The model name is a literal so the planner can use its partial index."""
    query = sql.SQL(
        """
        WITH nearest AS (
            SELECT id, embedding <=> %(vec)s::vector AS distance FROM kb_chunks
            WHERE tenant_id = %(tenant)s AND site_id = %(site)s AND embedding_model = {model}
            ORDER BY embedding <=> %(vec)s::vector LIMIT %(pool)s
        ), vector_ranked AS (
            SELECT id, row_number() OVER (ORDER BY distance) AS rank FROM nearest
            WHERE distance <= %(max_distance)s
        ), words AS (
            SELECT to_tsquery({config}::regconfig,
                               coalesce(string_agg(quote_literal(w), ' | '), '')) AS q
            FROM unnest(tsvector_to_array(to_tsvector({config}::regconfig, %(text)s))) AS w
        ), text_ranked AS (
            SELECT c.id, row_number() OVER (ORDER BY ts_rank_cd(c.tsv, words.q) DESC, c.id)
                AS rank
            FROM kb_chunks c, words
            WHERE c.tenant_id = %(tenant)s AND c.site_id = %(site)s AND c.tsv @@ words.q
            ORDER BY ts_rank_cd(c.tsv, words.q) DESC LIMIT %(pool)s
        ), fused AS (
            SELECT id, sum(1.0 / (60 + rank)) AS score FROM (
                SELECT * FROM vector_ranked UNION ALL SELECT * FROM text_ranked
            ) AS ranked GROUP BY id
        )
        SELECT c.id, c.content, d.title, d.url, f.score
        FROM fused f JOIN kb_chunks c ON c.id = f.id JOIN kb_documents d ON d.id = c.document_id
        WHERE c.tenant_id = %(tenant)s
        ORDER BY f.score DESC, c.id LIMIT %(limit)s
        """
    ).format(model=sql.Literal(model), config=sql.Literal(config))
    params = {
        "vec": vector_literal(vector),
        "tenant": tenant_id,
        "site": site_id,
        "pool": max(limit * 4, 20),
        "limit": limit,
        "text": text,
        "max_distance": max_distance,
    }
    async with conn.pipeline():  # the settings and the query in one round trip
        await conn.execute(_HNSW_SETTINGS)
        cur = await conn.execute(query, params)
        return await cur.fetchall()
