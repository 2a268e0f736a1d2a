"""Staging in Hetzner Helsinki: one host holding every role.

Hosts and groups only; addresses come from `inventories/state/staging.json`, written by
`cloop-ops provision staging`. Data: `group_data/all.py`.
"""

from infra.inventory import state_hosts

_hosts = state_hosts(__file__)

edge = _hosts("cloop-stg-all-1")
app = _hosts("cloop-stg-all-1")
db = _hosts("cloop-stg-all-1")
debian13 = _hosts("cloop-stg-all-1")
