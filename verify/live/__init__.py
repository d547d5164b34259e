"""Live verification: alert scenarios driven against real stacks, and the targets they need.

    >>> from verify.live import StackPool, LiveTarget, attach_live, local_stack_factory
    >>> pool = StackPool(local_stack_factory(tmp_path))    # rules compressed 60x, 1 s scrapes
    >>> attach_live(ctx, pool=pool, target=LiveTarget.from_stack(stack))
    >>> REGISTRY["alert-fires-HighErrorRate"].run(ctx).verdict
    'pass'

Why a package apart from verify/checks: the checks (verify/checks/live_alerts.py and
verify/checks/integrity.py) stay short verdict functions, while what they drive (traffic
recipes, the scenario table, the wait for Prometheus and Alertmanager, the stack pool) lives
here and is usable on its own by tests and benchmarks.
"""

from verify.live.inputs import LiveInputs, LiveTarget, attach_live, live_inputs
from verify.live.pool import StackPool, TargetPool, local_stack_factory

__all__ = ["LiveInputs", "LiveTarget", "StackPool", "TargetPool", "attach_live", "live_inputs", "local_stack_factory"]
