"""Public endpoints: no partner token, rate-limited per client IP."""
