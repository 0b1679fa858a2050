"""``grader similarity``: the command line of the cohort comparison (``grader.cli`` hands the
verb here). Submissions are found exactly as ``grader grade`` finds them (``grader.batch``)."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The page written into --out.
PAGE = "similarity.html"


def add_command(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``similarity`` to the ``grader`` command's subparsers."""
    from grader.batch.discovery import add_submissions_argument
    from grader.similarity.pairs import BEHAVIOUR_THRESHOLD, CODE_THRESHOLD

    similarity = commands.add_parser(
        "similarity",
        parents=parents,
        help="rank pairs of submissions by how alike their graded code and models are "
        "(for the instructor)",
        description="Compare the graded cells of every pair of submissions (notebooks, folders "
        "and LMS zip exports, found as `grader grade` finds them) and write OUT/" + PAGE + ": the "
        "pairs ranked by similarity, each with both notebooks' code side by side and the matching "
        "code marked. Only what the learners wrote counts: the stubs' given code and the "
        "reference solution are left out, and renamed variables, reordered definitions, changed "
        "comments and whitespace do not hide a copy (copydetect's winnowing on tokenised code). "
        "With --results, the models too: their layers and predictions on hidden images, as "
        "`grader grade` stored them. A pair's score is the higher of the two; a pair at or above "
        f"{CODE_THRESHOLD} (code) or {BEHAVIOUR_THRESHOLD} (behaviour) is worth a look; the page "
        "is for the instructor to read, not a verdict. Nothing is graded or run. Exit 0 when "
        "the comparison ran, 2 on bad input.",
    )
    add_submissions_argument(similarity)
    similarity.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help=f"folder to write {PAGE} into"
    )
    similarity.add_argument(
        "--against",
        type=Path,
        metavar="FOLDER",
        help="also compare every submission with the notebooks in FOLDER (e.g. public solutions "
        "of the original course; their graded cells only); they are not compared with each other",
    )
    similarity.add_argument(
        "--results",
        type=Path,
        metavar="DIR",
        help="the folder `grader grade --out DIR` wrote for these submissions: their models are "
        "compared from the fingerprints it stored in DIR/<id>/results.json (a grading of the "
        "same file only); without it, behaviour is not measured",
    )
    similarity.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help='also write every pair as JSON: [{"a", "b", "code", "behaviour", "score"}], highest '
        "score first; code and behaviour 0..1, behaviour null when either submission has no "
        "stored fingerprint (no --results, no grading of that file, a model that did not "
        "build); score = max(code, behaviour)",
    )
    similarity.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="processes reading the notebooks (default: CPU cores)",
    )
    similarity.set_defaults(handler=run)


def _fail(message: str) -> int:
    print(f"grader similarity: {message}", file=sys.stderr)
    return 2


@contextmanager
def _bar(total: int, unit: str):
    """tqdm on a terminal (counts, rate, ETA); nothing otherwise (a line per stage is printed)."""
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit=unit, dynamic_ncols=True, file=sys.stderr) as bar:
        yield bar


def run(args: argparse.Namespace) -> int:
    from grader.assignment import AssignmentError, resolve
    from grader.batch import discover
    from grader.files import write_atomically
    from grader.similarity import behaviour, extract, pairs, report

    if args.jobs is not None and args.jobs < 1:
        return _fail("-j must be at least 1")
    if args.against is not None and not args.against.exists():
        return _fail(f"--against {args.against}: not found")
    if args.out.exists() and not args.out.is_dir():
        return _fail(f"--out {args.out}: not a folder")
    if args.results is not None and not args.results.is_dir():
        return _fail(f"--results {args.results}: not a folder")
    try:
        assignment = resolve(args.assignment)
    except AssignmentError as error:
        return _fail(str(error))
    items, notes = discover(args.submissions)
    outside, more = discover([args.against]) if args.against is not None else ([], [])
    for note in notes + more:
        print(f"grader similarity: {note}", file=sys.stderr)
    if not items:
        return _fail("no submissions found in " + ", ".join(map(str, args.submissions)))
    print(
        f"grader similarity: {len(items)} submission(s) of {assignment.name}"
        + (f" against {len(outside)} source(s) in {args.against}" if outside else ""),
        flush=True,
    )
    with _bar(len(items) + len(outside), "nb") as bar:
        step = None if bar is None else (lambda _code: bar.update(1))
        codes = extract.read_all(items, assignment, jobs=args.jobs, on_read=step)
        sources = extract.read_all(outside, assignment, jobs=args.jobs, on_read=step)
    readable = sum(1 for code in codes if code.cells)
    if readable * (readable - 1) // 2 + readable * sum(1 for s in sources if s.cells) == 0:
        for code in codes + sources:
            if code.problem:
                print(f"grader similarity: {code.id}: {code.problem}", file=sys.stderr)
        return _fail(
            f"nothing to compare: {readable} of {len(codes)} submission(s) have graded code; "
            "give at least two, or one and --against FOLDER with graded code"
        )
    with _bar(0, "pair") as bar:

        def counted(total: int) -> None:
            if bar is not None:
                bar.total = total
                bar.update(1)

        models, why = behaviour.read_fingerprints(codes, args.results)
        comparison = pairs.compare_cohort(
            codes,
            sources,
            given=extract.given_code(assignment),
            on_pair=counted,
            fingerprints=models,
            no_fingerprint=why,
        )
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomically(args.out / PAGE, report.page(comparison).encode("utf-8"))
        if args.json is not None:
            rows = json.dumps(comparison.rows(), indent=1) + "\n"
            write_atomically(args.json, rows.encode("utf-8"))
    except OSError as error:
        return _fail(str(error))
    print(
        f"compared {len(comparison.codes) - comparison.sources} submission(s), "
        f"{len(comparison.pairs)} pair(s): {len(comparison.flagged)} at or above a threshold; "
        f"{comparison.fingerprinted} with a stored model fingerprint; "
        f"{len(comparison.not_compared)} not compared -> "
        f"{args.out / PAGE}",
        flush=True,
    )
    return 0


def write_for_batch(items: list[Any], out_dir: Path, assignment: Any) -> str:
    """``grader grade``'s similarity: the page, every pair and the class summary's section into
    ``out_dir`` (under its lock), then the class summary rebuilt with it. Returns a line to print;
    never raises for the submissions' sake (a batch's grading stands whatever happens here)."""
    from grader import batch
    from grader.batch.common import SIMILARITY, SIMILARITY_JSON, SIMILARITY_SECTION
    from grader.files import write_atomically
    from grader.similarity import behaviour, extract, pairs, report

    codes = extract.read_all(items, assignment)
    if sum(1 for code in codes if code.cells) < 2:
        return "similarity: fewer than two submissions with graded code, nothing compared"
    models, why = behaviour.read_fingerprints(codes, out_dir)  # what this batch just stored
    comparison = pairs.compare_cohort(
        codes,
        given=extract.given_code(assignment),
        fingerprints=models,
        no_fingerprint=why,
    )
    with batch.out_dir_lock(out_dir, wait=True):
        write_atomically(out_dir / SIMILARITY, report.page(comparison).encode("utf-8"))
        rows = json.dumps(comparison.rows(), indent=1) + "\n"
        write_atomically(out_dir / SIMILARITY_JSON, rows.encode("utf-8"))
        summary = report.section(comparison, page=SIMILARITY)
        write_atomically(out_dir / SIMILARITY_SECTION, str(summary).encode("utf-8"))
        batch.rebuild(out_dir)
    return (
        f"similarity: {len(comparison.flagged)} pair(s) at or above a threshold "
        f"({comparison.fingerprinted} model fingerprint(s)) -> {out_dir / SIMILARITY}"
    )
