"""Headless Chromium (Playwright) on a running Airflow: sign in, open the status page from the
UI's Browse menu. The status page tests drive the page through these."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from support.deployment import ROOT, Deployment

CHROMIUM = os.environ.get("FEATURESTORE_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("FEATURESTORE_TEST_ARTIFACTS", ROOT / "test-artifacts"))


def launch(playwright):  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run scripts/services.sh (it installs Debian's chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    )


def sign_in(d: Deployment, page, user: str = "admin") -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{d.airflow.base_url}/")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(d.airflow.passwords[user])
    page.get_by_role("button", name="Sign in").click()


def open_status_page(page):  # type: ignore[no-untyped-def]
    """Browse -> Feature store: the page inside the Airflow UI (its frame)."""
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Feature store").click()
    page.wait_for_url(re.compile(r"/plugin/featurestore(/|$)"))
    return page.frame_locator("iframe")
