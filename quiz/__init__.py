"""The graded quiz: a YAML question bank, seeded variants, terminal and web delivery, LMS export.

Data flows one way::

    bank/*.yaml -> bank.py (load + validate against schema.py) -> model.Question
        -> variants.py (seeded draw from topic pools, parameterised questions) -> model.Item
        -> terminal.py | web.py (+ store.py) | cli grade -> scoring.py -> model.Result
    model.Question -> export/ (moodle, gift, qti);  importers/ (moodle, gift) -> model.Question
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
