"""Rendering a `Report` as HTML (one self-contained file), PDF (WeasyPrint) or Markdown."""

from __future__ import annotations

import base64
from pathlib import Path

from policylab.errors import PolicylabError
from policylab.report.build import Report
from policylab.report.view import plots, template_context
from policylab.templating import environment

__all__ = ["render_html", "render_markdown", "render_pdf"]


def render_html(report: Report, *, for_print: bool = False) -> str:
    """The report as one HTML page with inline CSS and plots; `for_print` adds page rules."""
    context = template_context(report) | {"for_print": for_print}
    return environment().get_template("report/report.html.j2").render(**context)


def render_pdf(report: Report) -> bytes:
    """The report as PDF, through WeasyPrint (the HTML's print variant)."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: the Pango/Cairo libraries are missing
        raise PolicylabError(
            f"cannot make a PDF: WeasyPrint is not usable here ({exc})",
            hint="install weasyprint and its system libraries (pango), or use --format html",
        ) from exc
    pdf = HTML(string=render_html(report, for_print=True)).write_pdf()
    if not isinstance(pdf, bytes):
        raise PolicylabError("WeasyPrint returned no PDF")
    return pdf


def render_markdown(report: Report, *, plots_dir: Path | None = None) -> str:
    """The report as Markdown for a system card. With `plots_dir`, the plots are written there as
    SVG files and linked relative to the Markdown file's folder (`plots_dir`'s parent)."""
    images: dict[str, str] = {}
    if plots_dir is not None:
        plots_dir.mkdir(parents=True, exist_ok=True)
        for name, uri in plots(report).items():
            svg = base64.b64decode(uri.split(",", 1)[1])
            path = plots_dir / f"{name.replace(':', '-')}.svg"
            path.write_bytes(svg)
            images[name] = f"{plots_dir.name}/{path.name}"
    context = template_context(report, with_plots=False) | {"images": images}
    return environment().get_template("report/report.md.j2").render(**context)
