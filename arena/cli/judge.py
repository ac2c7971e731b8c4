"""`arena judge` (placeholder until its issue lands)."""
