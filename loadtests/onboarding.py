"""Onboarding waves: new people registering and logging in, the bcrypt-heavy traffic.

    $ locust -f loadtests --headless --profile spike

Each task is a wave of `onboarding_wave` new accounts, each registered and then logged in
once (two bcrypt hashes at CodeSync's cost 12 on the server, ~100-300 ms of CPU each), with
`onboarding` think time between waves. Register and login are not rate limited.
"""

from __future__ import annotations

from _base import PASSWORD, CodeSyncUser
from _runtime import RUNTIME
from _shape import ProfileShape  # noqa: F401  (the run's load shape; Locust finds it here)
from locust import task


class OnboardingUser(CodeSyncUser):
    kind = "onboarding"
    weight = 1

    def wait_time(self) -> float:
        return self.rng.uniform(*self.think.onboarding)

    @task
    def wave(self) -> None:
        for _ in range(self.think.onboarding_wave):
            n = RUNTIME.next_user_number()
            email = f"new-{RUNTIME.run_id}-{self.number}-{n}@load.codesync.test"
            client = self.new_rest_client()
            try:
                if client.register(email, PASSWORD, f"Newcomer {n}").ok:
                    client.login(email, PASSWORD)
            finally:
                client.close()
