"""The one exception type the CLI turns into a single line for the user.

    >>> raise HarnessError("port 4000 is in use; pass --api-port 0 for a free port")

Anything raised as a HarnessError is an expected failure of input or environment: the CLI
prints its message (which names the cause and the fix) and exits 2, never a traceback.
"""


class HarnessError(Exception):
    """An expected failure with a one-line message naming the cause and the fix."""

    exit_code = 2


class TargetHttpError(Exception):
    """A call to the target that got an HTTP answer other than success; `status` is that answer.

    Why here: the protocol clients (scenarios/clients) raise their own subclasses, and the layers
    that judge a target (verify's check runner) need only the status, not the client, so they
    depend on the core and never on a client module.
    """

    status: int = 0


class TargetUnreachable(Exception):
    """An endpoint of the target gave no answer (refused, timed out, handshake never completed).

    Why here: a check that meets it has judged nothing (its symptom was not shown), and must
    neither end the other checks (as a HarnessError does) nor show a traceback (as a bug does);
    the clients raise subclasses, the check runner needs only this class. The message names the
    endpoint and the timeout.
    """


def is_server_error(status: int) -> bool:
    """The one definition of "5xx" (a server error) in the harness: an HTTP status 500-599.

    Every count of server errors (the ledger summary, the gates' error rate, the checks' probes,
    the dashboard's error-rate reference `status_code=~"5.."`) uses this rule, so a 599 or a 506
    is a server error everywhere or nowhere.
    """
    return 500 <= int(status) <= 599
