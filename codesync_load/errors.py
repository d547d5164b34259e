"""The one exception type the CLI turns into a single line for the user.

    >>> raise HarnessError("port 4000 is in use; pass --api-port 0 for a free port")

Anything raised as a HarnessError is an expected failure of input or environment: the CLI
prints its message (which names the cause and the fix) and exits 2, never a traceback.
"""


class HarnessError(Exception):
    """An expected failure with a one-line message naming the cause and the fix."""

    exit_code = 2
