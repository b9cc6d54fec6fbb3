// codebox web playground: a plain script (no build step) over the codebox HTTP API.
// Served by the API itself from /playground/app.js under a strict Content-Security-Policy:
// no inline script or style, requests to this origin only.
(function () {
  "use strict";

  var TOKEN_KEY = "codebox.token";
  var USER_KEY = "codebox.username";
  var FINISHED = ["completed", "failed", "cancelled"];

  // A hello world for each language that reads nothing.
  var STARTERS = {
    python: 'print("hello")\n',
    c: '#include <stdio.h>\n\nint main(void) {\n    printf("hello\\n");\n    return 0;\n}\n',
    cpp: '#include <iostream>\n\nint main() {\n    std::cout << "hello" << std::endl;\n    return 0;\n}\n',
    javascript: 'console.log("hello");\n',
    typescript: 'const greeting: string = "hello";\nconsole.log(greeting);\n',
    go: 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hello")\n}\n',
    rust: 'fn main() {\n    println!("hello");\n}\n',
    java: 'public class Main {\n    public static void main(String[] args) {\n        System.out.println("hello");\n    }\n}\n',
    kotlin: 'fun main() {\n    println("hello")\n}\n',
    csharp: 'using System;\n\nclass Program {\n    static void Main() {\n        Console.WriteLine("hello");\n    }\n}\n',
    ruby: 'puts "hello"\n',
    php: '<?php\necho "hello\\n";\n',
    lua: 'print("hello")\n',
    haskell: 'main :: IO ()\nmain = putStrLn "hello"\n',
    bash: 'echo hello\n',
    perl: 'print "hello\\n";\n',
    plaintext: 'hello\n',
    assembly: 'section .data\nmsg db "hello", 10\n\nsection .text\nglobal _start\n_start:\n    mov rax, 1\n    mov rdi, 1\n    mov rsi, msg\n    mov rdx, 6\n    syscall\n    mov rax, 60\n    xor rdi, rdi\n    syscall\n',
    commonlisp: '(write-line "hello")\n',
    d: 'import std.stdio;\n\nvoid main() {\n    writeln("hello");\n}\n',
    elixir: 'IO.puts("hello")\n',
    erlang: 'main(_) ->\n    io:format("hello~n").\n',
    fortran: "program hello\n  print '(a)', 'hello'\nend program hello\n",
    ocaml: 'let () = print_endline "hello"\n',
    octave: "disp('hello')\n",
    pascal: "program Hello;\nbegin\n  writeln('hello');\nend.\n",
    prolog: ':- initialization(main).\nmain :- write(hello), nl.\n',
    cobol: 'IDENTIFICATION DIVISION.\nPROGRAM-ID. HELLO.\nPROCEDURE DIVISION.\n    DISPLAY "hello".\n    STOP RUN.\n',
    objectivec: '#import <Foundation/Foundation.h>\n\nint main(void) {\n    NSAutoreleasePool *pool = [NSAutoreleasePool new];\n    NSLog(@"hello");\n    [pool drain];\n    return 0;\n}\n',
    r: 'cat("hello\\n")\n',
    scala: 'object Main {\n  def main(args: Array[String]): Unit = println("hello")\n}\n',
    sql: "SELECT 'hello';\n",
    clojure: '(println "hello")\n',
    groovy: "println 'hello'\n",
    multifile: 'echo hello\n'
  };

  // CodeMirror 5 modes (by MIME type) for each language id.
  var MODES = {
    python: "text/x-python", c: "text/x-csrc", cpp: "text/x-c++src",
    javascript: "text/javascript", typescript: "application/typescript",
    go: "text/x-go", rust: "text/x-rustsrc", java: "text/x-java", kotlin: "text/x-kotlin",
    csharp: "text/x-csharp", ruby: "text/x-ruby", php: "application/x-httpd-php",
    lua: "text/x-lua", haskell: "text/x-haskell", bash: "text/x-sh", perl: "text/x-perl",
    objectivec: "text/x-objectivec", scala: "text/x-scala", multifile: "text/x-sh"
  };

  var state = {
    token: null,
    username: null,
    languages: [],
    language: null,
    editor: null,
    // The task the code panel follows, and how to stop following it.
    current: null,
    follow: null,
    imageTask: null,
    imageFollow: null,
    imageUrls: { input: null, output: null },
    // The events stream answered 404 once: this server has none, poll from then on.
    noEvents: false,
    history: { cursors: [null], page: 0, next: null },
    pendingTask: null
  };

  function $(id) { return document.getElementById(id); }

  // ---------- storage (sessionStorage: a token lives as long as the tab) ----------

  function store(key, value) {
    try {
      if (value === null) { window.sessionStorage.removeItem(key); } else { window.sessionStorage.setItem(key, value); }
    } catch (e) { /* storage may be disabled: the session then lives in memory only */ }
  }
  function load(key) {
    try { return window.sessionStorage.getItem(key); } catch (e) { return null; }
  }

  // ---------- messages ----------

  function ApiError(status, title, detail) {
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.retryAfter = null;
  }

  function showError(err) {
    if (err && err.name === "AbortError") { return; }
    var title, detail;
    if (err instanceof ApiError) {
      title = err.status ? err.title + " (" + err.status + ")" : err.title;
      detail = err.detail || "";
      if (err.status === 429 && err.retryAfter) {
        detail += (detail && !/[.!?]$/.test(detail) ? ". " : detail ? " " : "") +
          "Retry after " + err.retryAfter + " s.";
      }
    } else {
      title = "Something went wrong";
      detail = err && err.message ? err.message : String(err);
    }
    $("banner-title").textContent = title;
    $("banner-detail").textContent = detail;
    $("banner").hidden = false;
  }

  function clearError() { $("banner").hidden = true; }

  function notice(text) { $("notice").textContent = text; }

  // ---------- HTTP ----------

  async function problemOf(res) {
    var title = res.statusText || "HTTP " + res.status;
    var detail = "";
    var type = res.headers.get("content-type") || "";
    try {
      if (type.indexOf("json") >= 0) {
        var p = await res.json();
        title = p.title || title;
        detail = p.detail || "";
      } else {
        detail = (await res.text()).slice(0, 500);
      }
    } catch (e) { /* keep the status line */ }
    if (res.status === 413 && !detail) { detail = "The request is too large."; }
    var err = new ApiError(res.status, title, detail);
    if (res.status === 429) { err.retryAfter = res.headers.get("retry-after"); }
    return err;
  }

  function unreachable(e) {
    return new ApiError(0, "Server unreachable",
      "The codebox server did not answer (" + (e && e.message ? e.message : e) +
      "). Check that it is running and try again.");
  }

  // fetch() with the token, problem+json turned into an ApiError, and a network failure
  // into "server unreachable". Returns the Response of a 2xx.
  async function api(method, path, opts) {
    opts = opts || {};
    var headers = { Accept: opts.accept || "application/json" };
    if (opts.auth !== false && state.token) { headers.Authorization = "Bearer " + state.token; }
    var init = { method: method, headers: headers, cache: "no-store", signal: opts.signal };
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    var res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      if (e && e.name === "AbortError") { throw e; }
      throw unreachable(e);
    }
    if (!res.ok) {
      var err = await problemOf(res);
      if (res.status === 401 && opts.auth !== false && state.token) { sessionEnded(); }
      throw err;
    }
    return res;
  }

  // ---------- account ----------

  function credentials() {
    return { username: $("username").value.trim(), password: $("password").value };
  }

  async function login(creds) {
    var res = await api("POST", "/login", { body: creds, auth: false });
    var body = await res.json();
    state.token = body.token;
    state.username = creds.username;
    store(TOKEN_KEY, state.token);
    store(USER_KEY, state.username);
    $("password").value = "";
    showSession();
    notice("Logged in as " + creds.username + ".");
    openFromHash();
  }

  async function onLogin(ev) {
    ev.preventDefault();
    clearError();
    try { await login(credentials()); } catch (e) { showError(e); }
  }

  async function onRegister() {
    clearError();
    var creds = credentials();
    if (!creds.username || !creds.password) {
      showError(new ApiError(0, "Missing username or password",
        "Choose a username (3–64 of A–Z a–z 0–9 _ . -) and a password (8–72 bytes)."));
      return;
    }
    try {
      await api("POST", "/register", { body: creds, auth: false });
      notice("Registered " + creds.username + ".");
      await login(creds);
    } catch (e) { showError(e); }
  }

  async function onLogout() {
    clearError();
    var failure = null;
    try {
      await api("POST", "/logout", {});
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) { failure = e; }
    }
    forget();
    notice("Logged out.");
    if (failure) { showError(failure); }
  }

  // The server no longer takes the token (expired or revoked).
  function sessionEnded() {
    forget();
    notice("Your session has ended: log in again.");
  }

  function forget() {
    stopFollowing();
    state.token = null;
    state.username = null;
    store(TOKEN_KEY, null);
    store(USER_KEY, null);
    showSession();
  }

  function showSession() {
    var inside = !!state.token;
    $("login-form").hidden = inside;
    $("session").hidden = !inside;
    $("who").textContent = state.username || "";
    $("app").hidden = !inside;
    $("welcome").hidden = inside;
    if (inside && state.editor) { state.editor.refresh(); }
  }

  // ---------- tabs ----------

  var TABS = ["code", "image", "history"];

  function selectTab(name, focus) {
    TABS.forEach(function (t) {
      var tab = $("tab-" + t);
      var on = t === name;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      $("panel-" + t).hidden = !on;
      if (on && focus) { tab.focus(); }
    });
    if (name === "code" && state.editor) { state.editor.refresh(); }
    if (name === "history") { loadHistory(); }
  }

  function onTabKey(ev) {
    var i = TABS.indexOf(ev.target.id.replace("tab-", ""));
    if (ev.key === "ArrowRight") { selectTab(TABS[(i + 1) % TABS.length], true); ev.preventDefault(); }
    if (ev.key === "ArrowLeft") { selectTab(TABS[(i + TABS.length - 1) % TABS.length], true); ev.preventDefault(); }
  }

  // ---------- languages and the editor ----------

  async function loadLanguages() {
    try {
      var res = await api("GET", "/languages", { auth: false });
      state.languages = await res.json();
    } catch (e) {
      showError(e);
      state.languages = [{ id: "python", name: "Python", version: null, compiled: false, compilers: [] }];
    }
    var select = $("language");
    select.textContent = "";
    state.languages.forEach(function (l) {
      var o = document.createElement("option");
      o.value = l.id;
      o.textContent = l.name + (l.version ? " " + l.version : "");
      select.appendChild(o);
    });
    var first = state.languages.some(function (l) { return l.id === "python"; }) ? "python" : state.languages[0].id;
    select.value = first;
    setLanguage(first, true);
  }

  function languageById(id) {
    for (var i = 0; i < state.languages.length; i++) {
      if (state.languages[i].id === id) { return state.languages[i]; }
    }
    return null;
  }

  function starter(id) { return STARTERS[id] || "// hello\n"; }

  // Switching language replaces the program only when it is still the previous starter
  // (or empty): the user's own code is never thrown away silently.
  function setLanguage(id, force) {
    var previous = state.language;
    state.language = id;
    var lang = languageById(id);
    var compilers = (lang && lang.compilers) || [];
    var field = $("compiler-field");
    var select = $("compiler");
    select.textContent = "";
    field.hidden = compilers.length < 2;
    compilers.forEach(function (c) {
      var o = document.createElement("option");
      o.value = c.id;
      o.textContent = c.id + (c.version ? " " + c.version : "");
      select.appendChild(o);
    });
    if (state.editor) {
      state.editor.setOption("mode", MODES[id] || null);
      var code = state.editor.getValue();
      if (force || !code.trim() || (previous && code === starter(previous))) {
        state.editor.setValue(starter(id));
      }
    }
  }

  function makeEditor() {
    var textarea = $("code");
    textarea.value = starter("python");
    state.editor = window.CodeMirror.fromTextArea(textarea, {
      lineNumbers: true,
      indentUnit: 4,
      tabSize: 4,
      matchBrackets: true,
      autoCloseBrackets: true,
      inputStyle: "contenteditable",
      screenReaderLabel: "Program",
      viewportMargin: 20,
      mode: MODES.python
    });
    // The label points at the textarea CodeMirror hides: send its clicks to the editor.
    document.querySelector('label[for="code"]').addEventListener("click", function (ev) {
      ev.preventDefault();
      state.editor.focus();
    });
  }

  // ---------- test cases ----------

  function addTest(stdin, expected) {
    var list = $("tests");
    var li = document.createElement("li");
    li.className = "test";
    var head = document.createElement("div");
    head.className = "test-head";
    var name = document.createElement("span");
    name.className = "test-name";
    var verdict = document.createElement("span");
    verdict.className = "badge test-verdict";
    verdict.hidden = true;
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "icon remove-test";
    remove.textContent = "×";
    remove.addEventListener("click", function () {
      li.remove();
      renumberTests();
    });
    head.append(name, verdict, remove);
    var pair = document.createElement("div");
    pair.className = "pair";
    var input = field("textarea", "Input", stdin || "");
    input.control.classList.add("test-stdin");
    var output = field("textarea", "Expected output", expected || "");
    output.control.classList.add("test-expected");
    pair.append(input.wrap, output.wrap);
    li.append(head, pair);
    list.appendChild(li);
    renumberTests();
    return li;
  }

  var fieldCount = 0;
  function field(tag, labelText, value) {
    var wrap = document.createElement("div");
    wrap.className = "field";
    var control = document.createElement(tag);
    control.id = "f" + (++fieldCount);
    control.rows = 2;
    control.spellcheck = false;
    control.value = value;
    var label = document.createElement("label");
    label.htmlFor = control.id;
    label.textContent = labelText;
    wrap.append(label, control);
    return { wrap: wrap, control: control, label: label };
  }

  function renumberTests() {
    var items = $("tests").querySelectorAll("li.test");
    items.forEach(function (li, i) {
      var n = i + 1;
      li.querySelector(".test-name").textContent = "Test " + n;
      li.querySelector(".remove-test").setAttribute("aria-label", "Remove test " + n);
      var labels = li.querySelectorAll("label");
      labels[0].textContent = "Test " + n + " input";
      labels[1].textContent = "Test " + n + " expected output";
      li.querySelector(".test-verdict").hidden = true;
    });
    $("tests-hint").hidden = items.length > 0;
    $("stdin").disabled = items.length > 0;
  }

  function collectTests() {
    return Array.prototype.map.call($("tests").querySelectorAll("li.test"), function (li) {
      return {
        stdin: li.querySelector(".test-stdin").value,
        expected_stdout: li.querySelector(".test-expected").value
      };
    });
  }

  // ---------- building a task ----------

  function numberOrNull(id) {
    var raw = $(id).value.trim();
    if (raw === "") { return null; }
    var n = Number(raw);
    return Number.isFinite(n) ? n : raw;
  }

  function codeTask() {
    var body = { kind: "code", language: state.language, code: state.editor.getValue() };
    var lang = languageById(state.language);
    if (lang && lang.compilers && lang.compilers.length > 1) { body.compiler = $("compiler").value; }
    var args = $("args").value.split("\n").filter(function (a) { return a.length > 0; });
    var limits = {};
    var time = numberOrNull("time-ms");
    var memory = numberOrNull("memory-mb");
    if (time !== null) { limits.time_ms = time; }
    if (memory !== null) { limits.memory_mb = memory; }
    if (Object.keys(limits).length) { body.limits = limits; }
    var tests = collectTests();
    if (tests.length) {
      body.tests = tests.map(function (t) {
        if (args.length) { t.args = args; }
        return t;
      });
      body.compare = { mode: $("compare").value };
      body.stop_on_failure = $("stop-on-failure").checked;
    } else {
      body.stdin = $("stdin").value;
      if (args.length) { body.args = args; }
    }
    return body;
  }

  // ---------- following a task: the events stream, or polling ----------

  function stopFollowing() {
    if (state.follow) { state.follow.abort(); state.follow = null; }
    if (state.imageFollow) { state.imageFollow.abort(); state.imageFollow = null; }
  }

  function sleep(ms, signal) {
    return new Promise(function (resolve, reject) {
      var t = setTimeout(resolve, ms);
      if (signal) {
        signal.addEventListener("abort", function () {
          clearTimeout(t);
          reject(new DOMException("aborted", "AbortError"));
        }, { once: true });
      }
    });
  }

  // Follows task `id` until it ends: `GET /task/{id}/events` read as a stream (fetch with
  // the token: EventSource cannot send it), else polling `GET /task/{id}` (100 ms
  // doubling to 1 s). Calls handlers.status(status), .output(stream, text), .test(test),
  // .retried() when a retried run's output starts again, and finally .done(task body).
  async function follow(id, handlers, signal) {
    var ended = false;
    if (!state.noEvents) {
      try {
        ended = await streamEvents(id, handlers, signal);
      } catch (e) {
        // A problem the server sent (401, or an `error` event) ends the wait; a broken
        // stream does not: the poll below finds where the task is.
        if ((e && e.name === "AbortError") || e instanceof ApiError) { throw e; }
      }
    }
    if (ended !== true) {
      // A 404 of the stream while the task itself reads fine: this server has no events
      // stream, so later tasks go straight to polling.
      await poll(id, handlers, signal, function () {
        if (ended === "missing") { state.noEvents = true; }
      });
    }
  }

  // Reads the events stream: true once `done` came, "missing" when the server answers
  // 404 (no such stream here), false when it ended early or could not start.
  async function streamEvents(id, handlers, signal) {
    var res;
    try {
      res = await fetch("/task/" + encodeURIComponent(id) + "/events", {
        headers: { Accept: "text/event-stream", Authorization: "Bearer " + state.token },
        cache: "no-store",
        signal: signal
      });
    } catch (e) {
      if (e && e.name === "AbortError") { throw e; }
      return false;
    }
    var type = res.headers.get("content-type") || "";
    if (!res.ok || type.indexOf("text/event-stream") !== 0 || !res.body) {
      if (res.status === 401) {
        var err = await problemOf(res);
        sessionEnded();
        throw err;
      }
      try { await res.body.cancel(); } catch (e) { /* nothing to release */ }
      return res.status === 404 || res.status === 405 ? "missing" : false;
    }
    var reader = res.body.getReader();
    var decoder = new TextDecoder("utf-8");
    var buffer = "";
    var event = { type: "message", data: [] };
    var done = false;
    var failed = null;
    var decoders = {};
    var attempt = 1;
    function dispatch() {
      if (!event.data.length) { event = { type: "message", data: [] }; return; }
      var data;
      try { data = JSON.parse(event.data.join("\n")); } catch (e) { data = null; }
      var type = event.type;
      event = { type: "message", data: [] };
      if (!data) { return; }
      if ((type === "stdout" || type === "stderr" || type === "test") && data.attempt > attempt) {
        // A run the platform retried (its sandbox was lost): its output starts again.
        attempt = data.attempt;
        decoders = {};
        if (handlers.retried) { handlers.retried(); }
      }
      if (type === "status") { handlers.status(data.status); }
      else if (type === "stdout" || type === "stderr") {
        var text = data.data || "";
        if (data.encoding === "base64") {
          var dec = decoders[type] || (decoders[type] = new TextDecoder("utf-8"));
          text = dec.decode(base64Bytes(text), { stream: true });
        }
        handlers.output(type, text);
      } else if (type === "test") { handlers.test(data); }
      else if (type === "done") { done = true; handlers.done(data); }
      else if (type === "error") {
        // The task can no longer be read (a problem object); the stream closes.
        failed = new ApiError(data.status || 0, data.title || "Error", data.detail || "");
      }
    }
    function line(l) {
      if (l === "") { dispatch(); return; }
      if (l.charAt(0) === ":") { return; }
      var colon = l.indexOf(":");
      var name = colon < 0 ? l : l.slice(0, colon);
      var value = colon < 0 ? "" : l.slice(colon + 1);
      if (value.charAt(0) === " ") { value = value.slice(1); }
      if (name === "event") { event.type = value; }
      else if (name === "data") { event.data.push(value); }
    }
    try {
      while (!done && !failed) {
        var chunk = await reader.read();
        if (chunk.done) { break; }
        buffer += decoder.decode(chunk.value, { stream: true });
        // Lines end in \n, \r\n or \r; a \r at the very end may be half of a \r\n.
        var m;
        var re = /\r\n|\r(?!$)|\n/g;
        var start = 0;
        while ((m = re.exec(buffer)) !== null) {
          line(buffer.slice(start, m.index));
          start = re.lastIndex;
          if (done || failed) { break; }
        }
        buffer = buffer.slice(start);
      }
    } finally {
      try { await reader.cancel(); } catch (e) { /* already closed */ }
    }
    if (failed) { throw failed; }
    return done;
  }

  async function poll(id, handlers, signal, onFirstRead) {
    var pause = 100;
    var last = null;
    for (;;) {
      var res = await api("GET", "/task/" + encodeURIComponent(id), { signal: signal });
      var body = await res.json();
      if (onFirstRead) { onFirstRead(); onFirstRead = null; }
      if (body.status !== last) { last = body.status; handlers.status(body.status); }
      if (FINISHED.indexOf(body.status) >= 0) { handlers.done(body); return; }
      await sleep(pause, signal);
      pause = Math.min(pause * 2, 1000);
    }
  }

  function base64Bytes(b64) {
    var bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return bytes;
  }

  // ---------- the code panel ----------

  function resetResult(id) {
    $("task-line").hidden = false;
    $("task-id").textContent = id;
    setBadge($("task-status"), "queued");
    $("verdict").hidden = true;
    $("share-link").hidden = true;
    $("facts").hidden = true;
    $("compile-box").hidden = true;
    $("compile-output").textContent = "";
    $("output").textContent = "";
    $("truncated").hidden = true;
    $("tests-result").hidden = true;
    $("tests-body").textContent = "";
    $("tests").querySelectorAll(".test-verdict").forEach(function (b) { b.hidden = true; });
  }

  var BADGE_KINDS = ["good", "bad", "warn", "busy", "muted"];

  // Keeps the element's other classes: a test's badge is found by its own.
  function setBadge(el, value, text) {
    el.textContent = text || (value || "").replace(/_/g, " ");
    BADGE_KINDS.forEach(function (k) { el.classList.remove(k); });
    el.classList.add("badge", badgeClass(value));
    el.hidden = false;
  }

  function badgeClass(v) {
    if (v === "ok" || v === "accepted" || v === "completed") { return "good"; }
    if (v === "queued" || v === "running") { return "busy"; }
    if (v === "cancelled" || v === "skipped") { return "muted"; }
    if (v === "time_limit" || v === "memory_limit" || v === "output_limit") { return "warn"; }
    return "bad";
  }

  function appendOutput(stream, text) {
    if (!text) { return; }
    var pane = $("output");
    var atEnd = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 4;
    var span = document.createElement("span");
    span.className = stream;
    span.textContent = text;
    pane.appendChild(span);
    if (atEnd) { pane.scrollTop = pane.scrollHeight; }
  }

  function fmt(v, unit) { return v === null || v === undefined ? "–" : v.toLocaleString() + " " + unit; }
  function exitText(r) {
    if (r.signal) { return r.signal; }
    if (r.exit_code !== null && r.exit_code !== undefined) { return String(r.exit_code); }
    return "–";
  }

  function testRow(t) {
    var tr = document.createElement("tr");
    tr.dataset.index = t.index;
    var cells = [String(t.index + 1), null, fmt(t.time_ms, "ms"), fmt(t.memory_kb, "KiB"), exitText(t), null];
    cells.forEach(function (c, i) {
      var td = document.createElement("td");
      if (i === 1) {
        var b = document.createElement("span");
        setBadge(b, t.verdict);
        td.appendChild(b);
      } else if (i === 5) {
        var out = (t.stdout || "") + (t.stderr || "");
        if (out) {
          var d = document.createElement("details");
          var s = document.createElement("summary");
          s.textContent = "show";
          var pre = document.createElement("pre");
          pre.className = "output small";
          if (t.stdout) { var so = document.createElement("span"); so.textContent = t.stdout; pre.appendChild(so); }
          if (t.stderr) { var se = document.createElement("span"); se.className = "stderr"; se.textContent = t.stderr; pre.appendChild(se); }
          d.append(s, pre);
          td.appendChild(d);
        } else {
          td.textContent = "–";
        }
      } else {
        td.textContent = c;
      }
      tr.appendChild(td);
    });
    return tr;
  }

  function showTest(t) {
    $("tests-result").hidden = false;
    var body = $("tests-body");
    var old = body.querySelector('tr[data-index="' + t.index + '"]');
    var row = testRow(t);
    if (old) { old.replaceWith(row); } else { body.appendChild(row); }
    var rows = Array.prototype.slice.call(body.children);
    rows.sort(function (a, b) { return Number(a.dataset.index) - Number(b.dataset.index); });
    rows.forEach(function (r) { body.appendChild(r); });
    var li = $("tests").querySelectorAll("li.test")[t.index];
    if (li && state.current && state.current.fromEditor) {
      setBadge(li.querySelector(".test-verdict"), t.verdict);
    }
  }

  function renderCode(task) {
    setBadge($("task-status"), task.status);
    var r = task.result;
    if (!r || r.kind !== "code") {
      if (task.status === "cancelled") { setBadge($("verdict"), "cancelled"); }
      return;
    }
    setBadge($("verdict"), r.verdict);
    $("facts").hidden = false;
    $("fact-time").textContent = fmt(r.time_ms, "ms");
    $("fact-cpu").textContent = fmt(r.cpu_time_ms, "ms");
    $("fact-memory").textContent = fmt(r.memory_kb, "KiB");
    $("fact-exit").textContent = r.signal ? "signal " + r.signal : (r.exit_code === null || r.exit_code === undefined ? "–" : "code " + r.exit_code);
    var compile = r.compile_output || "";
    $("compile-box").hidden = !compile;
    $("compile-output").textContent = compile;
    // The final result is what the program wrote, whatever the stream delivered.
    var pane = $("output");
    pane.textContent = "";
    appendOutput("stdout", r.stdout);
    appendOutput("stderr", r.stderr);
    if (!r.stdout && !r.stderr) {
      appendOutput("none", r.tests && r.tests.length ? "(each test's output is in its row below)" : "(no output)");
    }
    $("truncated").hidden = !r.truncated;
    if (r.tests) {
      $("tests-body").textContent = "";
      r.tests.forEach(showTest);
      $("tests-result").hidden = false;
      setBadge($("passed"), r.passed === r.total ? "accepted" : "wrong_answer",
        r.passed + "/" + r.total + " passed");
    }
  }

  function shareLink(a, id) {
    a.href = "#task/" + id;
    a.textContent = "Link to this task";
    a.title = window.location.origin + "/#task/" + id;
    a.hidden = false;
  }

  async function run() {
    clearError();
    stopFollowing();
    var body = codeTask();
    var res;
    try {
      $("run-btn").disabled = true;
      res = await api("POST", "/task", { body: body });
    } catch (e) {
      $("run-btn").disabled = false;
      showError(e);
      return;
    }
    var accepted = await res.json();
    watchCode(accepted.id, true);
  }

  async function watchCode(id, fromEditor) {
    stopFollowing();
    var ctl = new AbortController();
    state.follow = ctl;
    state.current = { id: id, fromEditor: fromEditor };
    resetResult(id);
    $("run-btn").disabled = true;
    $("cancel-btn").disabled = false;
    var streamed = false;
    try {
      await follow(id, {
        status: function (s) { setBadge($("task-status"), s); },
        output: function (stream, text) { streamed = true; appendOutput(stream, text); },
        retried: function () { $("output").textContent = ""; $("tests-body").textContent = ""; },
        test: showTest,
        done: function (task) {
          if (task.result && task.result.kind === "image") {
            selectTab("image");
            showImageTask(task);
            return;
          }
          renderCode(task);
          shareLink($("share-link"), id);
        }
      }, ctl.signal);
      notice("Task " + id + " finished" + (streamed ? " (output streamed live)." : "."));
    } catch (e) {
      showError(e);
    } finally {
      if (state.follow === ctl) {
        state.follow = null;
        $("run-btn").disabled = false;
        $("cancel-btn").disabled = true;
      }
    }
  }

  async function cancel() {
    clearError();
    if (!state.current) { return; }
    try {
      await api("DELETE", "/task/" + encodeURIComponent(state.current.id), {});
      notice("Cancelling task " + state.current.id + ".");
    } catch (e) { showError(e); }
  }

  // ---------- image filters ----------

  function setImage(which, url) {
    var img = $("image-" + which);
    var old = state.imageUrls[which];
    if (old) { URL.revokeObjectURL(old); }
    state.imageUrls[which] = url;
    img.hidden = !url;
    $("image-" + which + "-empty").hidden = !!url;
    if (url) { img.src = url; } else { img.removeAttribute("src"); }
  }

  function onImageChosen() {
    var file = $("image-file").files[0];
    setImage("in", file ? URL.createObjectURL(file) : null);
  }

  function onFilterChosen() {
    var f = $("filter").value;
    $("sigma-field").hidden = !(f === "blur" || f === "sharpen");
  }

  function readBase64(file) {
    return new Promise(function (resolve, reject) {
      var r = new FileReader();
      r.onload = function () {
        var s = String(r.result);
        resolve(s.slice(s.indexOf(",") + 1));
      };
      r.onerror = function () { reject(r.error); };
      r.readAsDataURL(file);
    });
  }

  // PNGs above this go up first (POST /task/upload, then a PUT of the file itself): under
  // every deployment's inline limit (3 MB on AWS), and no base64 copy in memory.
  var UPLOAD_ABOVE = 2000000;

  async function upload(file) {
    var res = await api("POST", "/task/upload", { body: { size: file.size } });
    var granted = await res.json();
    var headers = {};
    Object.keys(granted.headers || {}).forEach(function (name) {
      // The browser sends the body's length itself (and may not be told it).
      if (name.toLowerCase() !== "content-length") { headers[name] = granted.headers[name]; }
    });
    var put;
    try {
      put = await fetch(granted.upload_url, { method: "PUT", headers: headers, body: file, cache: "no-store" });
    } catch (e) {
      throw unreachable(e);
    }
    if (!put.ok) { throw await problemOf(put); }
    return granted.image_key;
  }

  async function applyFilter() {
    clearError();
    var file = $("image-file").files[0];
    if (!file) {
      showError(new ApiError(0, "No image", "Choose a PNG file first."));
      return;
    }
    var name = $("filter").value;
    var filter = { name: name };
    if (name === "blur" || name === "sharpen") {
      filter.parameters = { sigma: numberOrNull("sigma") };
    }
    $("apply-btn").disabled = true;
    try {
      var body = { kind: "image", filter: filter };
      if (file.size > UPLOAD_ABOVE) {
        body.image_key = await upload(file);
      } else {
        body.image_base64 = await readBase64(file);
      }
      var res = await api("POST", "/task", { body: body });
      var accepted = await res.json();
      await watchImage(accepted.id);
    } catch (e) {
      showError(e);
    } finally {
      $("apply-btn").disabled = false;
    }
  }

  async function watchImage(id) {
    if (state.imageFollow) { state.imageFollow.abort(); }
    var ctl = new AbortController();
    state.imageFollow = ctl;
    state.imageTask = id;
    $("image-line").hidden = false;
    $("image-task-id").textContent = id;
    $("image-share").hidden = true;
    setBadge($("image-status"), "queued");
    $("download").hidden = true;
    setImage("out", null);
    var final = null;
    try {
      await follow(id, {
        status: function (s) { setBadge($("image-status"), s); },
        output: function () {},
        test: function () {},
        done: function (task) { final = task; }
      }, ctl.signal);
    } finally {
      if (state.imageFollow === ctl) { state.imageFollow = null; }
    }
    if (final) { await showImageTask(final); }
  }

  async function showImageTask(task) {
    $("image-line").hidden = false;
    $("image-task-id").textContent = task.id;
    var r = task.result;
    if (!r) {
      setBadge($("image-status"), task.status);
      return;
    }
    setBadge($("image-status"), r.verdict === "ok" ? "completed" : r.verdict, r.verdict === "ok" ? "done" : null);
    shareLink($("image-share"), task.id);
    if (r.verdict !== "ok") {
      showError(new ApiError(0, "The filter did not run", r.error || "verdict " + r.verdict));
      return;
    }
    // GET /result/{id} answers the PNG itself; shown and downloaded from memory.
    var res = await api("GET", "/result/" + encodeURIComponent(task.id), { accept: "image/png" });
    var blob = await res.blob();
    var url = URL.createObjectURL(blob);
    setImage("out", url);
    var a = $("download");
    a.href = url;
    a.download = "codebox-" + task.id + ".png";
    a.hidden = false;
  }

  // ---------- history ----------

  async function loadHistory() {
    if (!state.token) { return; }
    var h = state.history;
    var size = $("history-size").value;
    var path = "/task?limit=" + encodeURIComponent(size);
    var cursor = h.cursors[h.page];
    if (cursor) { path += "&cursor=" + encodeURIComponent(cursor); }
    try {
      var res = await api("GET", path, {});
      var body = await res.json();
      h.next = body.next_cursor;
      renderHistory(body.items);
    } catch (e) {
      showError(e);
    }
    $("history-newer").disabled = h.page === 0;
    $("history-older").disabled = !h.next;
    $("history-page").textContent = "Page " + (h.page + 1);
  }

  function renderHistory(items) {
    var tbody = $("history-body");
    tbody.textContent = "";
    $("history-empty").hidden = items.length > 0;
    items.forEach(function (t) {
      var tr = document.createElement("tr");
      var created = document.createElement("td");
      var time = document.createElement("time");
      time.dateTime = t.created_at;
      time.textContent = new Date(t.created_at).toLocaleString();
      created.appendChild(time);
      var kind = document.createElement("td");
      kind.textContent = t.kind;
      var status = document.createElement("td");
      var badge = document.createElement("span");
      setBadge(badge, t.status);
      status.appendChild(badge);
      var duration = document.createElement("td");
      duration.textContent = fmt(t.duration_ms, "ms");
      var link = document.createElement("td");
      var a = document.createElement("a");
      a.href = "#task/" + t.id;
      a.textContent = t.id.slice(0, 8) + "…";
      a.setAttribute("aria-label", "Open task " + t.id);
      link.appendChild(a);
      tr.append(created, kind, status, duration, link);
      tbody.appendChild(tr);
    });
  }

  function historyPage(delta) {
    var h = state.history;
    if (delta > 0) {
      if (!h.next) { return; }
      h.cursors[h.page + 1] = h.next;
      h.page += 1;
    } else {
      if (h.page === 0) { return; }
      h.page -= 1;
    }
    loadHistory();
  }

  function restartHistory() {
    state.history = { cursors: [null], page: 0, next: null };
    loadHistory();
  }

  // ---------- shared links: /#task/<id> ----------

  function taskFromHash() {
    var m = /^#task\/([0-9a-fA-F-]{36})$/.exec(window.location.hash);
    return m ? m[1] : null;
  }

  async function openFromHash() {
    var id = taskFromHash();
    if (!id) { return; }
    if (!state.token) {
      var p = $("welcome-task");
      p.textContent = "Log in to open task " + id + ".";
      p.hidden = false;
      return;
    }
    $("welcome-task").hidden = true;
    clearError();
    try {
      var res = await api("GET", "/task/" + encodeURIComponent(id), {});
      var task = await res.json();
      if (task.kind === "image") {
        selectTab("image");
        if (FINISHED.indexOf(task.status) >= 0) {
          await showImageTask(task);
        } else {
          await watchImage(id);
        }
      } else {
        selectTab("code");
        if (FINISHED.indexOf(task.status) >= 0) {
          stopFollowing();
          state.current = { id: id, fromEditor: false };
          resetResult(id);
          renderCode(task);
          shareLink($("share-link"), id);
        } else {
          watchCode(id, false);
        }
      }
      notice("Opened task " + id + ".");
    } catch (e) { showError(e); }
  }

  // ---------- start ----------

  function init() {
    $("login-form").addEventListener("submit", onLogin);
    $("register-btn").addEventListener("click", onRegister);
    $("logout-btn").addEventListener("click", onLogout);
    $("banner-close").addEventListener("click", clearError);
    TABS.forEach(function (t) {
      var tab = $("tab-" + t);
      tab.addEventListener("click", function () { selectTab(t); });
      tab.addEventListener("keydown", onTabKey);
    });
    $("language").addEventListener("change", function (ev) { setLanguage(ev.target.value, false); });
    $("starter-btn").addEventListener("click", function () { state.editor.setValue(starter(state.language)); });
    $("add-test").addEventListener("click", function () {
      var li = addTest("", "");
      li.querySelector("textarea").focus();
    });
    $("run-btn").addEventListener("click", run);
    $("cancel-btn").addEventListener("click", cancel);
    $("image-file").addEventListener("change", onImageChosen);
    $("filter").addEventListener("change", onFilterChosen);
    $("apply-btn").addEventListener("click", applyFilter);
    $("history-refresh").addEventListener("click", restartHistory);
    $("history-size").addEventListener("change", restartHistory);
    $("history-older").addEventListener("click", function () { historyPage(1); });
    $("history-newer").addEventListener("click", function () { historyPage(-1); });
    window.addEventListener("hashchange", openFromHash);

    makeEditor();
    onFilterChosen();
    renumberTests();
    state.token = load(TOKEN_KEY);
    state.username = load(USER_KEY);
    showSession();
    loadLanguages().then(openFromHash);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
