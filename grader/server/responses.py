"""What every page of the server answers alike: the message page, the error pages (a CSRF
refusal, a body too large, not found), each route's body cap and the security headers.

Why one module: the course app (``app.create_app``) and the quiz's practice app
(``practice.create_practice_app``) serve the same templates and must refuse, and protect, alike.

Body caps: a route that takes a file (a learner's upload) takes the app's ``MAX_CONTENT_LENGTH``;
every other route a form's worth (:data:`FORM_BODY_CAP`); the instructor's LMS import raises its
own after its sign-in check. The same :func:`route_body_cap` is what ``grader serve``'s front
(``guard``) applies from the request's headers, before it reads a byte of the body, and what
Flask applies here, before any hook reads the form; a refused body is never read, and the app
answers with its own page, which says the limit.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, render_template, request
from flask_wtf.csrf import CSRFError

#: Paths whose answers are personal or hold tokens: never cached.
PERSONAL = ("/signin", "/submissions", "/api", "/instructor", "/quiz", "/lti/launch",
            "/lti/login", "/lti/deep-link", "/lti/course", "/lti/contexts")  # fmt: skip
#: The body of a form of a few fields (sign out, a quiz's answers, an override, an LMS launch's
#: signed token): a few KB, with room to spare.
FORM_BODY_CAP = 256 * 1024
#: The routes that take a learner's notebook: capped at the app's MAX_CONTENT_LENGTH.
UPLOAD_ENDPOINTS = frozenset({"learner.submit", "api.create"})


def route_body_cap(app: Flask, endpoint: str | None) -> int:
    """The largest body ``endpoint`` takes (None: no route matched, a form's worth)."""
    limit = app.config.get("MAX_CONTENT_LENGTH") or FORM_BODY_CAP
    return limit if endpoint in UPLOAD_ENDPOINTS else min(FORM_BODY_CAP, limit)


def _size(limit: int) -> str:
    return f"{limit / 1024 / 1024:g} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"


def message(text: str, status: int, heading: str = "", kind: str = "") -> tuple[str, int]:
    """The message page (``kind``: a CSS class for the text, e.g. ``refused``)."""
    return render_template("message.html", heading=heading, text=text, kind=kind), status


def _api(path: str) -> bool:
    return path.startswith("/api/")


def body_too_large(upload_limit: str) -> Any:
    """The refusal of a body over its route's cap (``upload_limit``: the upload cap, in words)."""
    if request.endpoint in UPLOAD_ENDPOINTS:
        text = f"The file is larger than the limit of {upload_limit}."
    else:
        limit = request.max_content_length or FORM_BODY_CAP
        text = f"This request is larger than this page takes ({_size(limit)})."
    if _api(request.path):
        return {"error": text}, 413
    return message(text, 413, "Too large", "refused")


def add_error_pages(app: Flask, too_large: str) -> None:
    """Refusals as pages (JSON under /api/), and each route's body cap (set before any hook
    reads a body); ``too_large`` says the upload limit."""

    @app.url_value_preprocessor
    def _body_cap(endpoint: str | None, _values: Any) -> None:
        request.max_content_length = route_body_cap(current_app, endpoint)

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> tuple[str, int]:
        return message(
            f"The form was refused ({error.description}). Reload the page and try again.", 400
        )

    @app.errorhandler(413)
    def _too_large(_error: Any) -> Any:
        return body_too_large(too_large)

    @app.errorhandler(429)
    def _too_many(error: Any) -> Any:
        text = str(getattr(error, "description", "")) or "Too many requests; wait a minute."
        if _api(request.path):
            return {"error": text}, 429
        return message(text[:1].upper() + text[1:], 429, "Too many requests", "refused")

    @app.errorhandler(404)
    def _not_found(_error: Any) -> Any:
        if _api(request.path):
            return {"error": "not found"}, 404
        return message("There is nothing here (or it is not yours).", 404, "Not found")


def add_security_headers(app: Flask) -> None:
    """Links hold tokens (no referrer), no framing, no sniffing, personal pages never cached."""

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.path.startswith(PERSONAL):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
