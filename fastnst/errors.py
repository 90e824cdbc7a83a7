"""The one exception type for user mistakes: bad files, bad options, missing weights.

The CLI prints these as a one-line ``error: ...`` and exits non-zero; anything else is a bug and
keeps its traceback.
"""


class FastNSTError(Exception):
    """A problem the user can fix (the message says how); never a bug in fastnst."""
