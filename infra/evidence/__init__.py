"""The evidence report: every claim of claims.toml, the tests that prove it, their last result."""
