"""`arena tournament` (placeholder until its issue lands)."""
