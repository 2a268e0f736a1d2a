"""Tenants: the customer account, its plan, members, roles and invitations."""
