"""The twin's CodeSync API: REST under /api, /health and /metrics on the API port.

    >>> app = build_api_app(ctx)        # from twin.api.app

Modules: `errors` (the error classes and envelope), `validation` (request bodies),
`middleware` (metrics, CSRF cookies, error handling), `common` (auth, CSRF check, rate limit
helpers used by handlers), and one module of handlers per route group.
"""
