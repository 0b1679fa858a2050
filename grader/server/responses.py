"""What every page of the server answers alike: the message page, the error pages (a CSRF
refusal, a body too large, not found) and the security headers.

Why one module: the course app (``app.create_app``) and the quiz's practice app
(``practice.create_practice_app``) serve the same templates and must refuse, and protect, alike.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, render_template, request
from flask_wtf.csrf import CSRFError

#: Paths whose answers are personal or hold tokens: never cached.
PERSONAL = ("/signin", "/submissions", "/api", "/instructor", "/quiz")


def message(text: str, status: int, heading: str = "", kind: str = "") -> tuple[str, int]:
    """The message page (``kind``: a CSS class for the text, e.g. ``refused``)."""
    return render_template("message.html", heading=heading, text=text, kind=kind), status


def _api(path: str) -> bool:
    return path.startswith("/api/")


def add_error_pages(app: Flask, too_large: str) -> None:
    """Refusals as pages (JSON under /api/); ``too_large`` says the upload limit."""

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> tuple[str, int]:
        return message(
            f"The form was refused ({error.description}). Reload the page and try again.", 400
        )

    @app.errorhandler(413)
    def _too_large(_error: Any) -> Any:
        text = f"The file is larger than the limit of {too_large}."
        return ({"error": text}, 413) if _api(request.path) else message(text, 413)

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
