"""`arena rate` (placeholder until its issue lands)."""
