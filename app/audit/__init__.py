"""The audit trail: authentication events and site change history (LOG-1, LOG-2, LOG-3)."""
