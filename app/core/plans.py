"""Plans and the features they include: gating is enforced at the API, whatever the UI shows."""

from __future__ import annotations

from enum import StrEnum


class Plan(StrEnum):
    FREE = "free"
    PRO = "pro"
    TEAM = "team"


class Feature(StrEnum):
    AUDIT_LOG = "audit_log"
    SSO = "sso"
    CRAWLER = "crawler"
    ANALYTICS = "analytics"
    LEADS = "leads"


_PRO = frozenset({Feature.AUDIT_LOG, Feature.CRAWLER, Feature.ANALYTICS, Feature.LEADS})
PLAN_FEATURES: dict[Plan, frozenset[Feature]] = {
    Plan.FREE: frozenset(),
    Plan.PRO: _PRO,
    Plan.TEAM: _PRO | {Feature.SSO},
}
SITE_LIMITS: dict[Plan, int] = {Plan.FREE: 1, Plan.PRO: 5, Plan.TEAM: 25}


def cheapest_plan_with(feature: Feature) -> Plan:
    """The plan to name in a refusal, so the message says what would unlock the feature."""
    return next(plan for plan in Plan if feature in PLAN_FEATURES[plan])
