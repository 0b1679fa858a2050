"""The course server: learners sign in with a personal link, upload a notebook and
read their report; a queue of jobs in the database feeds Dask workers that grade with the same
engine as ``grader grade``.

One module per concern, imports flowing one way (a test fails on any cycle):

- data: ``settings`` and ``models`` (leaves) <- ``db`` <- ``roster``, ``submissions``, ``leases``
  (the jobs table), ``overrides``, ``quiz_attempts`` (the quiz's one store) <- ``views``,
  ``exports`` (grade exports by name), ``quiz_stats``, ``lms_import``;
- grading: ``executors`` (Dask) <- ``queue`` (the dispatcher, submitting ``grader.job`` jobs);
- web: ``auth``, ``formatting``, ``responses``, ``reports`` and ``state`` (what a request shares)
  <- the blueprints ``pages`` (the learner's), ``api``, ``instructor``, ``live``, ``quiz_pages``
  <- ``app.create_app`` (the course) and ``practice.create_practice_app`` (``quiz serve``);
- commands: ``serve`` (waitress) <- ``commands`` (``grader roster|serve|regrade``).

This file re-exports only the light entry points; the web app and the queue are imported where
they are used, so that ``grader roster`` does not import Flask or Dask.
"""

from __future__ import annotations

from grader.server.db import Database, open_database
from grader.server.settings import Settings, SettingsError, load_settings

__all__ = ["Database", "Settings", "SettingsError", "load_settings", "open_database"]
