"""What the load does: CodeSync protocol clients (`scenarios.clients`) and, later, load profiles.

    >>> from scenarios.clients.rest import RestClient
    >>> api = RestClient("http://127.0.0.1:4000")

Nothing in this package imports Locust at import time: the same clients serve Locust users,
the twin's tests, the benchmarks and the verifier.
"""
