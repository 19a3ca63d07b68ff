"""Exercises of the course module: one checker per exercise, telling a learner whether an answer is right.

Every notebook ends with a "## Exercises" section. Each exercise is a function the learner writes
(a stub that raises :class:`ExerciseNotDone` in the student version) and a checker cell that calls
``check_<name>(learner_fn)``. A checker runs the learner's function on small fixed inputs, compares it
with the genrl_lite function it mirrors (or with a property the answer must have), prints a short
verdict that helps without giving the answer away, and returns True or False. It never raises on a
wrong answer; on the unfilled stub it says "not done yet" and returns False. Checkers leave the
global random state as they found it, so running one does not change the rest of the notebook.

Shapes in the inputs use the letters of the modules they mirror (B batch, T/H time, G x C latents,
E embedding, F features, N states).

``EXERCISES`` maps an exercise id ("3.1": notebook 03, first exercise) to its :class:`Exercise`
(checker, function name, title); ``scripts/make_student_notebooks.py`` and ``tests/test_exercises.py``
use it together with the notebooks' cell metadata (``genrl_exercise``).

Where the checkers live (read the one of your notebook; every name is importable from here):

- ``core.py``: the registry, the verdict, comparing an answer with the package's, a toy world model;
- ``environments_and_gap.py``: notebooks 00 and 01;
- ``world_model_and_connector.py``: notebooks 02 and 03;
- ``behaviour_and_benchmark.py``: notebooks 04 to 07.
"""

from __future__ import annotations

from genrl_lite.exercises.core import EXERCISES, Exercise, ExerciseNotDone
# Imported in notebook order: each import registers its checkers in EXERCISES.
from genrl_lite.exercises.environments_and_gap import *  # noqa: F401,F403
from genrl_lite.exercises.world_model_and_connector import *  # noqa: F401,F403
from genrl_lite.exercises.behaviour_and_benchmark import *  # noqa: F401,F403

__all__ = ["EXERCISES", "Exercise", "ExerciseNotDone"] + [f"check_{e.function}" for e in EXERCISES.values()]
