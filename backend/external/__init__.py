"""The API for external systems (MES, monitoring, ERP) under /api/v1/external, authenticated by API key."""
