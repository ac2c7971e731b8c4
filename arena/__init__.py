"""nash-arena: evaluate and train language-model policies with game theory.

`arena.core` holds the pure analytics (Bradley–Terry/Elo, preference matrix, cycles,
maximum-entropy Nash); the rest of `arena` is the shell (store, tournament, reports, CLI).
"""

__version__ = "0.1.0"
