"""Names every stage of a batch shares: the files a run writes into its output folder, the
statuses that count as graded or retried, the defaults of a run (wall-clock limit and memory of
one grading; the CLI's defaults too), and the runners' callback. They live in this leaf module,
imported by the others and importing none of them (only the shared ``grader.status``), so that
every stage can name them without importing another stage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from grader.status import Status

if TYPE_CHECKING:
    from grader.job import GradingJob, GradingOutcome

JOURNAL = "journal.jsonl"
GRADEBOOK = "gradebook.csv"
INDEX = "index.html"
LOCK = ".grader.lock"  # held (flock) by the one run writing into DIR
#: What ``grader grade`` adds from ``grader similarity`` (grader.similarity): its page, its pairs,
#: and its section, which the class summary embeds.
SIMILARITY = "similarity.html"
SIMILARITY_JSON = "similarity.json"
SIMILARITY_SECTION = ".similarity-section.html"
RESERVED_IDS = frozenset(
    {JOURNAL, GRADEBOOK, INDEX, LOCK, SIMILARITY, SIMILARITY_JSON, SIMILARITY_SECTION}
)

# One submission, wall clock: above the training probe's own limit (grader.checking.probes), so a
# slow machine ends a grading with the probe's `timeout` first; both are retried, never a score.
DEFAULT_TIMEOUT = 4800.0
# The address-space limit (MB) of each sandboxed worker in a batch (``grader grade
# --memory-mb``): the sandbox's own default, ``grader.sandbox.Limits.address_space_mb``, whose
# docstring says why 4 GB (tests/test_batch.py asserts the two agree). Not imported from there so
# that the CLI's --help and a Dask client do not import the sandbox.
DEFAULT_MEMORY_MB = 4096
OK_STATUS = Status.GRADED
# Not a verdict on the learner's code (Status.is_verdict): the machine cut the grading short
# (timeout), the grading process died (killed) or the grader failed (error). Such a row has no
# score, and a rerun grades it again. "crashed" (the learner's own code crashed) is a verdict.
RETRY_STATUSES = frozenset(status for status in Status if not status.is_verdict)


#: What a runner calls as each job ends (the runners' one interface: ``run(jobs, on_done)``).
OnDone = Callable[["GradingJob", "GradingOutcome"], None]
