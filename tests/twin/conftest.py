"""Fixtures shared by the twin's HTTP tests: registered users on the module's `api` twin.

    @pytest.fixture(scope="module")
    def api(tmp_path_factory):
        with isolated_twin(tmp_path_factory.mktemp("files"), "filestwin") as twin:
            yield twin

    def test_x(owner, guest): ...

Each test module starts its own `api` twin (see tests/twin/_http.isolated_twin); the users
here register on whichever `api` the requesting module defines, one fresh account a test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codesync_load.twin_process import TwinProcess
from tests.twin._http import CookieClient


def _registered(api: TwinProcess, name: str) -> Iterator[CookieClient]:
    with CookieClient(api.api_url) as client:
        client.user = client.register(name=name)
        yield client


@pytest.fixture
def owner(api: TwinProcess) -> Iterator[CookieClient]:
    """A freshly registered user named Owner, with its cookies."""
    yield from _registered(api, "Owner")


@pytest.fixture
def guest(api: TwinProcess) -> Iterator[CookieClient]:
    """A second freshly registered user, named Guest."""
    yield from _registered(api, "Guest")
