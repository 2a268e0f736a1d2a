"""Sign-in settings (prefix ``CLOOP_SIGNIN_``): provider clients and endpoints.

Every provider URL is a setting, so production and the stand-ins differ only in
configuration; a provider without a client id is simply not offered.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class SigninSettings(BaseSettings):
    """OAuth clients of the product and the limits of a sign-in flow."""

    model_config = SettingsConfigDict(env_prefix="CLOOP_SIGNIN_", frozen=True)

    # Where providers send the browser back: the dashboard page that posts code and state
    # to POST /api/signin/callback.
    redirect_uri: str = "http://127.0.0.1:8000/signin/callback"
    # Public base URL of the API; SAML service-provider entity ids and ACS URLs derive from it.
    public_url: str = "http://127.0.0.1:8000"

    google_client_id: str = ""
    google_client_secret: SecretStr = SecretStr("")
    google_issuer: str = "https://accounts.google.com"
    microsoft_client_id: str = ""
    microsoft_client_secret: SecretStr = SecretStr("")
    # The multi-tenant authority; the ID token's issuer is checked against its directory (tid).
    microsoft_issuer: str = "https://login.microsoftonline.com/common/v2.0"
    github_client_id: str = ""
    github_client_secret: SecretStr = SecretStr("")
    github_authorize_url: str = "https://github.com/login/oauth/authorize"
    github_token_url: str = "https://github.com/login/oauth/access_token"  # noqa: S105 - a URL
    github_api_url: str = "https://api.github.com"
    # Per-tenant Entra ID SSO: the issuer of one directory.
    entra_issuer_template: str = "https://login.microsoftonline.com/{directory}/v2.0"

    flow_ttl_seconds: int = 600
    clock_skew_seconds: int = 120
    http_timeout_seconds: float = 10.0


@lru_cache(maxsize=1)
def get_signin_settings() -> SigninSettings:
    """The process-wide sign-in settings, read once."""
    return SigninSettings()
