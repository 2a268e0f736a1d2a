"""The platform every domain package stands on: settings, database, security, errors."""
