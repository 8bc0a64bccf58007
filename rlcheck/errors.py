"""Errors that are the user's to fix: reported as one line, never as a traceback."""


class UsageError(Exception):
    """A user mistake (bad flag, bad factory, bad environment): the message names the fix."""
