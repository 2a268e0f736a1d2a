"""Sign-in: OAuth 2.0 / OpenID Connect (Google, Microsoft, GitHub), per-tenant SSO (OIDC, SAML)."""
