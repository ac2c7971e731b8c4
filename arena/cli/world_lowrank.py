"""`arena world lowrank` (placeholder until its issue lands)."""
