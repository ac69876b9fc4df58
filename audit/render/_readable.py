"""Make a figure readable where the HTML report shows it: no text smaller than the page's footnotes,
no legend over the data.

The report shows a PNG at most `max_width_px` wide (wider images are scaled down by the browser), so
a font's displayed size depends on the figure's final width. `make_readable` raises every text below
`min_px` displayed pixels to that size, moves every legend that covers an axes outside it (to the
right of the rightmost axes of its row, else below its axes' tick labels), and thins numeric x ticks
whose larger labels then run into each other.
The figure functions stay plain matplotlib; this runs once, where figures become images.
"""

from __future__ import annotations

import warnings

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator, MaxNLocator

FOOTNOTE_PX = 12  # the report's --footnote CSS size
MAX_WIDTH_PX = 900  # the report's figure column (main's width less its padding)


def _renderer(fig: Figure):
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def _legends(fig: Figure) -> list[tuple[object, Legend]]:
    out = [(ax, ax.get_legend()) for ax in fig.axes if ax.get_legend() is not None]
    return out + [(fig, legend) for legend in fig.legends]


def covers_data(fig: Figure, legend: Legend, renderer=None) -> bool:
    """True when `legend` overlaps the plotting area of any visible axes of `fig`."""
    renderer = renderer or _renderer(fig)
    box = legend.get_window_extent(renderer)
    return any(ax.get_visible() and ax.axison and box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)


def _rightmost(fig: Figure, ax, renderer) -> bool:
    """No other visible axes lies to the right of `ax` at the same height."""
    mine = ax.get_window_extent(renderer)
    for other in fig.axes:
        if other is ax or not other.get_visible() or not other.axison:
            continue
        box = other.get_window_extent(renderer)
        if box.x0 >= mine.x1 - 1 and box.y0 < mine.y1 and box.y1 > mine.y0:
            return False
    return True


def _move(fig: Figure, ax, legend: Legend, renderer) -> None:
    handles = list(legend.legend_handles)
    labels = [t.get_text() for t in legend.get_texts()]
    options = dict(fontsize=legend.get_texts()[0].get_fontsize() if labels else None, frameon=False,
                   title=legend.get_title().get_text() or None)
    legend.remove()
    if _rightmost(fig, ax, renderer):
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **options)
        return
    bottom = ax.get_tightbbox(renderer).y0  # below the tick labels and the x label
    y = ax.transAxes.inverted().transform((0.0, bottom))[1]
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, y - 0.02), borderaxespad=0.0,
              ncols=min(len(labels), 3) or 1, **options)


def _raise_small_text(fig: Figure, *, dpi: float, min_px: float, max_width_px: float, relayout: bool) -> bool:
    """Raise texts below `min_px` displayed pixels; True when any changed."""
    renderer = _renderer(fig)
    width_in = fig.get_tightbbox(renderer).width
    min_pt = min_px * 72.0 / min(dpi, max_width_px / max(width_in, 1e-6))
    small = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text() and t.get_fontsize() < min_pt - 1e-6]
    for text in small:
        text.set_fontsize(min_pt)
    if small and relayout and sum(ax.axison for ax in fig.axes) > 1 and fig.get_layout_engine() is None:
        with warnings.catch_warnings():  # neighbouring panels' labels grew: make room again
            warnings.simplefilter("ignore")
            fig.tight_layout()
    return bool(small)


def _overlapping(labels, renderer) -> bool:
    boxes = sorted((t.get_window_extent(renderer) for t in labels if t.get_visible() and t.get_text()),
                   key=lambda b: b.x0)
    return any(a.x1 > b.x0 + 0.5 for a, b in zip(boxes, boxes[1:]))


def _thin_crowded_ticks(fig: Figure) -> None:
    """Fewer ticks on numeric x axes whose (now larger) tick labels run into each other."""
    for ax in fig.axes:
        if not ax.axison or isinstance(ax.xaxis.get_major_locator(), FixedLocator):
            continue
        for bins in (5, 4, 3, 2):
            if not _overlapping(ax.get_xticklabels(), _renderer(fig)):
                break
            ax.xaxis.set_major_locator(MaxNLocator(nbins=bins))


def make_readable(fig: Figure, *, dpi: float = 110, min_px: float = FOOTNOTE_PX,
                  max_width_px: float = MAX_WIDTH_PX) -> Figure:
    """Raise small fonts to `min_px` as displayed and move legends off the data (in place; returns `fig`)."""
    raised = _raise_small_text(fig, dpi=dpi, min_px=min_px, max_width_px=max_width_px, relayout=True)
    renderer = _renderer(fig)
    moved = [owner for owner, legend in _legends(fig) if owner is not fig and covers_data(fig, legend, renderer)]
    for owner in moved:
        _move(fig, owner, owner.get_legend(), renderer)
    # a legend moved outside widens the image, which the page then shows smaller
    for _ in range(2 if moved else 0):
        if not _raise_small_text(fig, dpi=dpi, min_px=min_px, max_width_px=max_width_px, relayout=False):
            break
        raised = True
    if raised:  # the author's ticks fit the author's fonts
        _thin_crowded_ticks(fig)
    return fig
