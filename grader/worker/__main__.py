"""Start the sandboxed worker: ``python -s -P -c BOOT RT READ_FD WRITE_FD`` (see :func:`command`).

Runs only in the worker process, never where the trusted side imports the package. Before any
learner code runs, the import finder of an editable install of the project is removed: it would
let ``import grader`` (or an assignment's reference) reach the real tree; only the private copy of the worker package
and ``grader/wire.py`` under RT is meant to exist.
"""

import sys

sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]

from .main import main  # noqa: E402 - after the meta_path clean-up above

sys.exit(main(sys.argv))
