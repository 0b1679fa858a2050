"""Deep linking: in the LMS, an instructor adds "an activity from this tool", picks the assignment
or the quiz here, and the LMS creates a resource link (and a gradebook column) that opens it.

The picker lists the course's items (``items``); the answer is the LTI Deep Linking response, a
JWT the tool signs with its current key (``keys``) and the browser posts back to the platform's
``deep_link_return_url``. Each content item carries the item's key as a custom parameter, so its
launches open that item, and a line item (label, maximum, tag), so the LMS grades it; the scores
then go to that line item (``ags``). Only the instructor who made the deep linking launch, in
the same session, can answer it.
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, render_template, request, session
from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskRequest
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException
from pylti1p3.lineitem import LineItem

from grader.server import auth
from grader.server.lti import items
from grader.server.lti.launch import DEEP_LINK, launch_url, tool_conf
from grader.server.lti.storage import DatabaseLaunchStorage
from grader.server.models import AuditEvent
from grader.server.state import current


def _instructor_launch() -> FlaskMessageLaunch:
    """The deep linking launch this instructor's session is answering; 404 otherwise."""
    server = current()
    identity = auth.session_identity(server.db)
    launch_id = session.get(DEEP_LINK)
    if identity is None or not identity.is_instructor or not launch_id:
        abort(404)
    try:
        return FlaskMessageLaunch.from_cache(
            launch_id,
            FlaskRequest(),
            tool_conf(server.db),
            launch_data_storage=DatabaseLaunchStorage(server.db),
        )
    except LtiException:
        abort(404)


def resource_for(item: items.Item, maximum: float, base: str) -> DeepLinkResource:
    """The content item of ``item``: an LTI resource link to the launch URL with the item's key,
    and its line item."""
    line = LineItem().set_label(item.title).set_score_maximum(maximum)
    line.set_tag(item.key).set_resource_id(item.key)
    return (
        DeepLinkResource()
        .set_url(base)
        .set_title(item.title)
        .set_custom_params({"item": item.key})
        .set_lineitem(line)
    )


def form() -> Any:
    """The picker: one button per item."""
    _instructor_launch()
    server = current()
    return render_template("lti_deep_link.html", items=items.course_items(current_app, server))


def respond() -> Any:
    """The signed response for the chosen item, posted to the platform by the browser."""
    launch = _instructor_launch()
    server = current()
    item = items.find_item(current_app, server, request.form.get("item") or "-")
    if item is None:
        abort(400, "choose one of the listed items")
    resource = resource_for(item, items.maximum_of(current_app, server, item), launch_url(server))
    deep_link = launch.get_deep_link()
    token = deep_link.get_response_jwt([resource])
    return_url = launch.get_launch_data()[
        "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
    ]["deep_link_return_url"]
    session.pop(DEEP_LINK, None)  # answered once
    with server.db.write() as s:
        s.add(AuditEvent(actor="instructor", action="lti_deep_linked", subject=item.key))
    return render_template(
        "lti_deep_link_return.html", return_url=return_url, token=token, item=item
    )
