"""The twin's Yjs server against the real JavaScript stack: yjs 13.6 + y-websocket's provider.

    $ .venv/bin/pytest -m interop tests/interop

A pycrdt client writes first; yjs_interop.mjs then connects two WebsocketProviders, which
must sync, see the Python text, exchange their own edits and converge; finally the Python
client must hold the same text and have seen the JS provider's awareness. Pinned packages
live in package.json / package-lock.json here; node_modules is installed with `npm ci` on
first use and never committed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.twin._yjs import YjsTestClient, unique_document

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "yjs_interop.mjs"


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable with this directory's npm packages installed."""
    node_bin = shutil.which("node")
    if node_bin is None:
        pytest.skip("node is not installed (Node 18+ runs the JavaScript interoperability test)")
    if not (HERE / "node_modules" / "y-websocket").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("tests/interop/node_modules is missing and npm is not installed; install npm or run `npm ci`")
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            pytest.fail(f"`npm ci` in {HERE} failed ({result.returncode}): " + " | ".join(tail))
    return node_bin


def test_javascript_providers_and_a_pycrdt_client_edit_one_document(twin, node):
    doc = unique_document("interop")
    with YjsTestClient(twin.yjs_url, doc, timeout=20) as python:
        python.sync()
        python.insert(0, "from-python;")
        python.wait_for(lambda: python.echoes == 1, what="echo of the Python edit")
        result = subprocess.run(
            [node, str(SCRIPT), twin.yjs_url, doc, "from-python;"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"node: {result.stderr.strip() or result.stdout.strip()}"
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["ok"] is True
        js_text = report["text"]
        assert sorted(js_text.split(";")[:-1]) == ["from-python", "js-one", "js-two"]
        # JS -> Python: the pycrdt client converges on exactly the JS documents' text.
        python.wait_for(lambda: python.content == js_text, what="the JS edits in the Python doc")
        seen_names = [state.get("user", {}).get("name") for state in python.awareness_seen.values()]
        assert "js-one" in seen_names
        # The providers were destroyed: their awareness states are gone again.
        python.wait_for(lambda: not python.awareness, what="JS awareness removal")
