"""Sites: a tenant's websites and their settings (name, origins, persona, language, phase)."""
