"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""

from __future__ import annotations


class EdgecvError(Exception):
    """A problem the user can fix: bad recipe, missing file, missing extra."""


class RecipeError(EdgecvError):
    """A recipe or profile file that does not validate; the message names file and field."""


class MissingDependency(EdgecvError):
    """An optional dependency is not installed; the message names the extra to install."""
