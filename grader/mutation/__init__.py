"""Mutants of a reference solution: the small mistakes the audit grades and diagnosis recognises.

``operators`` (the mistakes, on a definition's syntax tree) -> ``mutants`` (the solution's
mutants, their ids and the parts they touch). Nothing here grades: the audit
(:mod:`grader.audit`) grades the mutants, and grading-time diagnosis
(:mod:`grader.checking.diagnosis`) compares a submission's behaviour with theirs, so both import
this package and neither imports the other.
"""

from grader.mutation.mutants import Mutant, Reference, load_reference, mutants_of
from grader.mutation.operators import OPERATORS

__all__ = ["OPERATORS", "Mutant", "Reference", "load_reference", "mutants_of"]
