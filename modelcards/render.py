"""HTML → PDF with WeasyPrint, and the inline SVG chart of metrics (pure: no database).

The renderer never fetches anything a document names: the URL fetcher refuses every URL that
is not an inline `data:` URL, so `file://`, `http://` and relative links in user text (which
the template escapes anyway) cannot reach the disk or the network. Fonts are the system's.
"""

from __future__ import annotations

import io
from html import escape

import weasyprint
from weasyprint.urls import URLFetcher


class FetchRefused(ValueError):
    pass


class DataOnlyFetcher(URLFetcher):
    """Only inline data: URLs; everything else is refused before any I/O."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols={"data"}, allow_redirects=False, timeout=1)

    def fetch(self, url, headers=None):
        if not url.startswith("data:"):
            raise FetchRefused(f"refused to fetch {url[:100]!r}: model cards load nothing external")
        return super().fetch(url, headers)


def html_to_pdf(html: str) -> tuple[bytes, int]:
    """The PDF bytes and page count of an HTML document."""
    document = weasyprint.HTML(
        string=html, url_fetcher=DataOnlyFetcher(), base_url="data:,"
    ).render()
    buffer = io.BytesIO()
    document.write_pdf(buffer)
    return buffer.getvalue(), len(document.pages)


def metrics_chart(metrics: dict[str, float], *, width: int = 640) -> str:
    """A horizontal bar chart (SVG) of metric values, scaled to the largest magnitude."""
    if not metrics:
        return ""
    items = sorted(metrics.items())
    largest = max(abs(v) for _, v in items) or 1
    row, label_w, top = 22, 200, 8
    height = top * 2 + row * len(items)
    bars = []
    for index, (name, value) in enumerate(items):
        y = top + index * row
        length = (width - label_w - 90) * abs(value) / largest
        colour = "#2563eb" if value >= 0 else "#dc2626"
        label = name if len(name) <= 30 else name[:29] + "…"
        bars.append(
            f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end" font-size="11">'
            f"{escape(label)}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="14" '
            f'fill="{colour}"/>'
            f'<text x="{label_w + length + 6:.1f}" y="{y + 14}" font-size="11">'
            f"{escape(format_number(value))}</text>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, sans-serif">'
        + "".join(bars)
        + "</svg>"
    )


def format_number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4g}"
