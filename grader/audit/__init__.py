"""The mutation audit: do an assignment's checks catch small mistakes in its reference?

The reference solution's graded parts are mutated with the standard operators, every mutant is
graded by the checks, and each ends killed, survived (a missing check) or equivalent. The
mutants come from :mod:`grader.mutation`; the stages here, each importing only those before it:
``equivalence``
(probe replies compared; the assignment's ``audit.yaml``) -> ``grading`` (the checks in a warm
process, recording every probe reply) -> ``pool`` (those processes, with limits) -> ``run`` (the
reference, the mutants, the survivors' extra seeds) -> ``verdicts`` -> ``report``; ``command``
is the ``grader audit`` verb.

For grading-time diagnosis, :func:`mutants_of` lists a part's mutants (with each one's namespace
source) without grading anything; :func:`killed_ids` reads an audit's JSON for the killed ones.
"""

from grader.audit.report import killed_ids
from grader.mutation import OPERATORS, Mutant, Reference, load_reference, mutants_of

__all__ = ["OPERATORS", "Mutant", "Reference", "killed_ids", "load_reference", "mutants_of"]
