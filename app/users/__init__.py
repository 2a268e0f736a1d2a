"""Users: profiles of the people who sign in; one user may belong to several tenants."""
