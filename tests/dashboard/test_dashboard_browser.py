"""The dashboard in headless Chromium (over the DevTools protocol): it draws every panel, a screenshot
shows them, and the measurement count and coverage change after an agent posts, without a reload."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.dashboard.cdp import CHROMIUM, Browser
from tests.dashboard.lab import PARK_ERROR, SLOW_BOARD, build, op_keys, post_ops, register
from tests.server.test_validations_live import RES, SPACE, TARGET

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium, "
                                                          "or scripts/install.sh)")
COVERED = f"document.querySelector('#coverage tr[data-key=\"{SPACE}|{RES}|{TARGET.id}\"]')"


def colours(png: Path) -> int:
    import matplotlib.image as mpimg
    import numpy as np

    rgb = (np.asarray(mpimg.imread(str(png)))[..., :3] * 255).astype("uint8").reshape(-1, 3)
    return len(np.unique(rgb, axis=0))


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path)
    yield b
    b.close()


def test_number_changes_after_an_agent_posts(live_server, browser, tmp_path):
    register(live_server)
    keys = op_keys()
    post_ops(live_server, "cpu-val-02", keys[:5])
    browser.goto(live_server.url + "/")
    browser.wait_for("document.getElementById('n-measurements').textContent", lambda v: v == "5")
    # identity (skip) candidates cost 0 and count as measured from the start
    first = int(browser.js(COVERED + ".dataset.measured"))
    assert first >= 5
    browser.js("window.__same_page = 'yes'")  # gone if the page were reloaded
    browser.screenshot(tmp_path / "before.png")

    post_ops(live_server, "cpu-val-02", keys[5:12])  # an agent posts 7 more ops
    assert browser.wait_for("document.getElementById('n-measurements').textContent", lambda v: v != "5") == "12"
    browser.wait_for(COVERED + ".dataset.measured", lambda v: v == str(first + 7))
    assert browser.js("window.__same_page") == "yes"
    assert int(browser.js("document.body.dataset.polls")) >= 2
    agent = browser.js("document.querySelector('#agents-table tr[data-board=\"cpu-val-02\"]').textContent")
    assert "online" in agent and "ago" in agent


@pytest.mark.slow
def test_every_panel_draws(live_server, browser, tmp_path):
    lab = build(live_server)
    browser.goto(live_server.url + "/")
    browser.wait_for("document.querySelectorAll('#fleet-panels .fleet-class').length", lambda v: v == 1)
    browser.wait_for("document.querySelectorAll('#heatmap-panels svg rect.cell').length", lambda v: v > 50)
    maps = httpx.get(live_server.api + "/dashboard/heatmaps").json()
    cells = sum(not m for h in maps for row in h["mask"] for m in row)
    assert browser.js("document.querySelectorAll('#heatmap-panels svg rect.cell').length") == cells  # masked: blank
    assert browser.js("document.querySelectorAll('#heatmap-panels svg rect.missing').length") == sum(
        v is None and not m for h in maps for row, mrow in zip(h["matrix"], h["mask"]) for v, m in zip(row, mrow))
    shot = browser.screenshot(tmp_path / "dashboard.png")
    assert shot.stat().st_size > 20_000 and colours(shot) > 200, "the screenshot looks blank"
    dom = browser.dom()
    for section in ("overview", "agents", "parked", "truth", "heatmaps", "fleet"):
        assert f'<section id="{section}"' in dom, section
    assert browser.js("document.getElementById('n-parked').textContent") == "1"
    assert PARK_ERROR.splitlines()[0] in browser.js("document.querySelector('#parked-table td.err').textContent")
    assert browser.js("document.querySelectorAll('#truth-panels circle.point').length") == 11
    assert browser.js("document.querySelectorAll('#truth-panels polygon.band').length") == 1
    assert browser.js("document.querySelector('#truth-panels [data-stale]').dataset.stale") == "0"
    held = browser.js("document.querySelector('#agents-table tr[data-board=\"cpu-val-04\"]').textContent")
    assert f"#{lab['held']['id']}" in held and "online" in held
    slow = browser.js(f"document.querySelector('.fleet-boards tr[data-board=\"{SLOW_BOARD}\"]').textContent")
    assert slow.endswith("3")  # three ops off by more than 10%
    rows = browser.js("[...document.querySelectorAll('.disagreements tbody tr')].map(r => r.dataset.board)")
    assert rows == [SLOW_BOARD] * 3
    assert not browser.js("document.getElementById('problem').hidden === false")
    # no re-queue button for anonymous readers
    assert browser.js("document.querySelectorAll('#parked-table button').length") == 0


def test_admin_requeues_from_the_page(live_server, browser):
    """An admin's token pasted into the page shows re-queue buttons; one click re-queues the parked job."""
    lab = build(live_server)
    browser.goto(live_server.url + "/")
    browser.wait_for("document.getElementById('n-parked').textContent", lambda v: v == "1")
    browser.js(f"document.getElementById('token').value = {json.dumps(live_server.admin_token)};"
               "document.querySelector('#token-form button[type=submit]').click()")
    browser.wait_for("document.getElementById('whoami').textContent", lambda v: v == "token: admin")
    browser.wait_for("document.querySelectorAll('#parked-table button').length", lambda v: v == 1)
    browser.js("document.querySelector('#parked-table button').click()")
    browser.wait_for("document.getElementById('n-parked').textContent", lambda v: v == "0")
    audit = httpx.get(live_server.api + "/audit", params={"action": "jobs.requeue"}, headers=live_server.headers())
    assert audit.json()[0]["detail"]["job_ids"] == [lab["parked"]]


def test_token_gated_page_asks_for_a_token(start_server, browser):
    srv = start_server(read_token_required=True)
    browser.goto(srv.url + "/")
    browser.wait_for("document.getElementById('problem').textContent", lambda v: "token" in v and "401" in v)
    assert browser.js("document.getElementById('n-measurements').textContent") == "-"
    tok = srv.read_token()
    browser.js(f"document.getElementById('token').value = {json.dumps(tok)};"
               "document.querySelector('#token-form button[type=submit]').click()")
    browser.wait_for("document.getElementById('n-measurements').textContent", lambda v: v == "0")
    assert browser.js("document.getElementById('whoami').textContent") == "token: read"
