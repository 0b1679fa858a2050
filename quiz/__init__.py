"""The graded quiz: a YAML question bank, seeded variants, terminal and web delivery, LMS export.

Data flows one way::

    the course's quiz/*.yaml (assignments/object_localization) -> bank.py (load + validate)
        -> model.Question
        -> variants.py (seeded draw from topic pools, parameterised questions) -> model.Item
        -> terminal.py | web.py (+ store.py) | cli grade -> scoring.py -> model.Result
    model.Question -> export/ (moodle, gift, qti);  importers/ (moodle, gift) -> model.Question
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
