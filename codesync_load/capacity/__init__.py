"""Capacity planning from a `capacity` step run: where one instance bends, and how many are needed.

    $ codesync-load capacity --target-editors 10000            # run the step profile, then analyse
    $ codesync-load capacity --from reports/runs/<run>         # analyse a recorded run

`steps` turns a run directory into per-step steady-state figures, `usl` fits the Universal
Scalability Law, `kneedle` finds the knee of the latency curve, `analysis` puts them together
(SLO, Little's law, regressions, the instance projection), `render` writes the report.
"""
