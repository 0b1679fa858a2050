"""The quiz of an assignment: a YAML question bank, seeded variants, scoring, LMS exports.

It names no course: an assignment's ``quiz/`` folder holds the bank and ``quiz.yaml``, and its
``quiz_generators`` hook the generators of parameterised questions (``source.py``). Data flows one
way::

    source.py (the assignment's quiz/ + generators) -> bank.py (load + validate) -> model.Question
        -> variants.py (seeded draw from topic pools, generated numbers) -> model.Item
        -> answers.py (read what a learner typed or posted) -> scoring.py -> model.QuizResult
    model.Question -> export/ (moodle, gift, qti);  importers/ (moodle, gift) -> model.Question

Delivery is the course server's (``grader/server/quiz_pages.py`` over its one store,
``quiz_attempts.py``): graded there, practice through ``quiz serve``; ``terminal.py`` asks the
questions in a terminal (``quiz take``, practice or recorded in the same store).
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
