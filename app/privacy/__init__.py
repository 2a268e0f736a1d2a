"""Data-subject rights (GDPR Art. 15-21): export, erasure, restriction, objection, requests."""
