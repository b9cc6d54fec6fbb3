#!/usr/bin/env python3
"""The web playground in a real browser: Playwright (PyPI, pinned in
scripts/ensure-tools.sh) driving Debian's chromium, headless, against a running stack.

Environment:
  PLAYGROUND_URL          the stack, e.g. http://127.0.0.1:8080
  PLAYGROUND_LIMITED_URL  a second stack whose /login and /register allow 2 calls a minute
  PLAYGROUND_SHOTS        where screenshots go (default target/playground)
  PLAYGROUND_DOC_SHOT     optional: copy the README's screenshot there (docs/playground.png)
  CHROMIUM                the browser (default /usr/bin/chromium)

Prints "every check passed" at the end; any failure raises (exit status 1).
"""

import os
import re
import shutil
import struct
import sys
import time
import uuid
import zlib

from playwright.sync_api import expect, sync_playwright

BASE = os.environ["PLAYGROUND_URL"].rstrip("/")
LIMITED = os.environ.get("PLAYGROUND_LIMITED_URL", "").rstrip("/")
SHOTS = os.environ.get("PLAYGROUND_SHOTS", "target/playground")
DOC_SHOT = os.environ.get("PLAYGROUND_DOC_SHOT", "")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORD = "playground-password"
# Every wait is bounded: a task here takes well under a second to a few seconds.
TASK_TIMEOUT_MS = 60_000

expect.set_options(timeout=TASK_TIMEOUT_MS)

# Sent to a browser's console by requests the checks make fail on purpose: a 400, a 413
# and a 429 from the API, the 404 of an events stream this server may not have, and requests
# aborted to make the server unreachable. Anything else in the console is a failure.
EXPECTED_CONSOLE = [
    re.compile(r"Failed to load resource: the server responded with a status of (400|409|413|429)"),
    re.compile(r"Failed to load resource: the server responded with a status of 404"),
    re.compile(r"Failed to load resource: net::ERR_FAILED"),
]
EXPECTED_404 = re.compile(r"/task/[0-9a-f-]{36}/events$")

# Every page opened, for screenshots when a check fails.
PAGES = []

CSP_PROBE = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def log(msg):
    print(f"playground: {msg}", flush=True)


def png(width, height):
    """A small RGB PNG with a gradient and a sharp square (so a blur visibly changes it)."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            inside = width // 3 <= x < 2 * width // 3 and height // 3 <= y < 2 * height // 3
            row += bytes((255, 255, 255) if inside else (x * 255 // width, y * 255 // height, 160))
        rows.append(bytes(row))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


def noise_png(width, height):
    """An RGB PNG of random pixels: it does not compress, so about width × height × 3 bytes."""
    raw = b"".join(b"\0" + os.urandom(width * 3) for _ in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


class Console:
    """Console errors, page errors and CSP violations of one page."""

    def __init__(self, page):
        self.problems = []
        page.on("console", self.on_console)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def on_console(self, msg):
        if msg.type not in ("error", "warning"):
            return
        text = msg.text
        url = (msg.location or {}).get("url", "")
        if "status of 404" in text and not EXPECTED_404.search(url):
            self.problems.append(f"console {msg.type}: {text} ({url})")
            return
        if any(p.search(text) for p in EXPECTED_CONSOLE):
            return
        self.problems.append(f"console {msg.type}: {text} ({url})")


def shot(page, name, full_page=True):
    # From the top, where the message banner sits.
    try:
        page.evaluate("() => window.scrollTo(0, 0)")
    except Exception as e:  # a page navigating away: the picture is still worth taking
        log(f"could not scroll to the top: {e}")
    path = os.path.join(SHOTS, f"{name}.png")
    page.screenshot(path=path, full_page=full_page)
    log(f"screenshot {path}")
    return path


def new_page(browser, viewport=None, **kw):
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900}, **kw)
    context.add_init_script(CSP_PROBE)
    page = context.new_page()
    PAGES.append(page)
    return context, page, Console(page)


def set_code(page, code):
    # CodeMirror 5 keeps its editor on the wrapper element.
    page.evaluate("(c) => document.querySelector('.CodeMirror').CodeMirror.setValue(c)", code)


def code_of(page):
    return page.evaluate("() => document.querySelector('.CodeMirror').CodeMirror.getValue()")


def register(page, username):
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_response(lambda r: r.url.endswith("/login")) as login:
        page.get_by_role("button", name="Register").click()
    assert login.value.status == 200, login.value.status
    expect(page.locator("#who")).to_have_text(username)


def login(page, username):
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def run_and_wait(page):
    """Clicks Run and waits for the task's verdict; returns the task id."""
    with page.expect_response(lambda r: r.url.endswith("/task") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Run").click()
    assert posted.value.status == 202, f"POST /task: {posted.value.status} {posted.value.text()}"
    task_id = posted.value.json()["id"]
    expect(page.locator("#task-id")).to_have_text(task_id)
    expect(page.locator("#verdict")).to_be_visible()
    expect(page.get_by_role("button", name="Run")).to_be_enabled()
    return task_id


def check_headers(page):
    res = page.goto(BASE + "/")
    assert res.status == 200, res.status
    h = res.headers
    csp = h.get("content-security-policy", "")
    for part in ("default-src 'self'", "connect-src 'self'", "img-src 'self' blob: data:",
                 "script-src 'self'", "style-src 'self'"):
        assert part in csp, f"CSP lacks {part!r}: {csp!r}"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    assert h.get("x-content-type-options") == "nosniff", h
    assert h.get("content-type", "").startswith("text/html"), h
    js = page.request.get(BASE + "/playground/app.js")
    assert js.status == 200 and js.headers["content-type"].startswith("text/javascript"), js.headers
    assert js.headers.get("x-content-type-options") == "nosniff", js.headers
    etag = js.headers["etag"]
    again = page.request.get(BASE + "/playground/app.js", headers={"If-None-Match": etag})
    assert again.status == 304, again.status
    lib = page.request.get(BASE + "/playground/vendor/codemirror-5.65.21/lib/codemirror.css")
    assert lib.headers["content-type"].startswith("text/css"), lib.headers
    assert "immutable" in lib.headers.get("cache-control", ""), lib.headers
    # API clients still get the liveness JSON from the same URL.
    api = page.request.get(BASE + "/", headers={"Accept": "application/json"})
    assert api.json()["service"] == "codebox", api.text()
    log("headers: CSP, nosniff, content types, caching, JSON liveness for API clients")


def check_main(browser):
    context, page, console = new_page(browser)
    check_headers(page)
    expect(page.get_by_role("heading", name=re.compile("Run code"))).to_be_visible()
    shot(page, "01-welcome")

    username = "pg" + uuid.uuid4().hex[:12]
    register(page, username)
    log(f"registered and logged in as {username}")

    # Python hello: the starter program, as the page offers it.
    expect(page.get_by_label("Language")).to_have_value("python")
    assert code_of(page) == 'print("hello")\n', code_of(page)
    hello_id = run_and_wait(page)
    expect(page.locator("#output")).to_contain_text("hello")
    expect(page.locator("#verdict")).to_have_text("ok")
    expect(page.locator("#fact-exit")).to_have_text("code 0")
    expect(page.locator("#share-link")).to_have_attribute("href", f"#task/{hello_id}")
    shot(page, "02-python-hello")
    log("python hello: 'hello' in the output, verdict ok")

    # Output of a slower program (streamed live where the server has events).
    set_code(page, "import sys, time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(0.2)\n"
             "print('to stderr', file=sys.stderr)\n")
    run_and_wait(page)
    expect(page.locator("#output")).to_contain_text("tick 0\ntick 1\ntick 2")
    expect(page.locator("#output .stderr")).to_have_text("to stderr\n")

    # Cancel a running task.
    set_code(page, "import time\nprint('started', flush=True)\ntime.sleep(30)\n")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#task-status")).to_have_text("running", timeout=TASK_TIMEOUT_MS)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#task-status")).to_have_text("cancelled", timeout=15_000)
    expect(page.get_by_role("button", name="Run")).to_be_enabled()
    log("cancel: a sleeping task ended cancelled")

    # C with three tests, one of them wrong: 2/3.
    page.get_by_label("Language").select_option("c")
    # The user's program stays when the language changes; the starter is a click away.
    assert "time.sleep(30)" in code_of(page), code_of(page)
    page.get_by_role("button", name="Starter program").click()
    assert "printf(\"hello\\n\")" in code_of(page), code_of(page)
    expect(page.get_by_label("Compiler")).to_be_visible()
    set_code(page, '#include <stdio.h>\n\nint main(void) {\n    int a, b;\n'
                   '    if (scanf("%d %d", &a, &b) != 2) return 1;\n'
                   '    printf("%d\\n", a + b);\n    return 0;\n}\n')
    cases = [("1 2\n", "3\n"), ("5 7\n", "12\n"), ("2 2\n", "5\n")]
    for i, (stdin, expected) in enumerate(cases, start=1):
        page.get_by_role("button", name="Add test").click()
        page.get_by_label(f"Test {i} input", exact=True).fill(stdin)
        page.get_by_label(f"Test {i} expected output", exact=True).fill(expected)
    expect(page.get_by_label("Standard input")).to_be_disabled()
    run_and_wait(page)
    expect(page.locator("#passed")).to_have_text("2/3 passed")
    expect(page.locator("#verdict")).to_have_text("wrong answer")
    verdicts = page.locator("#tests-body tr td:nth-child(2)").all_inner_texts()
    assert verdicts == ["accepted", "accepted", "wrong answer"], verdicts
    expect(page.locator("#tests .test-verdict").nth(2)).to_have_text("wrong answer")
    shot(page, "03-c-tests")
    log("C with 3 tests: 2/3 passed, the third wrong answer")

    for _ in cases:
        page.get_by_role("button", name="Remove test 1").click()
    expect(page.get_by_label("Standard input")).to_be_enabled()

    # A compile error shows the compiler's output.
    set_code(page, "int main(void) {\n    return undefined_name;\n}\n")
    run_and_wait(page)
    expect(page.locator("#verdict")).to_have_text("compile error")
    expect(page.locator("#compile-output")).to_contain_text("undefined_name")
    shot(page, "04-compile-error")
    log("compile error: the compiler's message is shown")

    # A limit out of range: the API's 400 detail in the banner, no task made.
    page.get_by_label(re.compile("^Time")).fill("999999")
    page.get_by_role("button", name="Run").click()
    banner = page.get_by_role("alert")
    expect(banner).to_contain_text("Bad Request (400)")
    expect(banner).to_contain_text("time_ms")
    shot(page, "05-validation-error")
    log(f"400: {banner.inner_text()!r}")
    page.get_by_role("button", name="Dismiss the message").click()
    expect(banner).to_be_hidden()
    page.get_by_label(re.compile("^Time")).fill("")

    # Server unreachable: the request never reaches a server.
    page.route("**/task", lambda route: route.abort())
    page.get_by_role("button", name="Run").click()
    expect(banner).to_contain_text("Server unreachable")
    page.unroute("**/task")
    page.get_by_role("button", name="Dismiss the message").click()
    log("server unreachable is said so")

    # Image filter: a file over the API's 10 MiB is refused when it asks to upload it.
    page.get_by_role("tab", name="Image filters").click()
    page.get_by_label("PNG image").set_input_files(
        files=[{"name": "huge.png", "mimeType": "image/png", "buffer": b"\0" * (10 * 1024 * 1024 + 1)}])
    page.get_by_role("button", name="Apply filter").click()
    expect(banner).to_contain_text("Bad Request (400)")
    expect(banner).to_contain_text("10485760")
    log(f"over 10 MiB: {banner.inner_text()!r}")
    page.get_by_role("button", name="Dismiss the message").click()
    # Not a PNG, though within the size: the upload itself is refused.
    page.get_by_label("PNG image").set_input_files(
        files=[{"name": "zeros.png", "mimeType": "image/png", "buffer": b"\0" * (3 * 1024 * 1024)}])
    page.get_by_role("button", name="Apply filter").click()
    expect(banner).to_contain_text("the image is not a PNG")
    log(f"not a PNG: {banner.inner_text()!r}")
    page.get_by_role("button", name="Dismiss the message").click()

    # A PNG of noise over 2 MB goes up first (POST /task/upload, then the file PUT to
    # the URL granted), and is flipped by the task naming it.
    noise = noise_png(900, 800)
    assert len(noise) > 2_000_000, len(noise)
    page.get_by_label("PNG image").set_input_files(
        files=[{"name": "noise.png", "mimeType": "image/png", "buffer": noise}])
    page.get_by_label("Filter", exact=True).select_option("flipx")
    with page.expect_response(lambda r: "/task/upload/" in r.url and r.request.method == "PUT") as put:
        with page.expect_response(lambda r: r.url.endswith("/task") and r.request.method == "POST") as posted:
            page.get_by_role("button", name="Apply filter").click()
    assert put.value.status == 204, put.value.text()
    assert posted.value.status == 202, posted.value.text()
    page.wait_for_function("() => document.getElementById('image-out').complete && "
                           "document.getElementById('image-out').naturalWidth === 900")
    log(f"noise PNG of {len(noise)} bytes uploaded, then flipped")

    # Upload a PNG, blur it, see both and the download link.
    page.get_by_label("PNG image").set_input_files(
        files=[{"name": "square.png", "mimeType": "image/png", "buffer": png(240, 160)}])
    expect(page.locator("#image-in")).to_be_visible()
    page.get_by_label("Filter", exact=True).select_option("blur")
    page.get_by_label(re.compile("^Sigma")).fill("3")
    with page.expect_response(lambda r: r.url.endswith("/task") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Apply filter").click()
    assert posted.value.status == 202, posted.value.text()
    image_id = posted.value.json()["id"]
    out = page.locator("#image-out")
    expect(out).to_be_visible()
    page.wait_for_function("() => document.getElementById('image-out').complete && "
                           "document.getElementById('image-out').naturalWidth > 0")
    size = page.evaluate("() => [document.getElementById('image-out').naturalWidth,"
                         " document.getElementById('image-out').naturalHeight]")
    assert size == [240, 160], size
    expect(page.locator("#download")).to_have_attribute("href", re.compile("^blob:"))
    expect(page.locator("#download")).to_have_attribute("download", f"codebox-{image_id}.png")
    shot(page, "06-image-blur")
    log(f"image: blurred output shown ({size[0]}x{size[1]}), download offered")

    # History, a page of 5 at a time: 7 tasks → two pages.
    page.get_by_role("tab", name="History").click()
    page.get_by_label("Per page").select_option("5")
    rows = page.locator("#history-body tr")
    expect(rows).to_have_count(5)
    expect(page.get_by_role("button", name="Older")).to_be_enabled()
    page.get_by_role("button", name="Older").click()
    expect(rows).to_have_count(2)
    expect(page.get_by_role("button", name="Older")).to_be_disabled()
    shot(page, "07-history-page-2")
    page.get_by_role("button", name="Newer").click()
    expect(rows).to_have_count(5)
    expect(rows.first).to_contain_text("image")
    log("history: 5 + 2 tasks over two pages")

    # The shared link of a finished task opens it (a reload of the page at that link).
    page.goto(f"{BASE}/#task/{hello_id}")
    page.reload()
    expect(page.locator("#task-id")).to_have_text(hello_id)
    expect(page.locator("#output")).to_contain_text("hello")
    expect(page.locator("#verdict")).to_have_text("ok")
    log("shared link: /#task/<id> opens the task for its owner")

    # Phone width: everything fits, nothing scrolls sideways.
    phone_ctx, phone, phone_console = new_page(browser, viewport={"width": 390, "height": 844},
                                               is_mobile=True, has_touch=True, device_scale_factor=2)
    phone.goto(f"{BASE}/#task/{hello_id}")
    expect(phone.locator("#welcome-task")).to_contain_text(f"Log in to open task {hello_id}")
    login(phone, username)
    expect(phone.locator("#task-id")).to_have_text(hello_id)
    expect(phone.locator("#output")).to_contain_text("hello")
    # A server without the events stream (404): the page polls GET /task/{id} instead.
    phone.route("**/task/*/events", lambda route: route.fulfill(
        status=404, content_type="application/problem+json",
        body='{"type":"about:blank","title":"Not Found","status":404,"detail":"no route"}'))
    with phone.expect_response(lambda r: r.url.endswith("/events")) as missing:
        run_and_wait(phone)
    assert missing.value.status == 404
    expect(phone.locator("#output")).to_contain_text("hello")
    expect(phone.locator("#verdict")).to_have_text("ok")
    log("no events stream: the page polls and still shows the result")
    overflow = phone.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone"
    shot(phone, "08-phone")
    log("phone width: no sideways scrolling; a shared link opens after logging in")
    check_clean(phone, phone_console)
    phone_ctx.close()

    # The README's picture: the judged C program.
    page.get_by_role("tab", name="Code").click()
    page.get_by_label("Language").select_option("c")
    set_code(page, '#include <stdio.h>\n\nint main(void) {\n    int a, b;\n'
                   '    if (scanf("%d %d", &a, &b) != 2) return 1;\n'
                   '    printf("%d\\n", a + b);\n    return 0;\n}\n')
    for i, (stdin, expected) in enumerate(cases, start=1):
        page.get_by_role("button", name="Add test").click()
        page.get_by_label(f"Test {i} input", exact=True).fill(stdin)
        page.get_by_label(f"Test {i} expected output", exact=True).fill(expected)
    run_and_wait(page)
    expect(page.locator("#passed")).to_have_text("2/3 passed")
    page.locator("#tests-body tr").nth(2).get_by_text("show").click()
    expect(page.locator("#tests-body tr").nth(2).locator("pre")).to_have_text("4\n")
    readme = shot(page, "09-readme", full_page=False)
    if DOC_SHOT:
        shutil.copyfile(readme, DOC_SHOT)
        log(f"copied to {DOC_SHOT}")

    # Log out: POST /logout, back to the login form, the token gone.
    with page.expect_request(lambda r: r.url.endswith("/logout") and r.method == "POST"):
        page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('codebox.token')") is None
    log("log out: POST /logout, token dropped")

    check_clean(page, console)
    context.close()


def check_rate_limit(browser):
    context, page, console = new_page(browser)
    page.goto(LIMITED + "/")
    username = "pg" + uuid.uuid4().hex[:12]
    register(page, username)  # the two calls this address has
    # The limit counts in fixed one-minute windows: should a window end between two of
    # these calls, one more login goes through before the refusal.
    for _ in range(3):
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        with page.expect_response(lambda r: r.url.endswith("/login")) as answer:
            login(page, username)
        if answer.value.status == 429:
            break
        assert answer.value.status == 200, answer.value.status
        expect(page.locator("#who")).to_have_text(username)
    else:
        raise AssertionError("no 429 after three logins at two a minute")
    banner = page.get_by_role("alert")
    expect(banner).to_contain_text("Too Many Requests (429)")
    expect(banner).to_contain_text(re.compile(r"Retry after \d+ s"))
    shot(page, "10-rate-limited")
    log(f"429: {banner.inner_text()!r}")
    check_clean(page, console)
    context.close()


def check_clean(page, console):
    violations = page.evaluate("() => window.__csp")
    assert not violations, f"CSP violations: {violations}"
    assert not console.problems, "\n".join(console.problems)


def main():
    os.makedirs(SHOTS, exist_ok=True)
    started = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # Tests run as root, where chromium's own sandbox cannot start.
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            check_main(browser)
            if LIMITED:
                check_rate_limit(browser)
        except Exception:
            for i, page in enumerate(PAGES):
                if not page.is_closed():
                    shot(page, f"failure-{i}")
            raise
        finally:
            browser.close()
    log(f"every check passed in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    try:
        main()
    except Exception:
        import traceback
        traceback.print_exc()
        sys.exit(1)
