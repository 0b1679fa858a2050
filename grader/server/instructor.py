"""The instructor's pages: the gradebook, a learner's history, manual
overrides, feedback release, regrading, the class summary, the exports and the LMS zip import.

Why a Blueprint with one gate: every route here is the instructor's, so :func:`_gate` runs before
each of them and answers 404 to anyone else (a learner, or nobody), exactly as for a page that
does not exist, so a learner cannot even tell these pages are there. The export downloads also
take ``Authorization: Bearer <instructor token>`` so that a course can be automated (GET only:
a Bearer request carries no cookie, so it needs no CSRF token). Every form posts a CSRF token
(checked in :func:`_gate` once the visitor is known to be the instructor: the app exempts
this Blueprint from its own check, which would otherwise answer a visitor's POST with a 400
before the gate's 404).

The class summary is ``grader grade``'s own ``index.html`` (``grader.batch.gradebook``'s
``summary_context`` and template), fed with the server's latest grading of each learner; its
relative links ``<id>/report.html`` resolve to :func:`summary_report` below.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import and_, or_, select
from werkzeug.exceptions import RequestEntityTooLarge

from grader.results.record import REPORT_FILE
from grader.server import (
    auth,
    class_summary,
    exports,
    extensions,
    lms_import,
    overrides,
    quiz_grants,
    totals,
    views,
)
from grader.server.assignments import of_assignment
from grader.server.history import describe_event
from grader.server.models import (
    AuditEvent,
    Job,
    Learner,
    QuizAttempt,
    QuizGrant,
    Submission,
    utcnow,
)
from grader.server.quiz_attempts import QuizService
from grader.server.reports import report_response, self_contained
from grader.server.state import QUIZ_EXTENSION, QUIZZES_EXTENSION, current

instructor = Blueprint("instructor", __name__, url_prefix="/instructor")


@dataclass(frozen=True)
class LearnerQuiz:
    """One assignment's quiz on a learner's page: its attempts and the grants of another."""

    title: str
    quiz: QuizService
    attempts: list[QuizAttempt]
    grants: list[QuizGrant]


#: Events whose subject is a learner id (the others name a submission).
LEARNER_ACTIONS = (
    "learner_added",
    "link_reissued",
    "links_revoked",
    "quiz_attempt_granted",
    "extension_granted",
    "lti_learner_linked",
)


@instructor.before_request
def _gate() -> Any:
    """The instructor only; anyone else gets the same 404 as a missing page."""
    server = current()
    identity = auth.session_identity(server.db)
    if identity is None and request.method == "GET" and request.endpoint == "instructor.export":
        header = request.headers.get("Authorization", "")
        if header:
            identity = auth.bearer_identity(server.db)
    if identity is None or not identity.is_instructor:
        abort(404)
    g.identity = identity
    if request.endpoint == "instructor.import_zip":  # an LMS export is bigger than a notebook
        request.max_content_length = int(lms_import.IMPORT_MAX_MB * 1024 * 1024)
    if request.method == "POST":  # after the gate, so that nobody else learns the route exists
        try:
            current_app.extensions["csrf"].protect()
        except RequestEntityTooLarge:
            return _import_refused(
                f"the archive is larger than {lms_import.IMPORT_MAX_MB:g} MB", 413
            )
    return None


def _import_page(**values: Any) -> Any:
    """The import page: its form (with the course's assignments to file under) and a report."""
    return render_template(
        "instructor_import.html",
        limit=lms_import.IMPORT_MAX_MB,
        assignments=current().settings.course_assignments(),
        **values,
    )


def _import_refused(text: str, status: int = 400) -> Any:
    return _import_page(report=None, error=text), status


def _view(submission: Submission) -> views.SubmissionView:
    server = current()
    return views._view(submission, server.data_dir, server.settings, instructor=True)


@instructor.get("")
def gradebook() -> Any:
    server = current()
    lines = exports.gradebook_lines(
        server.db, server.data_dir, server.settings, totals.quiz_maximum(current_app)
    )
    return render_template(
        "instructor_gradebook.html",
        lines=lines,
        exports=exports.GRADE_EXPORTS.values(),
        settings=server.settings,
        pending=sum(1 for line in lines for latest in line.latests if latest.pending),
    )


@instructor.post("/regrade")
def regrade() -> Any:
    from grader.server.leases import regrade_all

    server = current()
    count = regrade_all(server.db, actor="instructor")
    server.wake()
    flash(f"Queued {count} grading(s): every learner's latest submission.")
    return redirect(url_for("instructor.gradebook"))


@instructor.post("/release")
def release() -> Any:
    count = views.release_feedback(current().db)
    flash(f"Released the feedback of {count} submission(s).")
    return redirect(url_for("instructor.gradebook"))


@instructor.get("/learners/<learner_id>")
def learner(learner_id: str) -> Any:
    """A learner's history: every submission with every grading, overrides and audit events."""
    server = current()
    with server.db.read() as session:
        person = session.scalar(
            select(Learner).options(*views.LEARNER_WITH_GRADINGS).where(Learner.id == learner_id)
        )
        if person is None:
            abort(404)
        ordered = sorted(person.submissions, key=lambda s: s.id, reverse=True)
        history = [(_view(s), list(s.jobs), list(s.overrides)) for s in ordered]
        ids = [str(s.id) for s in ordered]
        numbers = {str(s.id): s.number for s in ordered}
        events = session.scalars(
            select(AuditEvent)
            .where(
                or_(
                    AuditEvent.actor == learner_id,
                    and_(AuditEvent.subject == learner_id, AuditEvent.action.in_(LEARNER_ACTIONS)),
                    and_(AuditEvent.subject.in_(ids), AuditEvent.action.not_in(LEARNER_ACTIONS)),
                )
            )
            .order_by(AuditEvent.id.desc())
            .limit(500)
        ).all()
    policies = server.settings.course_assignments()
    quizzes = current_app.extensions.get(QUIZZES_EXTENSION, {})
    return render_template(
        "instructor_learner.html",
        learner=person,
        history=history,
        events=[(event, describe_event(event, numbers)) for event in events],
        quizzes=[
            LearnerQuiz(
                policy.chosen().title,
                quiz,
                quiz.attempts_of(learner_id),
                quiz_grants.grants_of(server.db, learner_id, quiz.names),
            )
            for policy in policies
            if (quiz := quizzes.get(policy.name)) is not None
        ],
        several=len(policies) > 1,
        assignments=policies,
        extensions=extensions.extensions_of(server.db, server.settings, learner_id),
    )


@instructor.post("/learners/<learner_id>/extension")
def grant_extension(learner_id: str) -> Any:
    """Give one learner of one assignment a later deadline and/or more submissions a day
    (audit-logged; an empty form ends the extension in force)."""
    server = current()
    policy = server.settings.policy_of(request.form.get("assignment") or None)
    if policy is None:
        abort(404)
    try:
        row = extensions.grant(
            server.db,
            server.settings,
            learner_id,
            policy,
            extensions.read_deadline(request.form.get("deadline", "")),
            extensions.read_count(request.form.get("extra_per_day", "")),
            request.form.get("comment", ""),
        )
    except LookupError:
        abort(404)
    except extensions.ExtensionRefused as refused:
        flash(f"No extension stored: {refused}.")
    else:
        if row.deadline is None and not row.extra_per_day:
            flash(f"{policy.name}: no extension any more; the course's deadline and limit apply.")
        else:
            flash(f"{policy.name}: extension stored.")
    return redirect(url_for("instructor.learner", learner_id=learner_id), 303)


@instructor.post("/learners/<learner_id>/quiz-attempt")
def grant_quiz_attempt(learner_id: str) -> Any:
    """Let one learner start another graded quiz attempt now, past the cooldown and the
    attempt limit (audit-logged, as overrides are)."""
    name = request.args.get("assignment")
    quizzes = current_app.extensions.get(QUIZZES_EXTENSION, {})
    quiz = quizzes.get(name) if name else current_app.extensions.get(QUIZ_EXTENSION)
    if quiz is None:
        abort(404)
    try:
        quiz_grants.grant(
            current().db,
            learner_id,
            request.form.get("comment", ""),
            current().clock(),
            names=quiz.names,
        )
    except LookupError:
        abort(404)
    except quiz_grants.GrantRefused as refused:
        flash(f"No attempt granted: {refused}.")
    else:
        flash("Granted: this learner may start another quiz attempt now.")
    return redirect(url_for("instructor.learner", learner_id=learner_id), 303)


def _override_page(submission_id: int, error: str = "", status: int = 200) -> Any:
    server = current()
    with server.db.read() as session:
        submission = session.scalar(
            select(Submission).options(*views.WITH_GRADINGS).where(Submission.id == submission_id)
        )
        if submission is None:
            abort(404)
        row = _view(submission)
        job = submission.jobs[-1] if submission.jobs else None
        history = list(submission.overrides)
    checks = overrides.checks_of(server.data_dir, job)
    return render_template(
        "instructor_override.html",
        row=row,
        job=job,
        checks=sorted(checks.values(), key=lambda c: (c.number, c.name)),
        in_force={item.check: item for item in row.overrides},
        history=history,
        error=error,
        form=request.form if error else {},
    ), status


@instructor.get("/submissions/<int:submission_id>/override")
def override_form(submission_id: int) -> Any:
    return _override_page(submission_id)


@instructor.post("/submissions/<int:submission_id>/override")
def override(submission_id: int) -> Any:
    server = current()
    check = request.form.get("check", "")
    try:
        score = overrides.parse_score(request.form.get("score", ""))
        overrides.record(
            server.db,
            server.data_dir,
            submission_id,
            check,
            score,
            request.form.get("comment", ""),
        )
    except overrides.OverrideError as error:
        return _override_page(submission_id, str(error), 400)
    what = "the total" if check == overrides.TOTAL else f"check {check}"
    flash(f"Cleared the override of {what}." if score is None else f"Overrode {what}.")
    return redirect(url_for("instructor.override_form", submission_id=submission_id))


def _report(path: Path | None, row: views.SubmissionView | None = None) -> Any:
    if path is None or not path.is_file():
        abort(404)
    if row is None:
        return report_response(path)
    return report_response(path, row.overrides, row.score, row.max_score)


@instructor.get("/jobs/<int:job_id>/report")
def job_report(job_id: int) -> Any:
    """The report of one grading (a learner sees only their latest grading's)."""
    server = current()
    with server.db.read() as session:
        job = session.get(Job, job_id)
        folder = job.result_dir if job else None
    return _report(server.data_dir / folder / REPORT_FILE if folder else None)


@instructor.get("/summary")
def summary_redirect() -> Any:
    return redirect(url_for("instructor.summary"))


@instructor.get("/summary/")
@instructor.get("/summary/<assignment>/")
def summary(assignment: str | None = None) -> Any:
    """``grader grade``'s class summary page of one assignment (none named: the default one),
    from the server's latest results."""
    from grader.batch.gradebook import render_index

    server = current()
    policy = server.settings.policy_of(assignment)
    if policy is None:
        abort(404)
    lines = exports.gradebook_lines(
        server.db, server.data_dir, server.settings, totals.quiz_maximum(current_app)
    )
    several = len(server.settings.course_assignments()) > 1
    title = f"Class summary: {policy.chosen().title if several else server.settings.title}"
    entries = class_summary.entries(server, lines, policy.name)
    return self_contained(render_index(entries, Path("summary"), title))


@instructor.get("/summary/<learner_id>/report.html")
@instructor.get("/summary/<assignment>/<learner_id>/report.html")
def summary_report(learner_id: str, assignment: str | None = None) -> Any:
    """The summary's link to a learner's report: their latest submission's of the assignment
    the summary shows."""
    server = current()
    policy = server.settings.policy_of(assignment)
    if policy is None:
        abort(404)
    with server.db.read() as session:
        submission = session.scalar(
            select(Submission)
            .options(*views.WITH_GRADINGS)
            .where(
                Submission.learner_id == learner_id,
                of_assignment(Submission.assignment, server.settings, policy.name),
            )
            .order_by(Submission.id.desc())
            .limit(1)
        )
        row = _view(submission) if submission else None
    return _report(row.report if row else None, row)


@instructor.get("/export/<kind>.csv")
def export(kind: str) -> Any:
    """An export of :data:`exports.GRADE_EXPORTS` by name; ``?column=`` names the LMS grade
    column (default: the course title)."""
    chosen = exports.GRADE_EXPORTS.get(kind)
    if chosen is None:
        abort(404)
    server = current()
    column = (request.args.get("column") or server.settings.title).strip()[:200]
    lines = exports.gradebook_lines(
        server.db, server.data_dir, server.settings, totals.quiz_maximum(current_app)
    )
    return Response(
        chosen.render(lines, column or "Notebook"),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={chosen.filename}"},
    )


@instructor.get("/import")
def import_form() -> Any:
    return _import_page(report=None)


@instructor.post("/import")
def import_zip() -> Any:
    """Queue the notebooks of an LMS zip export (``lms_import`` says how they are matched) as
    submissions of the assignment the form names (default: the first)."""
    server = current()
    upload = request.files.get("archive")  # parsed under the gate's size cap
    policy = server.settings.policy_of(request.form.get("assignment") or None)
    if policy is None:
        return _import_refused("choose one of this course's assignments")

    if upload is None or not upload.filename:
        return _import_refused("choose the LMS's zip export first")
    now = utcnow()
    path = lms_import.keep_archive(server.data_dir, upload.stream, now)
    if not zipfile.is_zipfile(path):
        path.unlink()
        return _import_refused(
            "this is not a zip archive: upload the LMS's submissions export (.zip)"
        )
    report = lms_import.import_archive(
        server.db, server.data_dir, server.settings, path, now=now, assignment=policy
    )
    with server.db.write() as session:
        session.add(
            AuditEvent(
                actor="instructor",
                action="lms_import",
                subject=path.name,
                detail={
                    "imported": len(report.imported),
                    "unmatched": len(report.unmatched),
                    "refused": len(report.refused),
                    "skipped": len(report.skipped),
                    "assignment": policy.name,
                },
            )
        )
    if report.imported:
        server.wake()
    return _import_page(report=report, filed_under=policy.name)
