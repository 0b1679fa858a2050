"""Sandboxed autograder and course harness: any assignment (see ``grader.assignment``).

Stages, one package each, in data-flow order: ``ingest`` (a submitted notebook -> learner source and
what is missing), ``sandbox`` with ``worker`` and ``wire`` (run learner code in isolation),
``checking`` (the assignment's pytest checks in the trusted process), ``results`` (the results
record, results.json and the HTML report), ``batch`` (many submissions, here or on Dask);
``authoring`` makes the learner notebook, the bundle and the self-check; ``grade`` grades one
``job`` (a ``GradingJob`` -> a ``GradingOutcome``, what every front end submits), which
``bounded`` runs here or in a child process; ``cli`` is the command line.
``assignment`` reads an assignment's folder (``assignments/<name>/assignment.yaml``): the engine
names nothing of any one assignment.
"""

__version__ = "0.2.0"  # 0.2: hidden inputs per submission, checks as properties
