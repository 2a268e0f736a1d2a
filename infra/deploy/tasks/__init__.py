"""One task file per concern, included in order by `infra/deploy/deploy.py`."""
