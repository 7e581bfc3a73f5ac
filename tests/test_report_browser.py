"""The report page in headless Chromium, opened from file:// as a user would.

Needs the Debian package ``chromium`` (/usr/bin/chromium) and the Python package
playwright; playwright never downloads a browser here.  Every test checks that the
page logged no console error and raised no page error.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from hpcsweep.report_server import ServedSite, bind_server, serve
from hpcsweep.store import Store
from test_report import HOSTILE, make_experiment

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("HPCSWEEP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DRAWN_STATES = ("drawn", "empty", "failed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (install the Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class PageLog:
    """What a page reported while a test ran."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, PageLog]]:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    log = PageLog()

    def on_console(message: Any) -> None:
        if message.type == "error":
            log.console_errors.append(f"{message.text} at {message.location.get('url')}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    page.on("requestfailed", lambda request: log.failed_requests.append(request.url))

    def on_dialog(dialog: Any) -> None:
        log.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page, log
    context.close()


def assert_clean(log: PageLog) -> None:
    assert log.console_errors == []
    assert log.page_errors == []
    assert log.dialogs == []
    assert log.failed_requests == []


def write_report(cli: Any, name: str) -> Path:
    result = cli("report", "-n", name)
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip())


def open_report(page: Any, index: Path) -> None:
    page.goto(index.as_uri())
    page.wait_for_function("document.documentElement.dataset.table === 'ready'", timeout=20_000)


def row_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("#trial-table tbody tr", "rows => rows.map(r => r.dataset.trial)")  # type: ignore[no-any-return]


def column_texts(page: Any, key: str) -> list[str]:
    return page.evaluate(  # type: ignore[no-any-return]
        """key => {
            const headers = [...document.querySelectorAll('#trial-table thead th')];
            const position = headers.findIndex(h => h.dataset.key === key);
            return [...document.querySelectorAll('#trial-table tbody tr')]
                .map(row => row.children[position].textContent);
        }""",
        key,
    )


def draw_every_plot(page: Any) -> list[dict[str, Any]]:
    """Scroll each plot into view, wait until it is drawn, and return its state and svg count."""
    for container in page.query_selector_all("[data-plot]"):
        container.scroll_into_view_if_needed()
        page.wait_for_function(
            "element => ['drawn', 'empty', 'failed'].includes(element.dataset.state)", arg=container, timeout=30_000,
        )
    return page.evaluate(  # type: ignore[no-any-return]
        """() => [...document.querySelectorAll('[data-plot]')].map(element => ({
            id: element.id, state: element.dataset.state, svgs: element.querySelectorAll('.main-svg').length,
            text: element.textContent}))"""
    )


# ------------------------------------------------------------------ table


def test_table_one_row_per_trial(cli: Any, page: Any) -> None:
    page, log = page
    trials = make_experiment(cli.root, "exp")
    open_report(page, write_report(cli, "exp"))
    assert sorted(row_ids(page)) == sorted(t["id"] for t in trials)
    assert page.text_content("#trial-total") == "12"
    assert page.text_content("#trial-range") == "1–12"
    assert page.is_hidden("#trial-matching-text")
    statuses = dict(zip(row_ids(page), column_texts(page, "status")))
    assert statuses == {t["id"]: t["expected_status"] for t in trials}
    assert page.is_hidden("#page-error")
    assert_clean(log)


def test_page_older_than_data(cli: Any, page: Any) -> None:
    page, log = page
    make_experiment(cli.root, "exp")
    index = write_report(cli, "exp")
    first_html = index.read_text()
    write_report(cli, "exp")
    # As if the browser had read index.html just before the second run replaced data.js.
    index.write_text(first_html)
    open_report(page, index)
    assert page.is_visible("#page-error")
    assert "reload it" in page.text_content("#page-error")
    assert len(row_ids(page)) == 12
    assert_clean(log)


def test_table_sorting(cli: Any, page: Any) -> None:
    page, log = page
    trials = make_experiment(cli.root, "exp")
    open_report(page, write_report(cli, "exp"))
    completed = sorted((t for t in trials if t["expected_objective"] is not None),
                       key=lambda t: t["expected_objective"])
    # The initial order is best objective first, trials without one last.
    assert row_ids(page)[: len(completed)] == [t["id"] for t in completed]
    assert page.get_attribute("th[data-key='objective']", "aria-sort") == "ascending"

    page.click("th[data-key='objective'] button")
    assert page.get_attribute("th[data-key='objective']", "aria-sort") == "descending"
    assert row_ids(page)[: len(completed)] == [t["id"] for t in reversed(completed)]

    page.click("th[data-key='number'] button")
    assert page.get_attribute("th[data-key='number']", "aria-sort") == "ascending"
    assert page.get_attribute("th[data-key='objective']", "aria-sort") == "none"
    assert column_texts(page, "number") == [str(n) for n in range(12)]
    page.click("th[data-key='number'] button")
    assert column_texts(page, "number") == [str(n) for n in reversed(range(12))]

    page.click("th[data-key='param:/lr'] button")
    values = [t["params"]["/lr"] for t in sorted(trials, key=lambda t: t["params"]["/lr"])]
    assert row_ids(page) == [t["id"] for t in sorted(trials, key=lambda t: t["params"]["/lr"])]
    assert values == sorted(values)
    assert_clean(log)


def test_table_filter_status(cli: Any, page: Any) -> None:
    page, log = page
    trials = make_experiment(cli.root, "exp")
    open_report(page, write_report(cli, "exp"))
    page.select_option("#filter-status", "broken")
    broken = [t["id"] for t in trials if t["expected_status"] == "broken"]
    assert sorted(row_ids(page)) == sorted(broken)
    assert page.text_content("#trial-total") == "12"
    assert page.text_content("#trial-matching") == str(len(broken))
    assert page.is_visible("#trial-matching-text")
    page.select_option("#filter-status", "")
    assert len(row_ids(page)) == 12
    assert_clean(log)


def test_table_filter_parameter(cli: Any, page: Any) -> None:
    page, log = page
    trials = make_experiment(cli.root, "exp")
    open_report(page, write_report(cli, "exp"))
    page.select_option("#filter-column", "param:/act")
    page.fill("#filter-value", "= relu")
    assert sorted(row_ids(page)) == sorted(t["id"] for t in trials if t["params"]["/act"] == "relu")

    page.select_option("#filter-column", "param:/lr")
    page.fill("#filter-value", "< 0.01")
    assert sorted(row_ids(page)) == sorted(t["id"] for t in trials if t["params"]["/lr"] < 0.01)

    page.select_option("#filter-column", "objective")
    page.fill("#filter-value", ">= 0.5")
    expected = [t["id"] for t in trials if t["expected_objective"] is not None and t["expected_objective"] >= 0.5]
    assert sorted(row_ids(page)) == sorted(expected)
    assert page.text_content("#trial-total") == "12"
    assert_clean(log)


def test_table_paging(cli: Any, page: Any) -> None:
    page, log = page
    make_experiment(cli.root, "exp", count=120)
    open_report(page, write_report(cli, "exp"))
    seen = row_ids(page)
    assert len(seen) == 50
    assert page.text_content("#trial-total") == "120"
    assert page.text_content("#page-label") == "page 1 of 3"
    assert page.is_disabled("#page-previous")
    page.click("#page-next")
    seen += row_ids(page)
    page.click("#page-next")
    assert page.text_content("#trial-range") == "101–120"
    assert page.is_disabled("#page-next")
    seen += row_ids(page)
    assert len(set(seen)) == 120
    page.select_option("#page-size", "200")
    assert len(row_ids(page)) == 120
    assert_clean(log)


def test_log_links_resolve(cli: Any, page: Any) -> None:
    page, log = page
    trials = make_experiment(cli.root, "exp")
    open_report(page, write_report(cli, "exp"))
    links = page.eval_on_selector_all("a.log-link", "links => links.map(a => [a.textContent, a.href])")
    assert len(links) == 2 * sum(t["expected_status"] != "new" for t in trials)
    for label, href in links:
        path = Path(unquote(urlparse(href).path))
        assert urlparse(href).scheme == "file"
        assert path.name == f"{label}.log"
        assert path.is_file(), href
    # Chromium shows a log file in the tab.  Leave the page only once plotly.js has
    # loaded, or its request is cancelled and counts as a failed request.
    page.wait_for_function("typeof window.Plotly !== 'undefined'")
    with page.expect_navigation():
        page.locator("a.log-link").first.click()
    assert page.text_content("body").startswith("trial ")
    assert_clean(log)


# ------------------------------------------------------------------ plots


def test_plots_render(cli: Any, page: Any) -> None:
    page, log = page
    make_experiment(cli.root, "exp")
    open_report(page, write_report(cli, "exp"))
    plots = draw_every_plot(page)
    assert [p["id"] for p in plots] == ["plot-time", "plot-regret", "plot-parallel",
                                        "plot-param-0", "plot-param-1", "plot-param-2"]
    for plot in plots:
        assert plot["state"] == "drawn", plot
        assert plot["svgs"] >= 1, plot
    assert page.evaluate("document.getElementById('plot-param-0').layout.xaxis.type") == "log"
    assert page.evaluate("document.getElementById('plot-param-1').layout.xaxis.type") == "linear"
    assert page.evaluate("document.getElementById('plot-param-2').layout.xaxis.type") == "category"
    # The best-so-far line of the regret curve never rises when minimizing.
    best = page.evaluate("document.getElementById('plot-regret').data[1].y")
    assert len(best) == 8
    assert best == sorted(best, reverse=True)
    assert_clean(log)


def test_nothing_to_plot(cli: Any, page: Any) -> None:
    page, log = page
    make_experiment(cli.root, "exp", count=4, outcomes=("running", None, "broken"))
    open_report(page, write_report(cli, "exp"))
    plots = draw_every_plot(page)
    assert len(plots) == 3
    for plot in plots:
        assert plot["state"] == "empty"
        assert plot["text"] == "Nothing to plot yet: no trial has completed with an objective."
    assert page.text_content("#plot-params") == "Nothing to plot yet: no trial has completed with an objective."
    assert len(row_ids(page)) == 4
    assert_clean(log)


# ---------------------------------------------------------------- hostile


def test_hostile_value_is_text(cli: Any, page: Any) -> None:
    page, log = page
    trials = make_experiment(cli.root, "exp", count=8, outcomes=("completed", "broken"),
                             priors=(f"--act~choices(['{HOSTILE}', '<b>bold</b>', 'constructor'])",
                                     "--lr~uniform(0, 1)"))
    open_report(page, write_report(cli, "exp"))
    draw_every_plot(page)
    page.click("details summary")
    expected = ["" if value is None else value for value in (t["params"]["/act"] for t in trials)]
    page.click("th[data-key='number'] button")
    assert column_texts(page, "param:/act") == expected
    assert HOSTILE in expected
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    # plotly shows the category as text too: in the axis ticks of its plot.
    # plotly reads tags such as <b> in labels as markup, unless the page escapes them.
    ticks = page.eval_on_selector_all("#plot-param-0 .xtick text", "ticks => ticks.map(t => t.textContent)")
    assert HOSTILE in ticks
    assert "<b>bold</b>" in ticks
    parallel_ticks = page.eval_on_selector_all("#plot-parallel .tick text", "ticks => ticks.map(t => t.textContent)")
    assert "<b>bold</b>" in parallel_ticks
    assert "constructor" in parallel_ticks
    assert log.dialogs == []
    assert_clean(log)


# -------------------------------------------------------------- screenshot


def test_overview_screenshot(cli: Any, page: Any) -> None:
    page, log = page
    make_experiment(cli.root, "exp")
    open_report(page, write_report(cli, "exp"))
    page.wait_for_function("document.getElementById('plot-time').dataset.state === 'drawn'", timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "report-overview.png"
    page.locator("#overview").screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    assert page.text_content("#experiment-name") == "exp"
    assert_clean(log)


def test_page_without_plotly(cli: Any, page: Any) -> None:
    page, log = page
    make_experiment(cli.root, "exp")
    index = write_report(cli, "exp")
    (index.parent / "plotly.min.js").unlink()
    open_report(page, index)
    plots = draw_every_plot(page)
    assert {plot["state"] for plot in plots} == {"failed"}
    assert "plotly.min.js did not load" in plots[0]["text"]
    assert len(row_ids(page)) == 12
    assert len(log.failed_requests) == 1
    assert log.failed_requests[0].split("?")[0].endswith("/plotly.min.js")


def test_served_page(cli: Any, page: Any) -> None:
    page, log = page
    make_experiment(cli.root, "exp")
    write_report(cli, "exp")
    store = Store(cli.root)
    site = ServedSite.for_report(store.experiment_dir("exp") / "report", store.root,
                                 store.experiment_dir("exp") / "trials")
    server = bind_server(site, 0)
    thread = threading.Thread(target=serve, args=(server, site), daemon=True)
    thread.start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/report/")
        page.wait_for_function("document.documentElement.dataset.table === 'ready'", timeout=20_000)
        assert len(row_ids(page)) == 12
        assert all(p["state"] == "drawn" for p in draw_every_plot(page))
        stdout_link = page.locator("a.log-link").first
        with page.expect_navigation():
            stdout_link.click()
        assert page.text_content("body").startswith("trial ")
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert_clean(log)
