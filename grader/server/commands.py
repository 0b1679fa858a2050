"""The course server's subcommands of ``grader``: ``roster`` (add, relink, revoke, instructor),
``serve``, ``regrade`` and ``lti`` (register, platforms, rotate-key).

Why here and not in ``grader/cli.py``: that file is the engine's command line; the server's
commands are one block there (``add_commands``), and everything they import (SQLAlchemy, Flask,
waitress, Dask) is imported when a command runs, so ``grader --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from grader import environment

PROG = "grader"
#: The database URL, password included, out of the command line (which every process on the
#: machine can read in /proc, learner code under Landlock too). Read once, then removed from the
#: environment, so that no process the server starts inherits it.
DATABASE_ENV = environment.DATABASE_URL.name


def database_url(args: argparse.Namespace) -> str | None:
    """``--database`` (which must hold no password), else ``$GRADER_DATABASE_URL``, else None
    (SQLite in the data folder); exits 2 when a password is on the command line."""
    given = getattr(args, "database", None)
    from_env = environment.DATABASE_URL.pop()
    if given:
        if urllib.parse.urlsplit(given).password is not None:
            print(
                f"{PROG} {args.command}: --database holds a password, and any process on this "
                "machine can read a command line. Give the URL without it and keep the password "
                f"in ~/.pgpass (or $PGPASSFILE, mode 0600), or give the whole URL in ${DATABASE_ENV}",
                file=sys.stderr,
            )
            raise SystemExit(2)
        return given
    return from_env or None


def open_course(args: argparse.Namespace, *, create: bool = True) -> tuple[Any, Any]:
    """(settings, database) of ``--data`` (and ``--database``), or exits 2 saying why. A command
    that only reads or changes a course (``create=False``) refuses a folder that does not exist,
    rather than leave an empty course behind a typo."""
    from grader.server.db import open_database
    from grader.server.settings import SettingsError, load_settings

    if not create and not args.data.is_dir():
        print(
            f"{PROG} {args.command}: there is no course at {args.data} (a typo in --data? "
            f"`{PROG} roster instructor --data {args.data}` or `{PROG} serve` starts one)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    try:
        settings = load_settings(args.data)
    except SettingsError as error:
        print(f"{PROG} {args.command}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    args.data.mkdir(parents=True, exist_ok=True)
    return settings, open_database(args.data, database_url(args))


def _base_url(args: argparse.Namespace, settings: Any) -> str:
    return (args.url or settings.base_url).rstrip("/")


def _print_links(issued: list[Any], fmt: str) -> None:
    from grader.server.roster import to_csv

    if fmt == "csv":
        sys.stdout.write(to_csv(issued))
        return
    for row in issued:
        who = row.id if row.id else "instructor"
        print(f"{who}\t{row.link}")


def _cmd_roster(args: argparse.Namespace) -> int:
    from grader.server import roster

    settings, db = open_course(args, create=args.roster_command in ("add", "instructor"))
    base = _base_url(args, settings)
    try:
        if args.roster_command == "add":
            issued, notes = roster.add_roster_file(db, args.roster, base)
            for note in notes:
                print(f"{PROG} roster add: {note}", file=sys.stderr)
            _print_links(issued, args.format)
            print(f"{PROG} roster add: {len(issued)} learner(s) added", file=sys.stderr)
        elif args.roster_command == "relink":
            _print_links([roster.relink(db, args.id, base)], args.format)
            print(
                f"{PROG} roster relink: the earlier link no longer works",
                file=sys.stderr,
            )
        elif args.roster_command == "revoke":
            if bool(args.id) == bool(args.instructor):
                print(f"{PROG} roster revoke: give a learner ID or --instructor", file=sys.stderr)
                return 2
            count = roster.revoke(db, args.id, instructor=args.instructor)
            print(f"revoked {count} link(s)")
        elif args.roster_command == "instructor":
            _print_links([roster.instructor_link(db, base)], args.format)
    except (roster.RosterError, OSError) as error:
        print(f"{PROG} roster {args.roster_command}: {error}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    return 0


def _cmd_regrade(args: argparse.Namespace) -> int:
    from grader.server.leases import regrade_all

    _, db = open_course(args, create=False)
    try:
        count = regrade_all(db)
    finally:
        db.dispose()
    print(
        f"queued {count} grading(s): every learner's latest submission (a running server grades them)"
    )
    return 0


def _cmd_lti(args: argparse.Namespace) -> int:
    from grader.server.lti import keys, platforms

    settings, db = open_course(args, create=args.lti_command == "register")
    base = settings.base_url
    try:
        if args.lti_command == "register":
            platform, created = platforms.register(
                db,
                issuer=args.issuer,
                client_id=args.client_id,
                deployment_id=args.deployment_id,
                auth_url=args.auth_url,
                token_url=args.token_url,
                jwks_url=args.jwks_url,
                audience=args.audience or "",
            )
            what = "registered" if created else "updated"
            print(
                f"{PROG} lti register: {what} {platform.issuer} (client id {platform.client_id};"
                f" deployments {', '.join(platform.deployments)})",
                file=sys.stderr,
            )
            keys.signing_key(db)  # the key set exists before the platform first asks for it
            if not base.startswith("https://"):
                print(
                    f"{PROG} lti register: base_url is {base} (settings.yaml); an LMS needs this "
                    "server's public https URL, set base_url before entering the URLs below",
                    file=sys.stderr,
                )
            print(f"OpenID Connect login URL (initiate login):\t{base}/lti/login")
            print(f"Redirect URI / launch URL / target link URI:\t{base}/lti/launch")
            print(f"Public key set URL (JWKS):\t{base}/lti/jwks.json")
            print(f"Deep linking URL:\t{base}/lti/launch")
        elif args.lti_command == "platforms":
            for platform in platforms.platforms(db):
                print(
                    f"{platform.issuer}\tclient id {platform.client_id}\tdeployments "
                    f"{', '.join(platform.deployments)}\tkeys {platform.key_set_url}"
                )
        elif args.lti_command == "rotate-key":
            kid, published = keys.rotate(db, retire_old=args.retire_old)
            print(
                f"{PROG} lti rotate-key: key {kid} signs; {published} key(s) published at "
                f"{base}/lti/jwks.json",
                file=sys.stderr,
            )
    except platforms.RegistrationError as error:
        print(f"{PROG} lti {args.lti_command}: {error}", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from grader.server.serve import serve

    args.data = args.data.resolve()  # stored results are found from here, whatever the cwd
    settings, db = open_course(args)
    return serve(args, settings, db)


def _data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="DIR",
        help="the course's data folder: settings.yaml, the SQLite database, uploads, results",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        help="a database URL instead of DIR/server.sqlite3, e.g. postgresql://user@host/course "
        f"(no password here: ~/.pgpass, or the whole URL in ${DATABASE_ENV})",
    )


def _add_lti(commands: Any) -> None:
    lti = commands.add_parser(
        "lti",
        help="LTI 1.3: register the LMS platforms that launch the course, rotate the tool's key",
        description="Let an LMS (Moodle, Canvas, ...) launch the course with LTI 1.3: register "
        "each platform with the values its tool registration shows, then enter this server's "
        "URLs (printed by register) in the LMS. README: 'Registering the tool in Moodle and in "
        "Canvas'. Nothing here is secret: LTI 1.3 signs with key pairs.",
    )
    sub = lti.add_subparsers(dest="lti_command", required=True, metavar="ACTION")
    register = sub.add_parser(
        "register",
        help="register a platform (or another deployment of one) and print this tool's URLs",
    )
    for flag, meaning in (
        (
            "--issuer",
            "the platform's issuer (Moodle: its URL; Canvas: https://canvas.instructure.com)",
        ),
        ("--client-id", "the client id the platform gave this tool"),
        ("--deployment-id", "the deployment id the platform gave this tool"),
        ("--auth-url", "the platform's OIDC authentication request URL"),
        ("--token-url", "the platform's OAuth 2 access token URL"),
        ("--jwks-url", "the platform's public key set URL"),
    ):
        register.add_argument(flag, required=True, help=meaning)
    register.add_argument(
        "--audience", help="the token request's audience, when it is not the token URL"
    )
    platforms_parser = sub.add_parser("platforms", help="list the registered platforms")
    rotate = sub.add_parser(
        "rotate-key",
        help="sign with a new key, keeping the old ones published (--retire-old: unpublish them)",
    )
    rotate.add_argument(
        "--retire-old",
        action="store_true",
        help="stop publishing every key but the newest (once platforms refreshed their key sets)",
    )
    for parser in (register, platforms_parser, rotate):
        _data(parser)
    lti.set_defaults(handler=_cmd_lti)


def add_commands(commands: Any) -> None:
    """Add ``roster``, ``serve`` and ``regrade`` to the ``grader`` subcommands."""
    roster = commands.add_parser(
        "roster",
        help="the course server's roster: add learners, print and revoke sign-in links",
        description="Manage who can sign in to the course server (`grader serve`). Each learner "
        "gets a personal, unguessable sign-in link; only a hash of it is stored, so a lost link "
        "is replaced (relink), never shown again.",
    )
    sub = roster.add_subparsers(dest="roster_command", required=True, metavar="ACTION")
    add = sub.add_parser(
        "add",
        help="add the learners of a CSV (columns id,name,email; more are kept) and print links",
        description="Add the learners of ROSTER (a CSV with an id column, usually id,name,email; "
        "other columns are kept). Ids are normalised (NFKC, case-folded); two rows that normalise "
        "to one id are refused. Prints one sign-in link per new learner.",
    )
    add.add_argument("roster", type=Path, metavar="ROSTER")
    relink = sub.add_parser("relink", help="revoke a learner's link and print a new one")
    relink.add_argument("id", metavar="ID")
    revoke = sub.add_parser("revoke", help="revoke a learner's links (or --instructor's)")
    revoke.add_argument("id", nargs="?", metavar="ID")
    revoke.add_argument("--instructor", action="store_true", help="revoke every instructor link")
    instructor = sub.add_parser("instructor", help="print a new instructor sign-in link")
    for parser in (add, relink, revoke, instructor):
        _data(parser)
        parser.add_argument(
            "--url", help="the server's public base URL (default: settings.yaml's base_url)"
        )
        parser.add_argument(
            "--format",
            choices=("text", "csv"),
            default="text",
            help="text: id<TAB>link per line; csv: id,name,email,link with a header",
        )
    roster.set_defaults(handler=_cmd_roster)

    serve = commands.add_parser(
        "serve",
        help="run the course server: sign-in links, uploads, a grading queue on Dask",
        description="Serve the course with waitress (bounded connections and timeouts): learners "
        "sign in with their link, download the bundle, upload a notebook and read their report. "
        "Gradings run on a local Dask cluster of -j workers, or on an existing scheduler. Put it "
        "behind a TLS reverse proxy (README, 'Running the course server').",
    )
    _data(serve)
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    serve.add_argument(
        "--scheduler", metavar="ADDRESS", help="grade on this Dask scheduler instead of locally"
    )
    serve.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="gradings at once on the local Dask cluster (default: settings.yaml's jobs)",
    )
    serve.add_argument(
        "--threads", type=int, default=8, help="waitress request threads (default: %(default)s)"
    )
    serve.add_argument(
        "--trusted-proxy",
        metavar="ADDRESS",
        help="the TLS reverse proxy's address (e.g. 127.0.0.1): trust its X-Forwarded-For and "
        "-Proto headers, so that rate limits see the learner's address",
    )
    serve.set_defaults(handler=_cmd_serve)

    regrade = commands.add_parser(
        "regrade",
        help="queue a new grading of every learner's latest submission (after a check changed)",
    )
    _data(regrade)
    regrade.set_defaults(handler=_cmd_regrade)
    _add_lti(commands)

    from grader import submit as client  # the learner's side: standard library only

    submit = commands.add_parser(
        "submit",
        help="submit a notebook to the course server and wait for its grade (a learner's command)",
        description="Upload NOTEBOOK to the course server with your sign-in link (save it once "
        "with --link) and follow it: queued -> grading -> graded, then the score.",
    )
    client.add_arguments(submit)
