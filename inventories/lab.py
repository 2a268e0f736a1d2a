"""The local lab: production's shape in miniature (a web host and a database host).

Hosts and groups only; addresses come from `inventories/state/lab.json` (git-ignored), written
when `./scripts/lab up` provisions through the Hetzner API stand-in. Data: `group_data/all.py`.
"""

from infra.inventory import state_hosts

_hosts = state_hosts(__file__)

edge = _hosts("cloop-lab-web-1")
app = _hosts("cloop-lab-web-1")
db = _hosts("cloop-lab-db-1")
debian13 = _hosts("cloop-lab-web-1", "cloop-lab-db-1")
