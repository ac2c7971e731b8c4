"""Response classes of the sequence worlds: a fixed function of a response's text.

The contextual low-rank game of Tiapkin et al. 2025 (arXiv 2505.19731) is lifted to
sequences by giving every response y a class c(y) in {0, ..., Y−1} and letting the judge
answer P(y ≻ y' | x) = P_game[x, c(y), c(y')]. The class is read from the first character
of the text, so it is a function of the first token: the exact class distribution of a
transformer policy is its next-token distribution after the prompt, summed within classes.

    c(y) = (ord(y[0]) − ord(letters[0])) mod Y      for a non-empty y,
    c("") = 0,

so letters[i] (consecutive characters, e.g. "ABCDEF") is class i and every other text has
a class too (no response is ever "invalid").
"""

from __future__ import annotations


def class_of_text(text: str, letters: str) -> int:
    """Class of a response text; `letters` = the Y consecutive class characters, e.g. "ABCDEF"."""
    if len(letters) < 2:
        raise ValueError(f"need at least two class letters; got {letters!r}")
    if not text:
        return 0
    return (ord(text[0]) - ord(letters[0])) % len(letters)
