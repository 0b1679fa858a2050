"""The assignments shipped with the grader: one package per assignment, each described by its
``assignment.yaml`` (see ``assignments/AUTHORING.md``). The engine finds them here."""
