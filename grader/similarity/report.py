"""A comparison -> the instructor's page: the ranked pairs and, for the top ones, both
submissions' graded code side by side with the matching code marked (copydetect's highlighter).

Self-contained (styles inline, nothing fetched) like the other pages, and worded as what it is:
a list of pairs to look at, not a verdict. :func:`section` is the part other pages embed (the
class summary of ``grader grade``); :func:`page` is the whole page ``grader similarity`` writes.
"""

from __future__ import annotations

import time
from typing import Any

import jinja2
import markupsafe
from copydetect.utils import highlight_overlap

from grader import __version__
from grader.similarity.behaviour import NO_RESULTS
from grader.similarity.code import MIN_OWN_CODE
from grader.similarity.pairs import (
    BEHAVIOUR_THRESHOLD,
    CODE_THRESHOLD,
    MEASURED_BEHAVIOUR_COPY_MIN,
    MEASURED_BEHAVIOUR_INDEPENDENT_MAX,
    MEASURED_COPY_MIN,
    MEASURED_INDEPENDENT_MAX,
    Comparison,
    SimilarPair,
)

#: Pairs listed: those at or above the threshold, at least this many of the highest...
SHOWN = 20
#: ...and at most this many (the JSON has every pair); the code side by side for the first
#: :data:`SIDE_BY_SIDE` of them, so that a cohort sharing much stays a page a browser opens.
MAX_LISTED = 300
SIDE_BY_SIDE = 60

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("grader.similarity", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
)


def _marked(document: str, slices: Any) -> markupsafe.Markup:
    """The document, HTML-escaped, with the matching regions in ``<mark>``."""
    if not document or slices.shape[1] == 0:
        return markupsafe.Markup(markupsafe.escape(document))
    text, _ = highlight_overlap(document, slices, "<mark>", "</mark>", escape_html=True)
    return markupsafe.Markup(text)


def _pair_view(comparison: Comparison, pair: SimilarPair) -> dict[str, Any]:
    first, second = comparison.codes[pair.a], comparison.codes[pair.b]
    return {
        "pair": pair,
        "a": first,
        "b": second,
        "a_code": _marked(first.document, pair.match.slices[0]),
        "b_code": _marked(second.document, pair.match.slices[1]),
        "shares": [round(100 * share) for share in pair.match.similarity],
        "model": pair.model,
        "why_no_model": [
            f"{ident}: {comparison.no_fingerprint[ident]}"
            for ident in (pair.a, pair.b)
            if ident in comparison.no_fingerprint
        ],
    }


def context(comparison: Comparison, *, page: str | None = None) -> dict[str, Any]:
    """What the section shows, as plain data: with ``page`` (the class summary's section, which
    links to the whole page) only the highest pairs, without the code."""
    listed = SHOWN if page else max(SHOWN, min(MAX_LISTED, len(comparison.flagged)))
    shown = [pair for pair in comparison.pairs if pair.score > 0][:listed]
    return {
        "pairs": shown,
        "views": [] if page else [_pair_view(comparison, pair) for pair in shown[:SIDE_BY_SIDE]],
        "page": page,
        "total": len(comparison.pairs),
        "flagged": len(comparison.flagged),
        "compared": len(comparison.codes) - comparison.sources,
        "sources": comparison.sources,
        "not_compared": comparison.not_compared,
        "threshold": CODE_THRESHOLD,
        "min_own_code": MIN_OWN_CODE,
        "independent_max": MEASURED_INDEPENDENT_MAX,
        "copies_min": MEASURED_COPY_MIN,
        "behaviour_threshold": BEHAVIOUR_THRESHOLD,
        "behaviour_independent_max": MEASURED_BEHAVIOUR_INDEPENDENT_MAX,
        "behaviour_copies_min": MEASURED_BEHAVIOUR_COPY_MIN,
        "fingerprinted": comparison.fingerprinted,
        "no_fingerprint": sorted(comparison.no_fingerprint.items()),
        "no_results": bool(comparison.no_fingerprint)
        and all(why == NO_RESULTS for why in comparison.no_fingerprint.values()),
    }


def section(comparison: Comparison, *, page: str | None = None) -> markupsafe.Markup:
    """The similarity section: the whole one, or with ``page`` the class summary's (the highest
    pairs, a link to ``page`` for the code side by side)."""
    html = _ENV.get_template("section.html.j2").render(**context(comparison, page=page))
    return markupsafe.Markup(html)


def page(comparison: Comparison, title: str = "Similarity across the cohort") -> str:
    """The whole page ``grader similarity`` writes."""
    return _ENV.get_template("page.html.j2").render(
        title=title,
        section=section(comparison),
        generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        version=__version__,
    )
