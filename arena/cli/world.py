"""`arena world` (placeholder until its issue lands)."""
