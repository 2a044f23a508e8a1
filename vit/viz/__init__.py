"""Figures. Each `plot_*` returns a matplotlib `Figure` (never shows it); `save_figure` writes it.

Figures are built with `matplotlib.figure.Figure` rather than pyplot, so no global state or GUI
backend is involved and several threads (a web server's) can draw at once.
"""

from pathlib import Path

from matplotlib.figure import Figure


def save_figure(figure: Figure, path, dpi: int = 110) -> Path:
    """Write `figure` as PNG to `path`, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
