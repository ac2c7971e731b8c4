"""Synthetic worlds: prompts, tiny checkpoints and a judge, built offline in seconds.

`arena.worlds.raters` (three rater types whose tastes cycle) is the tournament's world;
other modules add worlds for the trainers. Each world writes a directory that scripts can
drive: `DIR/ckpts/`, `DIR/prompts.jsonl`, `DIR/judge.txt` (a judge spec).
"""
