"""Production in Hetzner Helsinki: two web hosts (nginx + app) behind a load balancer, one database.

Hosts and groups only; addresses come from `inventories/state/production.json`, written by
`cloop-ops provision production`. Data: `group_data/all.py`.
"""

from infra.inventory import state_hosts

_hosts = state_hosts(__file__)

edge = _hosts("cloop-prod-web-1", "cloop-prod-web-2")
app = _hosts("cloop-prod-web-1", "cloop-prod-web-2")
db = _hosts("cloop-prod-db-1")
debian13 = _hosts("cloop-prod-web-1", "cloop-prod-web-2", "cloop-prod-db-1")
