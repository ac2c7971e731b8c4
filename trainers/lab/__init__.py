"""The game lab: exact tabular/contextual NLHF dynamics (ground truth for the LM trainers)."""
