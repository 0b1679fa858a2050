"""What is one submission, and its stable id: notebook files, learner folders and LMS zip
exports (Moodle, Canvas) become :class:`BatchItem` s with unique, filesystem- and URL-safe ids.
It is a stage of its own because it is the only one that reads the instructor's input: archives
are read in memory, never extracted, with caps on members, size and compression ratio; symlinks
and names that climb out ("..", drive letters) are never followed; and nothing here grades.
"""

from __future__ import annotations

import argparse
import re
import stat
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from grader.batch.common import RESERVED_IDS

ZIP_MAX_MEMBERS = 20_000
ZIP_MAX_TOTAL_BYTES = 4 << 30  # declared uncompressed size of the whole archive
ZIP_MAX_RATIO = 200  # declared size / compressed size, for members above 1 MB

_JUNK = re.compile(r"^(\.|__MACOSX$|Thumbs\.db$|desktop\.ini$)", re.IGNORECASE)
# Moodle: "Jane Doe_12345_assignsubmission_file_/project.ipynb" (a folder per learner),
# or flattened "Jane Doe_12345_assignsubmission_file_project.ipynb".
_MOODLE_DIR = re.compile(r"^(?P<learner>.+?_\d+)_assign(?:submission|feedback)_[a-z]+_?$")
_MOODLE_FILE = re.compile(
    r"^(?P<learner>.+?_\d+)_assign(?:submission|feedback)_[a-z]+_(?P<orig>.+)$"
)
# Canvas: "doejane_12345_67890_project.ipynb", late ones "doejane_LATE_12345_67890_...".
_CANVAS_FILE = re.compile(r"^(?P<name>[a-z0-9-]+?)(?:_LATE)?_(?P<user>\d+)_\d+_(?P<orig>.+)$")


# --------------------------------------------------------------------------------------------
# Discovery: what is one submission, and its stable id


def safe_id(text: str) -> str:
    """A filesystem- and URL-safe id; accents are folded (José -> Jose) so ids stay readable."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text).strip("._-") or "submission"


def _stem(name: str) -> str:
    return name[: -len(".ipynb")] if name.lower().endswith(".ipynb") else name


def _is_notebook(name: str) -> bool:
    return name.lower().endswith(".ipynb")


def learner_key(parts: tuple[str, ...]) -> tuple[str, str | None]:
    """(id, the learner folder or None) for a file at ``parts`` relative to a folder or archive.

    LMS naming first (the learner part of a Moodle folder or Canvas file name), then the first
    folder (a learner's folder), then the file name itself.
    """
    for index, part in enumerate(parts[:-1]):
        if match := _MOODLE_DIR.match(part):
            return safe_id(match["learner"]), "/".join(parts[: index + 1])
    name = parts[-1]
    if len(parts) > 1:
        return safe_id(parts[0]), parts[0]
    if match := _MOODLE_FILE.match(name):
        return safe_id(match["learner"]), None
    if match := _CANVAS_FILE.match(name):
        return safe_id(f"{match['name']}_{match['user']}"), None
    return safe_id(_stem(name)), None


@dataclass
class BatchItem:
    """One submission to grade: where its bytes come from and the id its results are filed under."""

    id: str
    source: str  # shown to the instructor: a path, or "archive.zip!member"
    name: str  # the notebook's file name, for the grading job
    path: Path | None = None  # a plain file...
    archive: Path | None = None  # ...or a member of a zip archive
    member: str | None = None
    rejected: str = ""  # not graded: the reason becomes its verdict (unsafe zip member)
    note: str = ""
    #: the learner, when the id names one (an LMS name, a learner's folder; the report's header)
    learner: str = ""

    def read(self) -> bytes:
        """The submission's bytes, at most one byte over the notebook reader's cap
        (``grader.ingest.DEFAULT_MAX_BYTES``), so that its "too big" verdict still shows."""
        from grader.ingest import DEFAULT_MAX_BYTES  # here: discovery alone stays light

        if self.rejected:
            return b""
        if self.archive is not None and self.member is not None:
            with zipfile.ZipFile(self.archive) as archive, archive.open(self.member) as handle:
                return handle.read(DEFAULT_MAX_BYTES + 1)
        assert self.path is not None
        with self.path.open("rb") as handle:
            return handle.read(DEFAULT_MAX_BYTES + 1)


@dataclass
class _File:
    parts: tuple[str, ...]
    make: Callable[[str, str], BatchItem]  # (id, note) -> item


def _group(files: list[_File], origin: str) -> tuple[list[BatchItem], list[str]]:
    """Files of one folder or archive -> submissions: one per learner folder or notebook file."""
    items: list[BatchItem] = []
    notes: list[str] = []
    folders: dict[str, tuple[str, list[_File]]] = {}
    loose: dict[str, list[_File]] = {}
    for file in sorted(files, key=lambda f: f.parts):
        key, folder = learner_key(file.parts)
        if folder is not None:
            folders.setdefault(folder, (key, []))[1].append(file)
        else:
            loose.setdefault(key, []).append(file)
    units = [(key, members, True) for key, members in folders.values()]
    units += [(key, members, False) for key, members in loose.items()]
    for key, members, is_folder in sorted(units, key=lambda unit: unit[0]):
        first = len(items)
        notebooks = [f for f in members if _is_notebook(f.parts[-1])]
        if len(notebooks) == 1:
            items.append(notebooks[0].make(key, ""))
        elif len(notebooks) > 1:
            note = f"{len(notebooks)} notebooks for {key}: each graded separately"
            notes.append(f"{origin}: {note}")
            for file in notebooks:
                items.append(file.make(f"{key}__{safe_id(_stem(file.parts[-1]))}", note))
        elif is_folder or any(_lms_named(f.parts[-1]) for f in members):
            # a learner who handed in no notebook still gets a verdict on what they did hand in
            note = "no notebook handed in: graded " + members[0].parts[-1]
            items.append(members[0].make(key, note))
        else:
            notes.append(f"{origin}: ignored {'/'.join(members[0].parts)} (not a notebook)")
        if is_folder or any(_lms_named(f.parts[-1]) for f in members):
            for item in items[first:]:
                item.learner = key
    return items, notes


def _lms_named(name: str) -> bool:
    """Whether a file's name carries its learner (a flattened Moodle or a Canvas name)."""
    return bool(_MOODLE_FILE.match(name) or _CANVAS_FILE.match(name))


def _folder_files(root: Path) -> list[_File]:
    files = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if any(_JUNK.match(part) or part == ".ipynb_checkpoints" for part in parts):
            continue
        if path.is_symlink() or not path.is_file():
            continue  # a symlink could point anywhere: only real files are submissions
        if len(parts) == 1 and path.suffix.lower() == ".zip":
            continue  # handled as an archive of its own
        files.append(
            _File(
                parts,
                lambda ident, note, p=path: BatchItem(ident, str(p), p.name, path=p, note=note),
            )
        )
    return files


def _member_parts(name: str) -> tuple[str, ...]:
    """A member name as path parts, with nothing that could climb out ("..", "/", drive letters)."""
    parts = re.split(r"[\\/]+", name)
    return tuple(p for p in parts if p not in ("", ".", "..") and not re.match(r"^[A-Za-z]:$", p))


def _zip_files(archive: Path) -> tuple[list[_File], list[str]]:
    """Members of an LMS export, read in memory only (never extracted), with size and ratio caps."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        return [], [f"{archive}: not a readable zip archive ({error})"]
    if len(infos) > ZIP_MAX_MEMBERS:
        return [], [f"{archive}: refused, {len(infos)} members (cap {ZIP_MAX_MEMBERS})"]
    declared = sum(info.file_size for info in infos)
    if declared > ZIP_MAX_TOTAL_BYTES:
        return [], [f"{archive}: refused, {declared >> 20} MB uncompressed (cap 4 GB)"]
    files: list[_File] = []
    entries = [(info, _member_parts(info.filename)) for info in infos if not info.is_dir()]
    entries = [(info, parts) for info, parts in entries if parts]
    entries = [
        (info, parts)
        for info, parts in entries
        if not any(_JUNK.match(p) or p == ".ipynb_checkpoints" for p in parts)
    ]
    tops = {parts[0] for _, parts in entries if len(parts) > 1}
    if len(tops) == 1 and all(len(parts) > 1 for _, parts in entries):
        # one wrapping folder ("Assignment 1-12345/...") is the export's, not a learner's, when it
        # holds learner folders or several notebooks; "jane/x.ipynb" alone stays Jane's folder
        inner = [parts[1:] for _, parts in entries]
        several = sum(1 for parts in inner if _is_notebook(parts[-1])) > 1
        if not _MOODLE_DIR.match(tops.pop()) and (several or any(len(p) > 1 for p in inner)):
            entries = [(info, parts[1:]) for info, parts in entries]
    for info, parts in entries:
        reason = ""
        if info.flag_bits & 0x1:
            reason = "the file is encrypted in the archive"
        elif stat.S_ISLNK(info.external_attr >> 16):
            reason = "the file is a symbolic link in the archive"
        elif info.file_size > (1 << 20) and info.file_size > ZIP_MAX_RATIO * max(
            info.compress_size, 1
        ):
            reason = "the file's compression ratio is suspicious (a zip bomb?)"
        source = f"{archive}!{info.filename}"
        name = _member_parts(parts[-1])[-1] if parts else "submission"

        def make(ident: str, note: str, info=info, source=source, name=name, reason=reason):
            if reason:
                return BatchItem(ident, source, name, rejected=f"Not graded: {reason}.", note=note)
            return BatchItem(ident, source, name, archive=archive, member=info.filename, note=note)

        files.append(_File(parts, make))
    return files, []


def add_submissions_argument(parser: argparse.ArgumentParser) -> None:
    """The SUBMISSION... argument of every command that takes what :func:`discover` reads."""
    parser.add_argument(
        "submissions",
        nargs="+",
        type=Path,
        metavar="SUBMISSION",
        help="a notebook, a folder (one submission per notebook or learner subfolder) or an LMS "
        "zip export (Moodle, Canvas)",
    )


def discover(paths: Iterable[Path]) -> tuple[list[BatchItem], list[str]]:
    """Submissions from notebooks, folders and zip archives, with unique ids; and notes to show.

    Duplicate ids are never overwritten: the first source (in argument, then name order) keeps the
    id, later ones get ``<id>__2``, ``<id>__3``... and a note saying so.
    """
    items: list[BatchItem] = []
    notes: list[str] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found, why = _group(_folder_files(path), str(path))
            items += found
            notes += why
            archives = sorted(p for p in path.iterdir() if p.suffix.lower() == ".zip")
            for archive in (p for p in archives if p.is_file() and not p.is_symlink()):
                files, why = _zip_files(archive)
                found, more = _group(files, str(archive))
                items += found
                notes += why + more
        elif path.is_file() and path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
            files, why = _zip_files(path)
            found, more = _group(files, str(path))
            items += found
            notes += why + more
        elif path.is_file():
            ident = learner_key((path.name,))[0]
            learner = ident if _lms_named(path.name) else ""
            items.append(BatchItem(ident, str(path), path.name, path=path, learner=learner))
        else:
            notes.append(f"{path}: not found")
    seen: dict[str, BatchItem] = {}
    for item in items:
        ident, number = item.id, 1
        while ident in seen or ident in RESERVED_IDS:
            number += 1
            ident = f"{item.id}__{number}"
        if ident != item.id:
            first = seen.get(item.id)
            why = f"duplicate id {item.id}" + (f" (also {first.source})" if first else "")
            notes.append(f"{item.source}: {why}: graded as {ident}")
            item.note = "; ".join(filter(None, [item.note, f"{why}: graded as {ident}"]))
            item.id = ident
        seen[ident] = item
    return items, notes
