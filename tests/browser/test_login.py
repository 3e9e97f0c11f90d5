"""Logging in and out of the dashboard in a real browser (Chromium)."""

from __future__ import annotations

from browser_support import Browse, Screenshot
from playwright.sync_api import expect


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


def test_a_login_form_posted_from_another_site_is_refused(browse: Browse) -> None:
    """Another origin (here another port of 127.0.0.1, answered by the browser itself) posts
    a login form to trackd: refused, and the browser is not logged in."""
    browse.allow("status of 403")
    page = browse.page(logged_in=False)
    page.goto(browse.url("/ui/login"))  # the browser holds a CSRF cookie of trackd's
    attacker = "http://127.0.0.1:9/attack"
    page.context.route(
        attacker,
        lambda route: route.fulfill(
            content_type="text/html",
            body=(
                f'<form method="post" action="{browse.url("/ui/login")}">'
                f'<input name="token" value="{browse.served.token}">'
                '<input name="csrf" value="guessed"><button>go</button></form>'
            ),
        ),
    )
    page.goto(attacker)
    with page.expect_navigation():
        page.get_by_role("button", name="go").click()
    expect(page.get_by_role("alert")).to_contain_text("cross-site posts are refused")
    page.goto(browse.url("/ui"))
    assert page.url == browse.url("/ui/login")
