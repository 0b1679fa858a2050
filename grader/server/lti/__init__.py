"""LTI 1.3 for the course server: an LMS (Moodle, Canvas, ...) launches the course, its learners
and instructors sign in through the launch, an instructor deep-links the assignment or the quiz,
scores flow back through Assignment and Grade Services, and the roster comes from Names and Role
Provisioning Services. The protocol is pylti1p3's (the maintained fork ``pylti1p3next``); this
package stores its state in the server's database and maps it onto the server's roster.

One module per concern, imported one way (``routes`` on top):

- ``keys``: the tool's key pairs, the published key set, rotation;
- ``platforms``: registrations (``grader lti register``), the library's tool configuration;
- ``storage``: OIDC login values and used nonces in the database;
- ``identities``: roles and users mapped to the roster and to instructors;
- ``items``: the course items a resource link can open and grade, and their scores;
- ``launch``: OIDC login initiation and the launch (``/lti/login``, ``/lti/launch``);
- ``deep_linking``: the instructor's picker and the signed response;
- ``services``: the service connector (client-credentials tokens) AGS and NRPS share;
- ``ags``: line items and the background score poster (an outbox, retried with backoff);
- ``nrps``: the roster sync;
- ``routes``: the blueprint (``/lti/...``), the framing rule for LMS iframes, :func:`register`.
"""

from __future__ import annotations

from grader.server.lti.routes import register

__all__ = ["register"]
