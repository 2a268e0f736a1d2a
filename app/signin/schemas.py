"""Request and response bodies of sign-in and SSO configuration."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

Text = Annotated[str, Field(min_length=1, max_length=255)]


class ProviderName(StrEnum):
    """The product-wide sign-in providers."""

    GOOGLE = "google"
    MICROSOFT = "microsoft"
    GITHUB = "github"


class ProvidersOut(BaseModel):
    providers: list[ProviderName]


class StartOut(BaseModel):
    """Send the browser to `authorization_url`; the flow expires after `expires_in` seconds."""

    authorization_url: str
    expires_in: int


class SsoStartIn(BaseModel):
    tenant_id: uuid.UUID


class CallbackIn(BaseModel):
    """What the provider appended to the redirect URI."""

    state: str = Field(min_length=1, max_length=512)
    code: str = Field(min_length=1, max_length=4096)


class OidcKind(StrEnum):
    ENTRA = "entra"
    GOOGLE_WORKSPACE = "google_workspace"


class OidcSsoIn(BaseModel):
    """Entra ID: `directory` is the directory (tenant) id; Google Workspace: the domain."""

    protocol: Literal["oidc"]
    kind: OidcKind
    directory: str = Field(min_length=3, max_length=255, pattern=r"^[A-Za-z0-9.-]+$")
    client_id: Text
    client_secret: str = Field(min_length=1, max_length=1024)


class SamlSsoIn(BaseModel):
    """Either the IdP's metadata XML, or its entity id, SSO URL and signing certificate."""

    protocol: Literal["saml"]
    metadata_xml: str | None = Field(default=None, max_length=200_000)
    idp_entity_id: str | None = Field(default=None, min_length=1, max_length=1024)
    idp_sso_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://")
    idp_certificate: str | None = Field(default=None, max_length=16384)

    @model_validator(mode="after")
    def _one_source(self) -> SamlSsoIn:
        explicit = (self.idp_entity_id, self.idp_sso_url, self.idp_certificate)
        if (self.metadata_xml is None) == (None in explicit):
            raise ValueError(
                "give metadata_xml, or all of idp_entity_id, idp_sso_url and idp_certificate"
            )
        return self


SsoConfigIn = Annotated[OidcSsoIn | SamlSsoIn, Field(discriminator="protocol")]


class SsoConfigOut(BaseModel):
    """The tenant's SSO configuration (never the client secret) and what to give the IdP."""

    protocol: Literal["oidc", "saml"]
    oidc_kind: OidcKind | None = None
    oidc_directory: str | None = None
    oidc_client_id: str | None = None
    saml_idp_entity_id: str | None = None
    saml_idp_sso_url: str | None = None
    sp_entity_id: str
    sp_acs_url: str
    oidc_redirect_uri: str
    updated_at: datetime
