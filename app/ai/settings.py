"""AI provider settings (prefix ``CLOOP_AI_``): which provider, its base URL, models,
timeouts and the price table the daily cost cap is computed from (RES-5, RATE-3)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The one AI endpoint the product may use: Nebius' EU Token Factory (RES-5).
NEBIUS_EU_BASE_URL = "https://api.tokenfactory.nebius.com/v1/"


def is_loopback_url(url: str) -> bool:
    """An http(s) URL whose host is a loopback address: a stand-in on this very machine."""
    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_provider_url(url: str) -> str:
    """Accept only the Nebius EU base URL, or a loopback stand-in (nothing leaves the host).

    Raises ValueError naming the rule for anything else, so a misconfigured deploy fails
    at start instead of sending visitor questions elsewhere.
    """
    normalized = url if url.endswith("/") else url + "/"
    if normalized == NEBIUS_EU_BASE_URL or is_loopback_url(normalized):
        return normalized
    raise ValueError(
        f"AI base URL {url!r} refused: only {NEBIUS_EU_BASE_URL} (Nebius, EU) is allowed"
    )


class AISettings(BaseSettings):
    """Provider choice and limits; `offline` answers extractively without any provider."""

    model_config = SettingsConfigDict(env_prefix="CLOOP_AI_", frozen=True)

    provider: Literal["nebius", "offline"] = "offline"
    embedder: Literal["minilm", "nebius"] = "minilm"
    base_url: str = NEBIUS_EU_BASE_URL
    api_key: SecretStr = SecretStr("")
    chat_model: str = "meta-llama/Llama-3.3-70B-Instruct"
    embedding_model: str = "Qwen/Qwen3-Embedding-8B"
    timeout_s: float = 30.0
    retries: int = 2
    max_answer_tokens: int = 600
    history_turns: int = 6
    # EUR per million tokens (input, output); a model missing here is priced at "default".
    prices_eur_per_mtok: dict[str, tuple[float, float]] = {
        "default": (0.15, 0.60),
        "meta-llama/Llama-3.3-70B-Instruct": (0.13, 0.40),
        "Qwen/Qwen3-Embedding-8B": (0.01, 0.0),
    }
    daily_cost_cap_eur: float = 5.0

    @field_validator("base_url")
    @classmethod
    def _eu_only(cls, value: str) -> str:
        return check_provider_url(value)

    def cost_micro_eur(self, model: str, tokens_in: int, tokens_out: int) -> int:
        """Cost of one call in millionths of a euro, from the price table."""
        price_in, price_out = self.prices_eur_per_mtok.get(
            model, self.prices_eur_per_mtok["default"]
        )
        return round(tokens_in * price_in + tokens_out * price_out)


@lru_cache(maxsize=1)
def get_ai_settings() -> AISettings:
    """The process-wide AI settings, read once."""
    return AISettings()
