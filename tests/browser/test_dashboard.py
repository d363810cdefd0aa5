#!/usr/bin/env python3
"""tests/browser/test_dashboard.py -- the dashboard, driven in a real browser.

Starts a cluster with scripts/start-cluster.sh (the embedded Kafka broker,
one job manager, 2 task managers x 3 slots), produces the fraud-detection
inputs with weir-gen (and keeps producing 2,000 transactions/s in the
background so the rates stay above zero), submits jobs/fraud-detection.yaml
at parallelism 2 with jobctl, then opens the dashboard in headless Chromium
and checks what a person would look at:

  overview      6 slots, 4 available; the slot grid names the job's two subtasks
  jobs          the job is listed RUNNING at parallelism 2
  job page      the graph draws its 3 vertices and 2 edges, parallelism 2,
                records per second above zero; the subtasks tab lists 6
  checkpoints   completed checkpoints with duration and size in the history
  exceptions, configuration (the job file text and variables)
  task managers both listed; the detail page of one shows its 3 slots
  savepoint     the button asks for a directory and the savepoint lands there
  submit        a broken job file is refused with file:line:col and an excerpt
  cancel        the button cancels the job: the page and GET /jobs/{id} say
                CANCELED, and the overview has 6 slots available again

It also fails on any JavaScript exception in the page and on any request
to an address other than the job manager's (the dashboard must work with
no internet). Screenshots of each step go to
<build>/tests/browser/screenshots/.

The browser is driven over the Chrome DevTools Protocol on
--remote-debugging-pipe (file descriptors 3 and 4, messages separated by
NUL bytes): no WebSocket, no npm package, only Python's standard library and
the Debian chromium package (scripts/deps.sh installs both). Exit code 77
(skipped) only when no Chromium binary exists at all; set WEIR_CHROMIUM to
use another Chromium/Chrome binary.

Every process started here is stopped by its pid (the cluster by
scripts/stop-cluster.sh, which reads the pid files start-cluster.sh wrote;
Chromium by its process group, which it leads).
"""
import base64
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SKIP = 77
SRC = os.environ.get('WEIR_SOURCE_DIR') or os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BUILD = os.environ.get('WEIR_BUILD_DIR') or os.path.join(SRC, 'build')
OUT = os.path.join(BUILD, 'tests', 'browser')
RUN = os.path.join(OUT, 'run')
SHOTS = os.path.join(OUT, 'screenshots')
T0 = time.monotonic()


def log(msg):
    print(f'[{time.monotonic() - T0:6.1f}s] {msg}', flush=True)


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


# ---- Chrome DevTools Protocol over a pipe ------------------------------

class CDPError(Exception):
    pass


class Browser:
    """One Chromium process and its protocol pipe. send() is synchronous; a
    reader thread files answers by id and keeps the events we care about."""

    def __init__(self, binary, profile, logfile):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # the child's ends go above fd 10 first, so that placing them on 3
        # and 4 cannot overwrite one with the other
        a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
        b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        logfd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        args = [binary, '--headless=new', '--remote-debugging-pipe', f'--user-data-dir={profile}',
                '--disable-background-networking', '--disable-component-update', '--disable-sync',
                '--disable-default-apps', '--disable-extensions', '--disable-gpu',
                '--disable-dev-shm-usage', '--disable-crash-reporter', '--no-first-run',
                '--no-default-browser-check', '--no-proxy-server', '--mute-audio', '--hide-scrollbars',
                '--password-store=basic', '--use-mock-keychain', '--window-size=1440,900',
                '--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication',
                'about:blank']
        # the sandbox refuses to run as root, and needs user namespaces that
        # CI containers often lack; the page is our own, on loopback
        args.insert(1, '--no-sandbox')
        actions = [(os.POSIX_SPAWN_OPEN, 0, '/dev/null', os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, logfd, 1), (os.POSIX_SPAWN_DUP2, logfd, 2),
                   (os.POSIX_SPAWN_DUP2, a, 3), (os.POSIX_SPAWN_DUP2, b, 4)]
        # its own process group, so that its helpers (zygote, renderers,
        # gpu/network services) can be stopped with it
        self.pid = os.posix_spawn(binary, args, os.environ, file_actions=actions, setpgroup=0)
        os.close(a)
        os.close(b)
        os.close(logfd)
        self.next_id = 0
        self.answers = {}
        self.cond = threading.Condition()
        self.wlock = threading.Lock()
        self.closed = False
        self.exceptions = []      # JavaScript exceptions thrown in the page
        self.requests = []        # every URL the page asked for
        self.failed = []          # requests that failed to load
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        buf = b''
        while True:
            try:
                chunk = os.read(self.from_chrome, 1 << 16)
            except OSError:
                chunk = b''
            if not chunk:
                break
            buf += chunk
            while b'\0' in buf:
                raw, buf = buf.split(b'\0', 1)
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                self._dispatch(msg)
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _dispatch(self, msg):
        if 'id' in msg:
            with self.cond:
                self.answers[msg['id']] = msg
                self.cond.notify_all()
            return
        method, p = msg.get('method'), msg.get('params', {})
        if method == 'Runtime.exceptionThrown':
            d = p.get('exceptionDetails', {})
            text = (d.get('exception') or {}).get('description') or d.get('text')
            self.exceptions.append(f"{text} at {d.get('url')}:{d.get('lineNumber')}")
        elif method == 'Network.requestWillBeSent':
            self.requests.append(p.get('request', {}).get('url', ''))
        elif method == 'Network.loadingFailed' and not p.get('canceled'):
            self.failed.append(p.get('errorText', ''))

    def send(self, method, params=None, session=None, timeout=30):
        with self.cond:
            self.next_id += 1
            mid = self.next_id
        msg = {'id': mid, 'method': method, 'params': params or {}}
        if session:
            msg['sessionId'] = session
        data = json.dumps(msg).encode() + b'\0'
        with self.wlock:
            while data:
                n = os.write(self.to_chrome, data)
                data = data[n:]
        deadline = time.monotonic() + timeout
        with self.cond:
            while mid not in self.answers:
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    raise CDPError(f'{method}: {"browser gone" if self.closed else "no answer"}')
                self.cond.wait(left)
            ans = self.answers.pop(mid)
        if 'error' in ans:
            raise CDPError(f"{method}: {ans['error'].get('message')}")
        return ans.get('result', {})

    def new_page(self, width=1440, height=900):
        target = self.send('Target.createTarget', {'url': 'about:blank'})['targetId']
        session = self.send('Target.attachToTarget', {'targetId': target, 'flatten': True})['sessionId']
        page = Page(self, session)
        for domain in ('Page', 'Runtime', 'Network'):
            page.cmd(domain + '.enable')
        page.cmd('Emulation.setDeviceMetricsOverride',
                 {'width': width, 'height': height, 'deviceScaleFactor': 1, 'mobile': False})
        return page

    def close(self):
        try:
            self.send('Browser.close', timeout=5)
        except (CDPError, OSError):
            pass
        for _ in range(50):
            if os.waitpid(self.pid, os.WNOHANG)[0] != 0:
                break
            time.sleep(0.1)
        else:
            os.killpg(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        try:
            os.killpg(self.pid, signal.SIGKILL)   # any helper left in its group
        except ProcessLookupError:
            pass
        os.close(self.to_chrome)


class Page:
    def __init__(self, browser, session):
        self.b = browser
        self.session = session

    def cmd(self, method, params=None, timeout=30):
        return self.b.send(method, params, self.session, timeout)

    def goto(self, url):
        self.cmd('Page.navigate', {'url': url})

    def js(self, expr):
        r = self.cmd('Runtime.evaluate', {'expression': expr, 'returnByValue': True, 'awaitPromise': True})
        if 'exceptionDetails' in r:
            d = r['exceptionDetails']
            raise CDPError(f"{expr[:80]}: {(d.get('exception') or {}).get('description') or d.get('text')}")
        return r.get('result', {}).get('value')

    def wait(self, expr, what, timeout=30):
        """Polls the expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                v = self.js(expr)
                if v not in (None, False, '', 0):    # an element comes back as {}
                    return v
                last = v
            except CDPError as e:
                last = str(e)
            time.sleep(0.2)
        raise Failure(f'timed out after {timeout} s waiting for {what} (last value: {last!r})')

    def text(self, selector):
        return self.js(f'(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ""')

    def count(self, selector):
        return self.js(f'document.querySelectorAll({json.dumps(selector)}).length')

    def click(self, selector):
        """A real mouse click at the middle of the element: fails if it is
        not visible."""
        rect = self.wait(f'''(() => {{
            const el = document.querySelector({json.dumps(selector)});
            if (!el) return null;
            el.scrollIntoView({{block: 'center', inline: 'center'}});
            const r = el.getBoundingClientRect();
            if (r.width === 0 || r.height === 0) return null;
            const x = r.left + r.width / 2, y = r.top + r.height / 2;
            const top = document.elementFromPoint(x, y);
            return top && (top === el || el.contains(top)) ? {{x, y}} : null;
        }})()''', f'{selector} to be clickable', timeout=15)
        for kind in ('mouseMoved', 'mousePressed', 'mouseReleased'):
            self.cmd('Input.dispatchMouseEvent', {'type': kind, 'x': rect['x'], 'y': rect['y'],
                                                  'button': 'left', 'clickCount': 1})

    def fill(self, selector, text):
        """Focuses the field, clears it and types the text (input events)."""
        self.wait(f'document.querySelector({json.dumps(selector)})', selector, timeout=15)
        self.js(f'''(() => {{ const el = document.querySelector({json.dumps(selector)});
            el.focus(); el.select && el.select(); }})()''')
        self.cmd('Input.dispatchKeyEvent', {'type': 'keyDown', 'key': 'Delete', 'code': 'Delete',
                                            'windowsVirtualKeyCode': 46})
        self.cmd('Input.dispatchKeyEvent', {'type': 'keyUp', 'key': 'Delete', 'code': 'Delete',
                                            'windowsVirtualKeyCode': 46})
        self.cmd('Input.insertText', {'text': text})

    def screenshot(self, name):
        self.js('window.scrollTo(0, 0)')       # a sticky header would land mid-page
        m = self.cmd('Page.getLayoutMetrics')
        size = m.get('cssContentSize') or m['contentSize']
        w, h = max(1440, int(size['width'])), min(int(size['height']), 4000)
        shot = self.cmd('Page.captureScreenshot', {
            'format': 'png', 'captureBeyondViewport': True,
            'clip': {'x': 0, 'y': 0, 'width': w, 'height': max(h, 900), 'scale': 1}})
        path = os.path.join(SHOTS, name + '.png')
        with open(path, 'wb') as f:
            f.write(base64.b64decode(shot['data']))
        log(f'screenshot {os.path.relpath(path, BUILD)}')


# ---- the cluster --------------------------------------------------------

def rest(base, path, method='GET', body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={'Content-Type': 'application/json'})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as r:
        return json.loads(r.read() or b'null')


def run(cmd, **kw):
    log('$ ' + ' '.join(shlex.quote(c) for c in cmd))
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, **kw).stdout


def find_chromium():
    for name in (os.environ.get('WEIR_CHROMIUM'), 'chromium', 'chromium-browser',
                 'google-chrome', 'google-chrome-stable'):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def dump_logs():
    for name in ('jobmanager.log', 'taskmanager-1.log', 'taskmanager-2.log', 'kafka.log'):
        p = os.path.join(RUN, name)
        if os.path.exists(p):
            with open(p, errors='replace') as f:
                lines = f.readlines()[-15:]
            print(f'---- last lines of {p}', file=sys.stderr)
            sys.stderr.writelines(lines)


# ---- the test -----------------------------------------------------------

def scenario(page, base, env, jid):
    jq = json.dumps(jid)

    # overview: slots and the slot grid
    page.goto(base + '/#/')
    page.wait('document.querySelector("#slots-total")?.textContent === "6" && '
              'document.querySelector("#slots-available")?.textContent === "4"',
              'the overview to show 6 slots with 4 available')
    used = page.wait(f'''(() => {{
        const s = [...document.querySelectorAll('#slot-grid .slot.used[data-job={jq}]')];
        return s.length === 2 ? s.map(e => [e.dataset.subtask, e.textContent]) : null; }})()''',
                     'two used slots of the job in the slot grid')
    check(sorted(u[0] for u in used) == ['0', '1'], f'slots hold subtasks {used}')
    for sub, text in used:
        n = int(sub) + 1
        check('fraud-detection' in text and f'subtask {n}/2' in text and f'transactions ({n}/2)' in text,
              f'slot of subtask {sub} reads {text!r}')
    check(page.count('#slot-grid .slot.free') == 4, 'four free slots in the grid')
    check(page.count('#slot-grid .tm-box') == 2, 'two task managers in the grid')
    log('ok: overview shows 6 slots, 4 available; the grid names subtasks 1/2 and 2/2')
    page.screenshot('01-overview')

    # jobs list
    page.click('#nav a[data-nav="jobs"]')
    row = page.wait(f'document.querySelector({json.dumps(f"#jobs tr[data-jid={jq}]")})?.textContent',
                    'the job in the jobs list')
    check('RUNNING' in row and 'fraud-detection' in row, f'jobs row reads {row!r}')
    log('ok: jobs list')
    page.screenshot('02-jobs')

    # the job page: graph with rates
    page.click(f'#jobs tr[data-jid={jq}] a')
    page.wait('document.querySelectorAll("#job-graph g.vertex").length === 3 && '
              'document.querySelectorAll("#job-graph g.edge").length === 2', 'a graph of 3 vertices and 2 edges')
    names = page.js('[...document.querySelectorAll("#job-graph g.vertex .name")].map(e => e.textContent)')
    check(sorted(names) == ['flagged_accounts', 'flagged_transactions -> out', 'transactions'],
          f'vertex names {names}')
    check(page.js('[...document.querySelectorAll("#job-graph g.vertex")].every(g => g.dataset.parallelism === "2")'),
          'every vertex shows parallelism 2')
    # left to right: the join is to the right of both sources
    xs = page.js('''Object.fromEntries([...document.querySelectorAll("#job-graph g.vertex")].map(g =>
        [g.dataset.vertex, g.getBoundingClientRect().left]))''')
    check(xs['v2'] > xs['v0'] and xs['v2'] > xs['v1'], f'graph is not left to right: {xs}')
    rates = page.wait('''(() => {
        const g = id => document.querySelector(`#job-graph g.vertex[data-vertex="${id}"]`);
        const src = g("v0"), join = g("v2");
        if (!src || !join) return null;
        const r = {out: +src.dataset.rateOut, in: +join.dataset.rateIn,
                   outText: src.querySelector(".rate-out").textContent,
                   inText: join.querySelector(".rate-in").textContent};
        return r.out > 0 && r.in > 0 ? r : null; })()''', 'non-zero record rates in the graph', timeout=40)
    check(rates['outText'] not in ('0/s', '—') and rates['inText'] not in ('0/s', '—'), f'rates shown as {rates}')
    log(f"ok: job graph: 3 vertices, transactions out {rates['outText']}, join in {rates['inText']}")
    page.click('#job-graph g.vertex[data-vertex="v2"] .box')
    page.wait('document.querySelector("#vrow-v2.selected")', 'the clicked vertex row to be selected')
    page.screenshot('03-job-graph')

    page.click('#tab-subtasks')
    page.wait('document.querySelectorAll("#subtasks tbody tr").length === 6', 'six subtasks in the table')
    check(page.count('#subtasks tbody tr td a[href^="#/taskmanagers/"]') == 6, 'subtasks name their task managers')
    log('ok: subtasks tab lists 6 subtasks')
    # the Kafka sources' partitions, with their next offsets: the two
    # source subtasks of each topic share its partitions, each listed once
    parts = page.wait('''(() => {
        const rows = [...document.querySelectorAll("#partitions tbody tr")]
            .map(r => [...r.cells].map(c => c.textContent));
        return rows.length > 0 && rows.some(r => r[4] !== "-") ? rows : null; })()''',
        'the Kafka partitions table', timeout=30)
    topics = sorted(set(r[2] for r in parts))
    check(topics == ['flagged-accounts', 'transactions'], f'partitions of both topics: {topics}')
    keys = [(r[2], r[3]) for r in parts]
    check(len(keys) == len(set(keys)), f'each partition once: {keys}')
    log(f'ok: subtasks tab lists {len(parts)} Kafka partitions of {topics}')
    page.screenshot('04-subtasks')

    page.click('#tab-checkpoints')
    page.wait('+document.querySelector("#ckpt-completed")?.textContent >= 1 && '
              'document.querySelector("#ckpt-history tr[data-status=COMPLETED]")',
              'a completed checkpoint in the checkpoints tab', timeout=40)
    cells = page.js('[...document.querySelectorAll("#ckpt-history tr[data-status=COMPLETED]")[0].cells].map(c => c.textContent)')
    check(cells[4].endswith(('ms', 's')) and cells[6].endswith(('B', 'KiB', 'MiB', 'GiB')),
          f'history row lacks duration or size: {cells}')
    check('exactly_once' in page.text('#job-body'), 'checkpoint configuration shows the mode')
    log(f'ok: checkpoints tab: {page.text("#ckpt-completed")} completed; latest row {cells[:7]}')
    page.screenshot('05-checkpoints')

    page.click('#tab-exceptions')
    page.wait('document.querySelector("#root-exception")', 'the exceptions tab')
    page.click('#tab-configuration')
    page.wait('document.querySelector("#job-file")?.textContent.includes("name: fraud-detection")',
              'the job file text in the configuration tab')
    check(env['KAFKA_BOOTSTRAP'] in page.text('#job-vars'), 'the variables table shows KAFKA_BOOTSTRAP')
    log('ok: exceptions and configuration tabs')
    page.screenshot('06-configuration')

    # task managers
    page.click('#nav a[data-nav="taskmanagers"]')
    page.wait('document.querySelectorAll("#taskmanagers tbody tr").length === 2', 'two task managers listed')
    row = page.text('#taskmanagers tr[data-tm="tm-1"]')
    check('127.0.0.1' in row and ('MiB' in row or 'KiB' in row) and 's ago' in row, f'task manager row reads {row!r}')
    page.screenshot('07-taskmanagers')
    page.click('#taskmanagers tr[data-tm="tm-1"] a')
    page.wait('document.querySelectorAll("#tm-slot-table tbody tr").length === 3', "tm-1's three slots")
    log('ok: task managers list and detail')
    page.screenshot('08-taskmanager')

    # savepoint from the job page
    page.goto(base + f'/#/jobs/{jid}')
    page.click('#btn-savepoint')
    page.wait('document.querySelector("#dialog").open', 'the savepoint dialog')
    spdir = os.path.join(RUN, 'savepoints-from-browser')
    page.fill('#sp-dir', spdir)
    page.screenshot('09-savepoint-dialog')
    page.click('#dialog-ok')
    op = page.wait('(() => { const o = document.querySelector("#job-ops .op"); '
                   'return o && /completed|failed/.test(o.textContent) ? o.textContent : null; })()',
                   'the savepoint to complete', timeout=60)
    check('completed' in op, f'savepoint: {op}')
    loc = page.text('#job-ops .op code')
    check(loc.startswith(spdir) and os.path.isdir(loc), f'savepoint location {loc!r} is not a directory in {spdir}')
    log(f'ok: savepoint written to {loc}')

    # submit page: a broken file is refused with line and column
    jobs_before = len(rest(base, '/jobs/overview')['jobs'])
    page.click('#nav a[data-nav="submit"]')
    page.wait('document.querySelector("#submit-text")', 'the submit page')
    page.fill('#submit-path', 'broken.yaml')
    page.fill('#submit-text', 'name: broken\nsources:\n  - name: a\n    kind: kafak\n')
    page.click('#submit-button')
    err = page.wait('document.querySelector("#submit-errors")?.textContent', 'the refusal of the broken file')
    check('broken.yaml:4:11' in err and 'kafak' in err, f'submit error reads {err!r}')
    check(page.js('document.querySelector("#submit-errors .excerpt")?.textContent.includes("kind: kafak")'),
          'the error shows the offending line')
    check(len(rest(base, '/jobs/overview')['jobs']) == jobs_before, 'a refused file made a job')
    page.click('#submit-errors a.where')
    sel = page.js('(() => { const t = document.querySelector("#submit-text"); '
                  'return t.value.slice(t.selectionStart, t.selectionEnd + 4); })()')
    check(sel.startswith('kafak'), f'clicking the error selects {sel!r}, not the column')
    log('ok: submit page shows broken.yaml:4:11 with the line')
    page.screenshot('10-submit-error')

    # cancel from the job page
    page.goto(base + f'/#/jobs/{jid}')
    page.click('#btn-cancel')
    page.wait('document.querySelector("#dialog").open', 'the cancel dialog')
    page.click('#dialog-ok')
    page.wait('document.querySelector("#job-state")?.textContent === "CANCELED"', 'the page to show CANCELED')
    state = rest(base, f'/jobs/{jid}')['state']
    check(state == 'CANCELED', f'GET /jobs/{jid} says {state}')
    check(page.count('#btn-cancel') == 0, 'the cancel button is gone')
    log('ok: canceled from the page; GET /jobs/{id} says CANCELED')
    page.screenshot('11-canceled')

    page.click('#nav a[data-nav="overview"]')
    page.wait('document.querySelector("#slots-available")?.textContent === "6"', 'all 6 slots free again')
    page.screenshot('12-overview-after-cancel')

    # submit page, the happy path: the file's ${KAFKA_BOOTSTRAP} gets a
    # field; the job starts at the parallelism asked for; then Stop
    with open(os.path.join(SRC, 'jobs', 'fraud-detection.yaml')) as f:
        text = f.read()
    page.click('#nav a[data-nav="submit"]')
    page.fill('#submit-path', 'fraud-detection.yaml')
    page.fill('#submit-text', text)
    page.wait('document.querySelector("#submit-vars input[data-var=KAFKA_BOOTSTRAP]")',
              'a field for the variable KAFKA_BOOTSTRAP')
    page.fill('#submit-vars input[data-var=KAFKA_BOOTSTRAP]', env['KAFKA_BOOTSTRAP'])
    page.fill('#submit-parallelism', '1')
    page.screenshot('13-submit')
    page.click('#submit-button')
    jid2 = page.wait('(() => { const m = location.hash.match(/^#\\/jobs\\/([0-9a-f]+)$/); '
                     'return m && m[1] !== %s ? m[1] : null; })()' % jq, 'the new job page')
    page.wait('document.querySelector("#job-state")?.textContent === "RUNNING"', 'the submitted job to run')
    conf = rest(base, f'/jobs/{jid2}/config')
    check(conf['execution-config']['job-parallelism'] == 1, 'submitted at parallelism 1')
    check(conf['execution-config']['user-config'].get('KAFKA_BOOTSTRAP') == env['KAFKA_BOOTSTRAP'],
          f"variables sent: {conf['execution-config']['user-config']}")
    check(conf['job-file']['path'] == 'fraud-detection.yaml', f"path sent: {conf['job-file']['path']}")
    log(f'ok: submitted {jid2} from the page at parallelism 1 with KAFKA_BOOTSTRAP')
    page.click('#btn-stop')
    page.wait('document.querySelector("#dialog").open', 'the stop dialog')
    stopdir = os.path.join(RUN, 'stop-from-browser')
    page.fill('#sp-dir', stopdir)
    page.click('#dialog-ok')
    page.wait('document.querySelector("#job-state")?.textContent === "FINISHED"',
              'the stopped job to finish', timeout=60)
    op = page.wait('(() => { const o = document.querySelector("#job-ops .op"); '
                   'return o && /completed|failed/.test(o.textContent) ? o.textContent : null; })()',
                   'the stop savepoint to be reported', timeout=20)
    loc = page.text('#job-ops .op code')
    check('completed' in op and loc.startswith(stopdir) and os.path.isdir(loc), f'stop: {op}')
    log(f'ok: stopped from the page with a savepoint in {loc}; the job is FINISHED')
    page.screenshot('14-stopped')


def main():
    chromium = find_chromium()
    if chromium is None:
        print('SKIP: no chromium binary (scripts/deps.sh installs the Debian package chromium)')
        return SKIP
    for d in (RUN, SHOTS):
        os.makedirs(d, exist_ok=True)
    # a run killed half-way may have left its cluster behind
    subprocess.run([os.path.join(SRC, 'scripts', 'stop-cluster.sh'), '--dir', RUN],
                   stdout=subprocess.DEVNULL, check=False)
    shutil.rmtree(RUN, ignore_errors=True)
    for f in os.listdir(SHOTS):
        if f.endswith('.png'):
            os.remove(os.path.join(SHOTS, f))
    os.makedirs(RUN)

    env = dict(os.environ, WEIR_BUILD_DIR=BUILD)
    bin_ = lambda p: os.path.join(BUILD, 'runtime', p)
    gen = None
    browser = None
    profile = tempfile.mkdtemp(prefix='weir-chromium-')
    page = None
    rc = 1
    try:
        run([os.path.join(SRC, 'scripts', 'start-cluster.sh'), '--taskmanagers', '2', '--slots', '3',
             '--rest-port', '0', '--kafka-port', '0', '--dir', RUN], env=env, cwd=SRC)
        with open(os.path.join(RUN, 'cluster.env')) as f:
            cenv = {k: shlex.split(v)[0] if v.strip() else '' for k, v in
                    (line.rstrip('\n').split('=', 1) for line in f if '=' in line)}
        base, boot = cenv['WEIR_REST'], cenv['KAFKA_BOOTSTRAP']
        gen_bin = bin_('kafka/weir-gen')
        run([gen_bin, 'flagged-accounts', '--bootstrap', boot, '--accounts', '1000',
             '--flagged-share', '0.3', '--step', '60s'])
        run([gen_bin, 'transactions', '--bootstrap', boot, '--accounts', '1000', '--count', '20000', '--step', '2s'])
        jid = run([bin_('cli/jobctl'), '--rest', base, 'submit', os.path.join(SRC, 'jobs', 'fraud-detection.yaml'),
                   '-p', '2', '-D', f'KAFKA_BOOTSTRAP={boot}']).strip()
        log(f'job {jid}')
        gen_log = open(os.path.join(RUN, 'weir-gen.log'), 'w')
        gen = subprocess.Popen([gen_bin, 'transactions', '--bootstrap', boot, '--accounts', '1000',
                                '--rate', '2000', '--count', '200000', '--step', '2s', '--seed', '2'],
                               stdout=gen_log, stderr=gen_log, stdin=subprocess.DEVNULL)
        gen_log.close()
        deadline = time.monotonic() + 60
        while rest(base, f'/jobs/{jid}')['state'] != 'RUNNING':
            check(time.monotonic() < deadline, 'the job did not reach RUNNING in 60 s')
            time.sleep(0.2)
        log('job RUNNING')

        browser = Browser(chromium, profile, os.path.join(OUT, 'chromium.log'))
        version = browser.send('Browser.getVersion')
        log(f"browser {version.get('product')} (pid {browser.pid})")
        page = browser.new_page()
        scenario(page, base, cenv, jid)

        check(not browser.exceptions, f'JavaScript exceptions in the page: {browser.exceptions}')
        foreign = [u for u in browser.requests if not u.startswith((base + '/', 'about:', 'data:'))]
        check(not foreign, f'requests to other addresses than the job manager: {foreign}')
        log(f'ok: {len(browser.requests)} requests, all to {base}; no JavaScript exceptions')
        rc = 0
    except (Failure, CDPError, subprocess.CalledProcessError, urllib.error.URLError, KeyError) as e:
        print(f'FAIL: {e}', file=sys.stderr)
        if page is not None:
            try:
                page.screenshot('failure')
                print('page text: ' + page.js('document.body.innerText')[:3000], file=sys.stderr)
            except Exception as e2:          # the browser itself may be gone
                print(f'(no screenshot: {e2})', file=sys.stderr)
        if browser is not None and browser.exceptions:
            print(f'JavaScript exceptions: {browser.exceptions}', file=sys.stderr)
        dump_logs()
    finally:
        if browser is not None:
            browser.close()
        shutil.rmtree(profile, ignore_errors=True)
        if gen is not None:
            gen.terminate()
            try:
                gen.wait(10)
            except subprocess.TimeoutExpired:
                gen.kill()
                gen.wait()
        subprocess.run([os.path.join(SRC, 'scripts', 'stop-cluster.sh'), '--dir', RUN], check=False)
    log('PASS' if rc == 0 else 'FAIL')
    return rc


if __name__ == '__main__':
    # meson's timeout sends SIGTERM: unwind through the finally blocks
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
