"""REST routers, one per concept; all mounted under /api/v1."""
