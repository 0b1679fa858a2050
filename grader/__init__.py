"""Sandboxed autograder for the Object Localization course.

Stages, in data-flow order: assign (learner notebook from the solution), notebook (ingest a
submission), sandbox/worker/wire (run learner code in isolation), checks (hidden pytest checks in the
trusted process), scoring (results.json), report (HTML), batch (many submissions).
"""

__version__ = "0.1.0"
