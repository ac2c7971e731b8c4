"""Log-scale convergence plots of a `Comparison` (matplotlib, imported here only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainers.lab.run import Comparison

# KL values at this level are round-off (π*_β is exact to ~1e-15 in log space): clip them for the log axis.
PLOT_FLOOR = 1e-30
STYLE = {  # fixed colour/line per algorithm, so that figures compare across runs
    "nash-mp": ("C0", "-"), "nash-md": ("C1", "-."), "nash-md-decay": ("C2", "-"), "md": ("C3", "--"),
    "mpo": ("C4", ":"), "egpo": ("C5", "--"), "online-ipo": ("C6", "-"), "online-dpo": ("C7", "-"),
    "self-play": ("C8", "-"), "nash-mp-ema": ("C0", "-"), "nash-mp-ema-const": ("C9", "-"),
}


def plot_convergence(comp: Comparison, path: str | Path, *, title: str = "") -> Path:
    """Two panels: KL(π*_β‖π_t) against iterations and against preference queries (log y)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    lo, hi = np.inf, 0.0
    for name, tr in comp.traces.items():
        y = np.maximum(tr.kl, PLOT_FLOOR)
        lo, hi = min(lo, y.min()), max(hi, y.max())
        color, ls = STYLE.get(name, ("k", "-"))
        ax1.plot(np.arange(len(y)), y, ls, color=color, label=name, lw=1.4)
        ax2.plot(tr.queries, y, ls, color=color, label=name, lw=1.4)
    beta = comp.config.beta
    if "nash-mp" in comp.traces:
        T = np.arange(comp.config.steps + 1)
        bound = (1 + 2 * beta) ** (-T.astype(float)) / (2 * beta)
        ax1.plot(T, np.maximum(bound, PLOT_FLOOR), ":", color="k", lw=1, label="bound (1+2β)^-T/(2β)")
    for ax in (ax1, ax2):
        ax.set_ylim(lo / 3, hi * 3)
        ax.set_yscale("log")
        ax.axhline(1e-6, color="grey", lw=0.6)
        ax.grid(True, which="major", alpha=0.3)
    ax1.set_xlabel("iterations")
    ax2.set_xlabel("preference queries per context")
    ax1.set_ylabel("KL(π*_β ‖ π_t), mean over contexts")
    ax1.legend(fontsize=8, ncol=2)
    fig.suptitle(title or f"β = {beta}, η = {comp.eta:g}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
