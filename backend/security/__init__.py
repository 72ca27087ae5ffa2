"""HTTP hardening: security headers, CORS and request size limits."""
