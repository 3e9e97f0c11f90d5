"""Logging in and out of the dashboard in a real browser (Chromium)."""

from __future__ import annotations

from browser_support import Browse, Screenshot


def test_log_in_through_the_form_then_log_out(browse: Browse, screenshot: Screenshot) -> None:
    page = browse.page(logged_in=False)
    page.goto(browse.url("/ui"))
    assert page.url == browse.url("/ui/login")
    screenshot(page, "login")
    browse.log_in(page)
    assert page.get_by_role("heading", name="Plans").is_visible()
    assert "tenant default" in page.get_by_role("navigation", name="main").inner_text()

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(browse.url("/ui/login"))
    page.goto(browse.url("/ui"))
    assert page.url == browse.url("/ui/login")


def test_a_wrong_token_is_refused_on_the_form(browse: Browse) -> None:
    page = browse.page(logged_in=False)
    browse.allow("status of 401")  # the form's answer to a wrong token is a 401 page
    page.goto(browse.url("/ui/login"))
    page.get_by_label("API token").fill("trk_wrong")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "unknown or revoked token"
