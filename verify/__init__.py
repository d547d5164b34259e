"""The verification suite: does CodeSync's telemetry tell the truth about a load run?

    $ codesync-load verify reports/runs/20260101-120000-smoke --prometheus-url http://127.0.0.1:9090
    $ pytest verify --run-dir reports/runs/20260101-120000-smoke --prometheus-url http://127.0.0.1:9090

Checks live in verify/checks/ (one registry, one name per check); the command and the
pytest suite run the same checks under the same names. Inputs (run directory, Prometheus,
rules, dashboard, configs, contract, expectations) are options: see verify/context.py.
"""
