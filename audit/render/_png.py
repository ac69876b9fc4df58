"""Figures to inline images: the HTML report embeds them, so it makes no network requests."""

from __future__ import annotations

import base64
import io

from matplotlib.figure import Figure

from audit.render._readable import make_readable


def figure_to_data_uri(figure: Figure, *, dpi: int = 110) -> str:
    """A PNG `data:` URI of `figure` (no metadata, nothing fetched when the page opens), made readable
    first: no text smaller than the page's footnotes, no legend over the data."""
    make_readable(figure, dpi=dpi)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
