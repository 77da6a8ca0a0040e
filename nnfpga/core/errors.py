"""Errors caused by the user's input: the CLI prints them as one paragraph, exit code 2."""


class UserError(Exception):
    """A problem with the user's model, data, options or files (never a bug of ours)."""
