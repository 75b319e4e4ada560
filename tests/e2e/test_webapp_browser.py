"""The web app in a real browser: Debian's headless chromium, driven by Selenium, against a real `wren up`.

Screenshots of each page go to $WREN_WEBAPP_SCREENSHOTS when it is set (`docs/img` refreshes the README's),
otherwise to a temporary directory. The stack serves the tiny test bundle, or $WREN_WEBAPP_ARTIFACTS when set
(any trained artifacts root, e.g. the one `make demo` serves).
"""
# Long: every page's checks share one browser session and one `wren up` stack (module fixtures).

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.conftest import REPO
from wren.core.bundle import Bundle

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS_ENV = "WREN_WEBAPP_SCREENSHOTS"
ARTIFACTS_ENV = "WREN_WEBAPP_ARTIFACTS"
START_SECONDS = 180.0  # `wren up` loads every tier before it prints its first line
WAIT_SECONDS = 20  # the longest any condition is waited for; conditions, never sleeps
DESKTOP_SHOT_HEIGHT = 1600
# Settings for the stack's gateway: deadlines generous enough that a busy shared machine still gets full (not
# degraded) answers, and a result cache that outlives the test, so the page shows the list the test fetched.
GATEWAY_ENV = {
    "WREN_BUDGET_MS": "3000",
    "WREN_FEATURE_TIMEOUT_MS": "1000",
    "WREN_RECALL_TIMEOUT_MS": "1000",
    "WREN_RANKING_TIMEOUT_MS": "1000",
    "WREN_RESULTS_CACHE_TTL_SECONDS": "600",
}
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


@dataclass
class Site:
    url: str  # the address `wren up` printed first, "http://127.0.0.1:PORT/"
    state: dict[str, Any]  # its state.json: the processes and their pids
    artifacts: Path

    def user(self, row: int) -> int:
        """The id of the bundle's user in `row`: a user with ratings."""
        return int(Bundle(self.artifacts).users.ids[row])

    def pid(self, name: str) -> int:
        return next(p["pid"] for p in self.state["processes"] if p["name"] == name)

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url.rstrip("/") + path)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, path: str) -> dict[str, Any]:
        status, _, body = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def full_answer(self, user: int) -> dict[str, Any]:
        """The user's recommendations once not degraded; the gateway caches exactly those, so a page asking next
        is shown this same list."""
        path = f"/v1/recommendations?user_id={user}&k=10"
        return WebDriverWait(self, WAIT_SECONDS, poll_frequency=0.2).until(
            lambda site: (answer := site.json(path)) and not answer["degraded"] and answer, f"a full answer for {user}"
        )


def _read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))


def first_line(process: subprocess.Popen, lines: queue.Queue[str]) -> str:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            return lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                pytest.fail(f"wren up exited with code {process.returncode} before printing anything")
            if time.monotonic() > deadline:
                pytest.fail(f"wren up printed nothing in {START_SECONDS:.0f} s")


@pytest.fixture(scope="module")
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`wren up` as a user runs it (any free ports), until its first line names the site's address."""
    chosen = os.environ.get(ARTIFACTS_ENV)
    artifacts = Path(chosen) if chosen else request.getfixturevalue("tiny_artifacts")
    state_dir = tmp_path_factory.mktemp("webapp-stack")
    env = {**os.environ, "WREN_LOG_LEVEL": "WARNING", **GATEWAY_ENV}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wren.cli.main",
            "up",
            "--artifacts",
            str(artifacts),
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--state-dir",
            str(state_dir),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        first = first_line(process, lines)
        assert first.startswith("Wren is up: open http://127.0.0.1:"), first
        url = first.removeprefix("Wren is up: open ")
        yield Site(url, json.loads((state_dir / "state.json").read_text()), artifacts)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get(SCREENSHOTS_ENV)
    directory = Path(target) if target else tmp_path_factory.mktemp("webapp-screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.exists():
            pytest.fail(f"{binary} is missing; run `make install` (it installs chromium and chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--lang=en-US",
        "--no-first-run",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """SEVERE browser-console entries since the last call (reading the log empties it)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


@pytest.fixture
def page(browser: webdriver.Chrome, site: Site) -> Iterator[webdriver.Chrome]:
    """The browser on a clean slate (no chosen user, desktop size); after the test its console has no errors."""
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.get(site.url + "static/favicon.svg")
    browser.execute_script("window.localStorage.clear()")
    console_errors(browser)
    yield browser
    assert console_errors(browser) == []


def wait_for(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], Any], what: str) -> Any:
    return WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=[WebDriverException]).until(condition, what)


def elements(driver: webdriver.Chrome, css: str, minimum: int = 1) -> list[WebElement]:
    """Waits until at least `minimum` elements match `css` and returns them all."""
    return wait_for(
        driver,
        lambda d: (found := d.find_elements(By.CSS_SELECTOR, css)) and len(found) >= minimum and found,
        f"{minimum}+ elements matching {css!r}",
    )


def text_of(driver: webdriver.Chrome, css: str, contains: str) -> str:
    return wait_for(
        driver,
        lambda d: next((e.text for e in d.find_elements(By.CSS_SELECTOR, css) if contains in e.text), None),
        f"{css!r} containing {contains!r}",
    )


def item_ids(driver: webdriver.Chrome, css: str) -> list[int]:
    return [int(e.get_attribute("data-item-id")) for e in driver.find_elements(By.CSS_SELECTOR, css)]


def words(title: str) -> list[str]:
    """A title's words in any order: the page writes "Matrix, The (1999)" as "The Matrix (1999)"."""
    return sorted(re.findall(r"\w+", title.lower()))


def settled(driver: webdriver.Chrome) -> None:
    """Waits until no part of the page is still loading."""
    wait_for(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, ".loading, [aria-busy='true']"), "page loaded")


def shoot(driver: webdriver.Chrome, directory: Path, name: str, tall: bool = True) -> Path:
    """A PNG of the page; `tall` shows up to DESKTOP_SHOT_HEIGHT pixels of it, not only the window's height."""
    path = directory / f"webapp-{name}.png"
    if tall:
        height = min(DESKTOP_SHOT_HEIGHT, driver.execute_script("return document.documentElement.scrollHeight"))
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
    try:
        assert driver.save_screenshot(str(path)), path
    finally:
        if tall:
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def test_pages_and_assets_over_http(site: Site) -> None:
    """Every page address answers the app itself, deep links included; assets have their types; misses are 404."""
    status, headers, shell = site.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for path in ("/movies/1", "/movies/999999", "/users/3", "/users/not-a-number"):
        assert site.get(path)[::2] == (200, shell), path
    status, headers, icon = site.get("/favicon.ico")  # browsers ask for it unprompted
    assert status == 200 and headers["Content-Type"] == "image/svg+xml" and icon.startswith(b"<svg")
    status, headers, _ = site.get("/static/app.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    status, headers, _ = site.get("/static/app.css")
    assert status == 200 and headers["Content-Type"].startswith("text/css") and headers["ETag"]
    request = urllib.request.Request(site.url + "static/app.css", headers={"If-None-Match": headers["ETag"]})
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(request, timeout=10)
    assert not_modified.value.code == 304
    status, _, body = site.get("/static/../pyproject.toml")
    assert status == 404 and json.loads(body)["error"]["code"]
    status, _, body = site.get("/static/missing.js")
    assert status == 404 and json.loads(body)["error"]["code"] == "NOT_FOUND"


def test_home_movie_and_similar_movies(page: webdriver.Chrome, site: Site, screenshots: Path) -> None:
    page.get(site.url)
    genres = site.json("/v1/genres")["genres"]
    rows = elements(page, ".genre-row", len(genres))
    assert [row.get_attribute("data-genre") for row in rows] == [g["genre"] for g in genres]
    first_genre = genres[0]["genre"]
    top = site.json(f"/v1/genres/{urllib.parse.quote(first_genre)}/items?sort=rating&k=12")["items"]
    elements(page, ".genre-row .tile", len(top))
    assert item_ids(page, f".genre-row[data-genre='{first_genre}'] .tile") == [i["item_id"] for i in top]
    assert "Choose a user" in page.find_element(By.ID, "main").text

    user = site.user(5)
    expected = site.full_answer(user)
    field = page.find_element(By.ID, "user-id")
    field.send_keys(str(user), Keys.ENTER)
    wait_for(page, lambda d: d.current_url.endswith(f"/?user={user}"), "the address names the user")
    cards = elements(page, ".recommended .card")
    assert item_ids(page, ".recommended .card") == [i["item_id"] for i in expected["items"]]
    assert "from the gateway's cache" in page.find_element(By.CSS_SELECTOR, ".recommended .answer-meta").text
    why = cards[0].find_element(By.CSS_SELECTOR, "details.why")
    why.find_element(By.TAG_NAME, "summary").click()
    explained = why.text
    assert "Recall channels" in explained and expected["model_version"] in explained
    assert all(source in explained for source in expected["items"][0]["sources"])
    assert f"variant {expected['variant']}" in explained and "yes, from the gateway's result cache" in explained
    settled(page)
    shoot(page, screenshots, "home")

    query = top[0]["title"].split(",")[0].split(" (")[0]
    page.find_element(By.ID, "search-q").send_keys(query, Keys.ENTER)
    wait_for(page, lambda d: "?q=" in d.current_url, "the search's address")
    found = site.json(f"/v1/items?{urllib.parse.urlencode({'q': query, 'k': 24})}")["items"]
    assert found and top[0]["item_id"] in [i["item_id"] for i in found]
    elements(page, ".search-results .tile", len(found))
    assert item_ids(page, ".search-results .tile") == [i["item_id"] for i in found]
    settled(page)

    tile = page.find_element(By.CSS_SELECTOR, f".genre-row[data-genre='{first_genre}'] .tile a.title")
    movie = top[0]["item_id"]
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", tile)
    tile.click()
    wait_for(page, lambda d: d.current_url == f"{site.url}movies/{movie}", "the movie's address")
    details = site.json(f"/v1/items/{movie}")["item"]
    heading = text_of(page, "main h1", str(details["year"]))
    assert words(heading) == words(details["title"]) and page.title == f"{heading.split(' (')[0]} · Wren"
    similar = site.json(f"/v1/items/{movie}/similar?k=12")["items"]
    elements(page, ".similar .card", len(similar))
    assert item_ids(page, ".similar .card") == [i["item_id"] for i in similar]
    why = page.find_element(By.CSS_SELECTOR, ".similar .card details.why")
    why.find_element(By.TAG_NAME, "summary").click()
    assert all(source in why.text for source in similar[0]["sources"]) and "this movie" in why.text
    for tag in details["tags"]:
        assert tag in page.find_element(By.CSS_SELECTOR, ".movie .tags").text
    settled(page)
    shoot(page, screenshots, "movie")

    other = site.json(f"/v1/items/{similar[0]['item_id']}")["item"]
    page.get(f"{site.url}movies/{other['item_id']}")  # a deep link loads directly
    wait_for(
        page,
        lambda d: words(d.find_element(By.CSS_SELECTOR, "main h1").text) == words(other["title"]),
        f"the heading of {other['title']}",
    )
    page.back()
    wait_for(page, lambda d: d.current_url == f"{site.url}movies/{movie}", "back to the first movie")
    elements(page, ".similar .card", len(similar))


def test_rating_on_the_user_page_updates_recommendations(page: webdriver.Chrome, site: Site, screenshots: Path) -> None:
    user = site.user(12)
    profile = site.json(f"/v1/users/{user}?limit=20")
    page.get(f"{site.url}users/{user}")
    text_of(page, "main h1", f"User {user}")
    assert profile["segment"] in page.find_element(By.CSS_SELECTOR, ".segment").text
    rows = elements(page, ".ratings tbody tr", len(profile["ratings"]))
    assert item_ids(page, ".ratings tbody tr") == [r["item"]["item_id"] for r in profile["ratings"]]
    assert len(rows) == min(20, profile["total"])
    cards = elements(page, ".recommended .card", 2)
    settled(page)
    shoot(page, screenshots, "user")

    before = item_ids(page, ".recommended .card")
    rated = before[0]
    Select(cards[0].find_element(By.TAG_NAME, "select")).select_by_value("4.5")
    cards[0].find_element(By.CSS_SELECTOR, "form.rate button").click()
    wait_for(
        page,
        lambda d: len(now := item_ids(d, ".recommended .card")) == len(before) and rated not in now,
        "a full new list, without the rated movie",
    )
    after = item_ids(page, ".recommended .card")
    assert rated not in after and len(after) == len(before)
    wait_for(page, lambda d: item_ids(d, ".ratings tbody tr")[:1] == [rated], "the rating on top of the ratings")
    assert "4.5" in page.find_element(By.CSS_SELECTOR, ".ratings tbody tr").text
    assert rated not in [i["item_id"] for i in site.json(f"/v1/recommendations?user_id={user}&k=10")["items"]]
    assert site.json(f"/v1/users/{user}?limit=1")["ratings"][0]["item"]["item_id"] == rated

    older = site.json(f"/v1/users/{user}?offset=20&limit=20")
    assert older["ratings"], "the test user needs more than one page of ratings"
    page.find_element(By.CSS_SELECTOR, ".pager a[rel='next']").click()
    wait_for(page, lambda d: d.current_url.endswith(f"/users/{user}?offset=20"), "the second page's address")
    wait_for(
        page,
        lambda d: item_ids(d, ".ratings tbody tr") == [r["item"]["item_id"] for r in older["ratings"]],
        "the second page of ratings",
    )
    assert page.find_element(By.CSS_SELECTOR, ".pager a[rel='prev']").get_attribute("href").endswith(f"/users/{user}")


def test_rating_from_a_movie_page_as_a_typed_user(page: webdriver.Chrome, site: Site) -> None:
    """With no user chosen, the movie page asks for one; a bad id is refused with a message, a good one rates."""
    user, movie = site.user(30), 3
    page.get(f"{site.url}movies/{movie}")
    form = elements(page, ".rate-movie form")[0]
    form.find_element(By.ID, "rate-user").send_keys("zero")
    form.find_element(By.TAG_NAME, "button").click()
    text_of(page, ".rate-movie .form-status", "Not saved: enter a user id")
    field = form.find_element(By.ID, "rate-user")
    field.clear()
    field.send_keys(str(user))
    Select(form.find_element(By.TAG_NAME, "select")).select_by_value("2")
    form.find_element(By.TAG_NAME, "button").click()
    text_of(page, ".rate-movie [role='status']", f"Saved: user {user} rated")
    assert page.find_element(By.ID, "viewer").text == f"Viewing as user {user}"
    newest = site.json(f"/v1/users/{user}?limit=1")["ratings"][0]
    assert newest["item"]["item_id"] == movie and newest["rating"] == 2.0


def test_unknown_and_bad_ids_say_so(browser: webdriver.Chrome, site: Site) -> None:
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    console_errors(browser)
    for path, heading, code in (
        ("movies/999999", "Movie not found", "NOT_FOUND"),
        ("users/999999", "User not found", "NOT_FOUND"),
        ("users/abc", "User abc", "INVALID_ARGUMENT"),
    ):
        browser.get(site.url + path)
        text_of(browser, "main h1", heading)
        alert = text_of(browser, "[role='alert']", code)
        assert alert.startswith("Not found:" if code == "NOT_FOUND" else "Could not load"), alert
    # The only console entries are the browser's own notes of the API's 4xx answers shown above.
    for message in console_errors(browser):
        assert "the server responded with a status of 40" in message, message
    browser.get(site.url + "nowhere/at/all")
    assert json.loads(browser.find_element(By.TAG_NAME, "body").text)["error"]["code"]
    console_errors(browser)


def test_degraded_answer_is_shown(page: webdriver.Chrome, site: Site) -> None:
    """With ranking paused (SIGSTOP), the list comes in recall order and the page says so."""
    user = site.user(20)  # asked for nowhere else, so no cached full answer exists
    ranking = site.pid("ranking-1")
    os.kill(ranking, signal.SIGSTOP)
    try:
        page.get(f"{site.url}?user={user}")
        warning = text_of(page, ".recommended .notice.warn", "Degraded answer")
        assert "recall order" in warning and "degraded_reason: ranking_" in warning
        elements(page, ".recommended .card")
    finally:
        os.kill(ranking, signal.SIGCONT)


def test_phone_width_has_no_horizontal_overflow(page: webdriver.Chrome, site: Site, screenshots: Path) -> None:
    user = site.user(5)
    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    for path, name in (("", "phone-home"), ("movies/2", "phone-movie"), (f"users/{user}", "phone-user")):
        page.get(site.url + path + ("?user=" + str(user) if not path else ""))
        elements(page, ".card, .tile")
        settled(page)
        width = page.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
        assert width[0] == PHONE["width"], f"/{path}: viewport {width[0]}px; is the viewport meta missing?"
        assert width[1] <= width[0], f"/{path} is {width[1]}px wide on a {width[0]}px screen"
        shoot(page, screenshots, name, tall=False)


def test_keyboard_reaches_and_follows_a_movie_link(page: webdriver.Chrome, site: Site) -> None:
    page.get(site.url)
    elements(page, ".genre-row .tile")
    settled(page)
    body = page.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    focused = page.switch_to.active_element
    assert focused.text == "Skip to content"
    for _ in range(40):
        href = focused.get_attribute("href") or ""
        if "/movies/" in href:
            break
        focused.send_keys(Keys.TAB)
        focused = page.switch_to.active_element
    else:
        pytest.fail("40 presses of Tab never reached a movie link")
    outline = page.execute_script(
        "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineWidth]", focused
    )
    assert outline[0] != "none" and outline[1] != "0px", f"the focused link shows no focus ring: {outline}"
    focused.send_keys(Keys.ENTER)
    wait_for(page, lambda d: d.current_url == href, "the movie page the link names")
    text_of(page, "main h1", "")
    elements(page, ".similar .card")
