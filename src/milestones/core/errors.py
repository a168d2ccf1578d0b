"""Errors the user can fix. The command line prints their message on one line and exits with 2."""


class UserError(Exception):
    """A mistake in what was asked (unknown paper, bad option, missing data, corrupt file)."""


class Diverged(UserError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""
