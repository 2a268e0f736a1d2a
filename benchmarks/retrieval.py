"""Retrieval over 100,000 chunks of 50 tenants (384 dims) in a local Postgres with pgvector.

Vectors are synthetic but shaped like embeddings of a knowledge base: each tenant has topic
centroids and its chunks scatter around them (unit vectors). Queries are new points near a
tenant's topics. Ground truth is exact cosine search in numpy over that tenant's site.

Measured, in one run on one database:
- the vector query exactly as the app issues it (tenant + site + model filter, HNSW with
  `hnsw.iterative_scan`), with whatever plan Postgres picks: recall@10 and latency;
- the same query forced through the HNSW index: recall@10 and latency;
- the baseline: exact search in Postgres (no index: sequential scan and sort);
- the app's whole hybrid retrieval (`knowledge.repository.search`: vectors + full text,
  reciprocal-rank fusion): latency.
Summary: `recall_at_10= p50_ms= p99_ms=` (the app's vector query) plus the others.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import struct
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from app.core import embedded
from app.core.db import Database
from app.core.migrations import apply_migrations
from app.core.tenancy import TenantId
from app.knowledge import repository as kb

MODEL = "all-MiniLM-L6-v2-onnx-int8"
DIMS = 384
TOPICS = 40
WORDS = ("delivery", "returns", "warranty", "price", "opening", "hours", "tent", "stove", "rental",
         "parking", "payment")  # fmt: skip
INDEX = (
    "CREATE INDEX kb_chunks_minilm_hnsw ON kb_chunks USING hnsw (embedding vector_cosine_ops)"
    " WHERE embedding_model = 'all-MiniLM-L6-v2-onnx-int8'"
)
NEAREST = (
    "SELECT id FROM kb_chunks WHERE tenant_id = %s AND site_id = %s"
    " AND embedding_model = 'all-MiniLM-L6-v2-onnx-int8'"
    " ORDER BY embedding <=> %s::vector LIMIT 10"
)


def unit(m: np.ndarray) -> np.ndarray:
    normalised: np.ndarray = (m / np.linalg.norm(m, axis=-1, keepdims=True)).astype(np.float32)
    return normalised


def make_vectors(rng: np.random.Generator, tenants: int, per_tenant: int) -> np.ndarray:
    """tenants x per_tenant unit vectors clustered around per-tenant topic centroids."""
    out = np.empty((tenants, per_tenant, DIMS), np.float32)
    for t in range(tenants):
        centroids = unit(rng.standard_normal((TOPICS, DIMS)))
        topic = rng.integers(0, TOPICS, per_tenant)
        out[t] = unit(centroids[topic] + 0.9 * unit(rng.standard_normal((per_tenant, DIMS))))
    return out


def binary_copy(rows: list[tuple[int, int, np.ndarray]]) -> bytes:
    """PostgreSQL binary COPY of (tenant int4, ord int4, embedding vector)."""
    parts = [b"PGCOPY\n\xff\r\n\x00", struct.pack(">ii", 0, 0)]
    vec_len = 4 + 4 * DIMS
    for tenant, ord_, vector in rows:
        parts.append(struct.pack(">hiiii", 3, 4, tenant, 4, ord_))
        parts.append(struct.pack(">ihh", vec_len, DIMS, 0) + vector.astype(">f4").tobytes())
    parts.append(struct.pack(">h", -1))
    return b"".join(parts)


async def load(db: Database, vectors: np.ndarray) -> list[tuple[TenantId, uuid.UUID]]:
    """Tenants, sites, one document each, and the chunks; the HNSW index built after."""
    tenants, per_tenant, _ = vectors.shape
    scopes: list[tuple[TenantId, uuid.UUID]] = []
    async with db.owner() as conn:
        await conn.execute("DROP INDEX kb_chunks_minilm_hnsw")
        await conn.execute("CREATE TEMP TABLE staging (t int, ord int, embedding vector(384))")
        for t in range(tenants):
            tenant = TenantId(uuid.uuid4())
            await conn.execute(
                "INSERT INTO tenants (id, name) VALUES (%s, %s)", [tenant, f"Bench {t}"]
            )
            cur = await conn.execute(
                "INSERT INTO sites (tenant_id, name, language) VALUES (%s, 'Site', 'en')"
                " RETURNING id",
                [tenant],
            )
            site = (await cur.fetchone())["id"]  # type: ignore[index]
            source = await kb.insert_source(conn, tenant, site, "upload", "bench")  # type: ignore[arg-type]
            doc = {"url": "upload:bench", "title": "Bench", "content_hash": "h"}
            await kb.upsert_document(conn, tenant, site, source, doc)  # type: ignore[arg-type]
            scopes.append((tenant, site))
            rows = [(t, i, vectors[t, i]) for i in range(per_tenant)]
            async with conn.cursor().copy(
                "COPY staging (t, ord, embedding) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                await copy.write(binary_copy(rows))
        await conn.execute(
            "CREATE TEMP TABLE scope (t int, tenant_id uuid, site_id uuid, document_id uuid)"
        )
        documents = []
        for tenant, _ in scopes:
            cur = await conn.execute("SELECT id FROM kb_documents WHERE tenant_id = %s", [tenant])
            documents.append((await cur.fetchone())["id"])  # type: ignore[index]
        async with conn.cursor().copy("COPY scope FROM STDIN") as copy:
            for t, ((tenant, site), document) in enumerate(zip(scopes, documents, strict=True)):
                await copy.write_row((t, tenant, site, document))
        words = " ".join(WORDS)
        await conn.execute(
            "INSERT INTO kb_chunks (tenant_id, site_id, document_id, ord, content, tsv,"
            " embedding, embedding_model)"
            " SELECT s.tenant_id, s.site_id, s.document_id, st.ord, c.content,"
            " to_tsvector('english', c.content), st.embedding, %s"
            " FROM staging st JOIN scope s USING (t),"
            " LATERAL (SELECT 'chunk ' || st.ord || ' about '"
            "   || split_part(%s, ' ', 1 + st.ord %% 11) AS content) c",
            [MODEL, words],
        )
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute(INDEX)
        await conn.execute("ANALYZE kb_chunks")
    return scopes


async def timed_query(
    db: Database, scope: tuple[TenantId, uuid.UUID], vector: np.ndarray, settings: list[str]
) -> tuple[float, list[int]]:
    tenant, site = scope
    async with db.tenant(tenant) as conn:
        for setting in settings:
            await conn.execute(setting)
        start = time.perf_counter()
        cur = await conn.execute(NEAREST, [tenant, site, kb.vector_literal(vector)])
        ids = [int(r["id"]) for r in await cur.fetchall()]
        return (time.perf_counter() - start) * 1000, ids


async def plan_of(db: Database, scope: tuple[TenantId, uuid.UUID], vector: np.ndarray,
                  settings: list[str]) -> str:  # fmt: skip
    tenant, site = scope
    async with db.tenant(tenant) as conn:
        for setting in settings:
            await conn.execute(setting)
        cur = await conn.execute("EXPLAIN " + NEAREST, [tenant, site, kb.vector_literal(vector)])
        plan = " ".join(str(r["QUERY PLAN"]) for r in await cur.fetchall())
    return (
        "hnsw"
        if "kb_chunks_minilm_hnsw" in plan
        else ("seq" if "Seq Scan" in plan else "btree+sort")
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(7)
    per_tenant = args.chunks // args.tenants
    vectors = make_vectors(rng, args.tenants, per_tenant)
    with tempfile.TemporaryDirectory(prefix="cloop-bench-") as tmp:
        server = embedded.start(Path(tmp) / "pg", delete_on_exit=True)
        try:
            server.prepare("bench")
            await apply_migrations(server.owner_url("bench"))
            db = Database(
                server.app_url("bench"), server.owner_url("bench"), min_size=1, max_size=4
            )
            await db.open()
            started = time.perf_counter()
            scopes = await load(db, vectors)
            print(f"loaded {args.tenants * per_tenant} chunks of {args.tenants} tenants"
                  f" and built HNSW in {time.perf_counter() - started:.1f} s")  # fmt: skip
            await run_queries(db, rng, vectors, scopes, args.queries)
            await db.close()
        finally:
            server.stop()


async def run_queries(
    db: Database,
    rng: np.random.Generator,
    vectors: np.ndarray,
    scopes: list[tuple[TenantId, uuid.UUID]],
    queries: int,
) -> None:
    app = ["SET LOCAL hnsw.iterative_scan = relaxed_order", "SET LOCAL hnsw.ef_search = 100"]
    forced = [*app, "SET LOCAL enable_bitmapscan = off", "SET LOCAL enable_seqscan = off",
              "SET LOCAL enable_sort = off"]  # fmt: skip
    exact = ["SET LOCAL enable_indexscan = off", "SET LOCAL enable_bitmapscan = off"]
    variants = {"app": app, "hnsw": forced, "exact": exact}
    async with db.owner() as conn:
        cur = await conn.execute("SELECT min(id) AS first FROM kb_chunks")
        first = int((await cur.fetchone())["first"])  # type: ignore[index]
    per_tenant = vectors.shape[1]
    latency: dict[str, list[float]] = {k: [] for k in variants}
    recall: dict[str, list[float]] = {k: [] for k in variants}
    hybrid: list[float] = []
    for q in range(queries):
        t = q % len(scopes)
        base = vectors[t, rng.integers(0, per_tenant)]
        query = unit(base + 0.5 * unit(rng.standard_normal(DIMS)))
        truth = set((np.argsort(-(vectors[t] @ query))[:10] + first + t * per_tenant).tolist())
        for name, settings in variants.items():
            ms, ids = await timed_query(db, scopes[t], query, settings)
            latency[name].append(ms)
            recall[name].append(len(truth & set(ids)) / 10)
        async with db.tenant(scopes[t][0]) as conn:
            start = time.perf_counter()
            await kb.search(conn, scopes[t][0], scopes[t][1], text="delivery price", vector=query,
                            model=MODEL, config="english", limit=5, max_distance=2.0)  # fmt: skip
            hybrid.append((time.perf_counter() - start) * 1000)
    plans = {name: await plan_of(db, scopes[0], vectors[0, 0], s) for name, s in variants.items()}
    for name in variants:
        figures = f"recall@10={statistics.mean(recall[name]):.3f} p50={pct(latency[name], 0.5):.2f}"
        print(
            f"{name:6s} plan={plans[name]:10s} {figures} ms p99={pct(latency[name], 0.99):.2f} ms"
        )
    print(f"hybrid (vector + full text, RRF) p50={pct(hybrid, 0.5):.2f} ms"
          f" p99={pct(hybrid, 0.99):.2f} ms")  # fmt: skip
    print(
        f"recall_at_10={statistics.mean(recall['app']):.3f} p50_ms={pct(latency['app'], 0.5):.2f}"
        f" p99_ms={pct(latency['app'], 0.99):.2f}"
        f" hnsw_recall_at_10={statistics.mean(recall['hnsw']):.3f}"
        f" hnsw_p50_ms={pct(latency['hnsw'], 0.5):.2f}"
        f" exact_p50_ms={pct(latency['exact'], 0.5):.2f}"
        f" hybrid_p50_ms={pct(hybrid, 0.5):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--queries", type=int, default=300)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
