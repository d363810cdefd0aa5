// runtime/web/dashboard.js -- the weir dashboard.
//
// One page, no framework, no external requests: everything comes from the
// job manager's REST API on the same origin. The address bar's hash names
// the view (#/, #/jobs, #/jobs/ID[/TAB], #/taskmanagers[/ID], #/submit).
//
// Live refresh is a poll: tick() loads the current view's documents every
// REFRESH_MS (one request chain at a time; the next tick is scheduled when
// this one ends, and nothing is polled while the tab is hidden), then
// renders. A view is a skeleton of named sections mounted once per route;
// rendering builds each section's HTML as a string and replaces a section
// only when its string changed, so a still section keeps its text selection
// and scroll position. Every value from the server goes through esc() (or a
// number formatter) before it reaches HTML. Clicks are handled by one
// delegated listener reading data-action attributes, so re-rendered buttons
// need no re-binding.
'use strict';

const REFRESH_MS = 1000;
const TIMEOUT_MS = 8000;
const WATERMARK_MS = 5000;
const NO_WATERMARK = '-9223372036854775808';    // Flink's Long.MIN_VALUE
const TERMINAL = ['FINISHED', 'FAILED', 'CANCELED'];
const JOB_TABS = [
  ['overview', 'Overview'], ['subtasks', 'Subtasks'], ['checkpoints', 'Checkpoints'],
  ['exceptions', 'Exceptions'], ['configuration', 'Configuration'],
];

const view = document.getElementById('view');
const statusEl = document.getElementById('status');
let timer = null;
let generation = 0;         // bumped per tick; a stale tick renders nothing
let mounted = null;         // key of the route whose skeleton is in #view
const once = new Map();     // documents that never change (job config, /config)
const ops = [];             // savepoint/stop requests made from this page
const tmHistory = new Map(); // task manager id -> [{t, rss, cpu}] samples
let selectedVertex = null;
let wmCache = {};            // {jid, t, wm}: the last watermarks fetched
let draft = { text: '', path: '', parallelism: '', vars: {}, savepoint: '', allowNonRestored: false };

// ---- formatting --------------------------------------------------------

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, c => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}
function num(n) { return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-'; }
function compact(n) {
  if (!Number.isFinite(n)) return '-';
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(2) + 'G';
  if (a >= 1e6) return (n / 1e6).toFixed(2) + 'M';
  if (a >= 1e3) return (n / 1e3).toFixed(a >= 1e5 ? 0 : 1) + 'k';
  return a >= 10 || n === 0 ? String(Math.round(n)) : n.toFixed(1);
}
function rate(n) { return compact(n) + '/s'; }
function bytes(n) {
  if (!Number.isFinite(n) || n < 0) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(n) : n.toFixed(n >= 100 ? 0 : 1)) + ' ' + u[i];
}
function dur(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return ms + ' ms';
  const s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24;
  const m = Math.floor(s / 60) % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + ' s';
}
function pad(n) { return String(n).padStart(2, '0'); }
function when(ms) {
  if (!(ms > 0)) return '-';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function pct(x) { return Number.isFinite(x) ? Math.round(x) + '%' : '-'; }
function badge(s) { return `<span class="badge s-${esc(s)}">${esc(s)}</span>`; }
function jobLink(id, text) {
  return `<a href="#/jobs/${encodeURIComponent(id)}">${esc(text)}</a>`;
}
function tmLink(id) {
  return id ? `<a href="#/taskmanagers/${encodeURIComponent(id)}">${esc(id)}</a>` : '-';
}
function hue(s) {           // a stable colour per job id, for the slot grid
  let h = 0;
  for (const c of String(s)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h % 360;
}
function bar(used, total, cls = '') {
  const p = total > 0 ? Math.min(100, 100 * used / total) : 0;
  return `<div class="bar ${cls}" title="${esc(used)} of ${esc(total)}"><div style="width:${p.toFixed(1)}%"></div></div>`;
}
// head: column titles (trusted HTML); a leading '>' right-aligns a
// numeric column's title like its cells.
function table(id, head, rows, empty) {
  if (!rows.length) return `<p class="empty">${esc(empty)}</p>`;
  const th = head.map(h => h.startsWith('>') ? `<th class="r">${h.slice(1)}</th>` : `<th>${h}</th>`);
  return `<div class="tw"><table${id ? ` id="${id}"` : ''}><thead><tr>${th.join('')}</tr></thead>` +
    `<tbody>${rows.join('')}</tbody></table></div>`;
}
function kv(pairs) {
  return '<dl class="kv">' + pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('') + '</dl>';
}
function card(label, value, extra = '', id = '') {
  return `<div class="card"><div class="l">${esc(label)}</div>` +
    `<div class="n"${id ? ` id="${id}"` : ''}>${value}</div>${extra}</div>`;
}

// ---- talking to the job manager ---------------------------------------

class ApiError extends Error {
  constructor(status, errors) {
    super(errors.join('\n'));
    this.status = status;
    this.errors = errors;
  }
}

// A cluster started with a secret answers 401 without it: ask once, keep it
// for this browser tab (sessionStorage), send it as a bearer token.
function secretHeader() {
  const s = sessionStorage.getItem('weir-secret');
  return s ? { Authorization: 'Bearer ' + s } : {};
}

async function api(path, method = 'GET', body, retried = false) {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  try {
    const used = sessionStorage.getItem('weir-secret');
    const opt = { method, cache: 'no-store', signal: ctl.signal, headers: secretHeader() };
    if (body !== undefined) {
      opt.body = JSON.stringify(body);
      opt.headers['Content-Type'] = 'application/json';
    }
    const r = await fetch(path, opt);
    if (r.status === 401 && !retried) {
      // requests polled at the same time all get 401: only the first asks
      let s = sessionStorage.getItem('weir-secret');
      if (s === used)
        s = window.prompt('This weir cluster needs its secret:');
      if (s) {
        sessionStorage.setItem('weir-secret', s);
        clearTimeout(t);
        return api(path, method, body, true);
      }
    }
    const text = await r.text();
    let doc = null;
    try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
    if (!r.ok)
      throw new ApiError(r.status, doc && Array.isArray(doc.errors) ? doc.errors.map(String)
        : [`${r.status} ${r.statusText}`]);
    return doc;
  } catch (e) {
    if (e.name === 'AbortError') throw new ApiError(0, [`${path}: no answer in ${TIMEOUT_MS / 1000} s`]);
    throw e;
  } finally {
    clearTimeout(t);
  }
}

// A document that does not change for the life of its key (a job's file
// and settings, the cluster configuration): fetched once. A 404 is an
// answer too (a job without checkpointing has no checkpoint settings);
// other failures are tried again next time.
function cached(key, path) {
  if (!once.has(key))
    once.set(key, api(path).catch(e => { if (e.status !== 404) once.delete(key); throw e; }));
  return once.get(key);
}
function optional(p) { return p.catch(e => ({ error: e })); }

// ---- pieces of the page ------------------------------------------------

function patch(id, html) {
  const el = document.getElementById(id);
  if (el && el.__html !== html) {
    el.innerHTML = html;
    el.__html = html;
  }
}

// A note in the corner: at most three at a time, gone after ms or a click.
function toast(html, kind = 'info', ms = kind === 'bad' ? 12000 : kind === 'good' ? 8000 : 4000) {
  const box = document.getElementById('toasts');
  const el = document.createElement('div');
  el.className = 'toast ' + kind;
  el.innerHTML = html;
  el.title = 'click to dismiss';
  el.onclick = ev => { if (!ev.target.closest('a')) el.remove(); };
  box.appendChild(el);
  while (box.children.length > 3) box.firstChild.remove();
  setTimeout(() => el.remove(), ms);
}

// A modal form. onOk(form) may throw; its message is shown and the dialog
// stays open. Resolves when the dialog closes.
function dialog({ title, body, ok = 'OK', danger = false, onOk }) {
  const dlg = document.getElementById('dialog');
  const form = document.getElementById('dialog-form');
  const okBtn = document.getElementById('dialog-ok');
  document.getElementById('dialog-title').textContent = title;
  document.getElementById('dialog-body').innerHTML = body;
  document.getElementById('dialog-error').textContent = '';
  okBtn.textContent = ok;
  okBtn.className = danger ? 'danger' : 'primary';
  okBtn.disabled = false;
  form.onsubmit = async ev => {
    ev.preventDefault();
    okBtn.disabled = true;
    try {
      await onOk(form);
      dlg.close();
    } catch (e) {
      document.getElementById('dialog-error').textContent = e.message;
    } finally {
      okBtn.disabled = false;
    }
  };
  document.getElementById('dialog-cancel').onclick = () => dlg.close();
  dlg.showModal();
  const first = form.querySelector('#dialog-body input');
  (first || okBtn).focus();
}

// ---- overview ----------------------------------------------------------

const overviewView = {
  skeleton: () => `<section id="ov-cards"></section>
    <h2>Task slots</h2><section id="ov-slots"></section>
    <h2>Jobs</h2><section id="ov-jobs"></section>`,
  load: () => Promise.all([api('/overview'), api('/taskmanagers'), api('/jobs/overview')]),
  render([o, tms, jobs]) {
    const total = o['slots-total'], avail = o['slots-available'];
    patch('ov-cards', `<div class="cards">` +
      card('Task slots', `<span id="slots-total">${esc(total)}</span>`,
        `<div class="sub"><span id="slots-available">${esc(avail)}</span> available · ${esc(total - avail)} in use</div>` +
        bar(total - avail, total)) +
      card('Task managers', esc(o.taskmanagers), '', 'tm-count') +
      card('Running jobs', `<span class="c-RUNNING">${esc(o['jobs-running'])}</span>`) +
      card('Finished', `<span class="c-FINISHED">${esc(o['jobs-finished'])}</span>`) +
      card('Canceled', `<span class="c-CANCELED">${esc(o['jobs-cancelled'])}</span>`) +
      card('Failed', `<span class="c-FAILED">${esc(o['jobs-failed'])}</span>`) +
      `</div>`);
    patch('ov-slots', slotGrid(tms.taskmanagers, jobs.jobs));
    patch('ov-jobs', jobTable(jobs.jobs));
  },
};

function slotGrid(tms, jobs) {
  if (!tms.length) return '<p class="empty">No task managers registered. Start some with scripts/start-cluster.sh.</p>';
  const byId = new Map(jobs.map(j => [j.jid, j]));
  let h = '<div class="slot-grid" id="slot-grid">';
  for (const tm of tms) {
    h += `<div class="tm-box" data-tm="${esc(tm.id)}"><div class="tm-head">${tmLink(tm.id)}` +
      `<span class="muted">${esc(tm.path)}</span><span class="free">${esc(tm.freeSlots)}/${esc(tm.slotsNumber)} free</span></div>` +
      '<div class="tm-slots">';
    for (const s of tm.slots || []) {
      if (!s.job) {
        h += `<div class="slot free" data-slot="${esc(s.index)}"><span class="idx">${esc(s.index)}</span>free</div>`;
        continue;
      }
      const j = byId.get(s.job);
      const p = j ? j.parallelism : '?';
      h += `<div class="slot used" data-slot="${esc(s.index)}" data-job="${esc(s.job)}" ` +
        `data-subtask="${esc(s.subtask)}" style="--h:${hue(s.job)}">` +
        `<span class="idx">${esc(s.index)}</span>` +
        `<div class="what">${jobLink(s.job, j ? j.name : s.job.slice(0, 8))} ` +
        `<span class="st">subtask ${esc(s.subtask + 1)}/${esc(p)}</span></div>` +
        `<div class="tasks">${(s.tasks || []).map(t => `<div>${esc(t)}</div>`).join('')}</div></div>`;
    }
    h += '</div></div>';
  }
  return h + '</div>';
}

function taskBar(t) {
  const order = ['running', 'deploying', 'created', 'finished', 'canceling', 'canceled', 'failed'];
  const total = t && t.total ? t.total : 0;
  if (!total) return '-';
  const segs = order.filter(k => t[k] > 0).map(k =>
    `<div class="seg t-${k}" style="flex:${Number(t[k])}" title="${esc(t[k])} ${k}"></div>`).join('');
  const words = order.filter(k => t[k] > 0).map(k => `${t[k]} ${k}`).join(', ');
  return `<div class="taskbar">${segs}</div><div class="tiny muted">${esc(words)}</div>`;
}

function jobTable(jobs) {
  const rank = j => (TERMINAL.includes(j.state) ? 1 : 0);
  const sorted = [...jobs].sort((a, b) => rank(a) - rank(b) || b['start-time'] - a['start-time']);
  return table('jobs', ['Name', 'State', 'Started', 'Ended', 'Duration', '>Parallelism', 'Tasks', 'Id'],
    sorted.map(j => `<tr data-href="#/jobs/${esc(j.jid)}" data-jid="${esc(j.jid)}">` +
      `<td>${jobLink(j.jid, j.name)}</td><td>${badge(j.state)}</td><td>${when(j['start-time'])}</td>` +
      `<td>${j['end-time'] > 0 ? when(j['end-time']) : '-'}</td><td>${dur(j.duration)}</td>` +
      `<td class="r">${esc(j.parallelism)}</td><td class="w-tasks">${taskBar(j.tasks)}</td>` +
      `<td><code>${esc(j.jid)}</code></td></tr>`),
    'No jobs yet. Submit one on the Submit page or with: jobctl submit FILE');
}

// ---- jobs --------------------------------------------------------------

const jobsView = {
  skeleton: () => '<h2>Jobs</h2><section id="jobs-list"></section>',
  load: () => api('/jobs/overview'),
  render(d) { patch('jobs-list', jobTable(d.jobs)); },
};

// ---- one job -----------------------------------------------------------

const jobView = {
  skeleton: r => `<section id="job-head"></section>
    <nav class="tabs" id="job-tabs">${JOB_TABS.map(([t, label]) =>
      `<a href="#/jobs/${encodeURIComponent(r.id)}${t === 'overview' ? '' : '/' + t}" id="tab-${t}"` +
      `${t === r.tab ? ' class="on"' : ''}>${label}</a>`).join('')}</nav>
    <section id="job-ops"></section>
    <section id="job-body"></section>`,
  async load(r) {
    const id = encodeURIComponent(r.id);
    const job = await api(`/jobs/${id}`);
    const d = { job };
    if (r.tab === 'overview') {
      // watermarks: one small document per vertex, so fetched every
      // WATERMARK_MS rather than every tick; a failure only hides the line
      const live = !TERMINAL.includes(job.state);
      if (!live) {
        d.wm = [];
      } else if (wmCache.jid === job.jid && Date.now() - wmCache.t < WATERMARK_MS) {
        d.wm = wmCache.wm;
      } else {
        d.wm = await Promise.all(job.vertices.map(v =>
          api(`/jobs/${id}/vertices/${encodeURIComponent(v.id)}/watermarks`).catch(() => null)));
        wmCache = { jid: job.jid, t: Date.now(), wm: d.wm };
      }
    } else if (r.tab === 'checkpoints') {
      [d.ckpt, d.ckconf] = await Promise.all([api(`/jobs/${id}/checkpoints`),
        optional(cached('ckconf:' + r.id, `/jobs/${id}/checkpoints/config`))]);
    } else if (r.tab === 'exceptions') {
      d.exc = await api(`/jobs/${id}/exceptions`);
    } else if (r.tab === 'configuration') {
      [d.conf, d.plan] = await Promise.all([optional(cached('conf:' + r.id, `/jobs/${id}/config`)),
        optional(cached('plan:' + r.id, `/jobs/${id}/plan`))]);
    }
    return d;
  },
  render(d, r) {
    const j = d.job;
    patch('job-head', jobHead(j));
    patch('job-ops', opsList(j.jid));
    let body = '';
    if (r.tab === 'overview') body = jobOverview(j, d.wm);
    else if (r.tab === 'subtasks') body = subtasksTab(j);
    else if (r.tab === 'checkpoints') body = checkpointsTab(j, d.ckpt, d.ckconf);
    else if (r.tab === 'exceptions') body = exceptionsTab(d.exc);
    else if (r.tab === 'configuration') body = configTab(j, d.conf, d.plan);
    patch('job-body', body);
  },
};

function jobHead(j) {
  const live = !TERMINAL.includes(j.state);
  const running = j.state === 'RUNNING';
  const ck = j.checkpoints || {};
  const facts = [
    `<code>${esc(j.jid)}</code>`,
    `started ${when(j['start-time'])}`,
    j['end-time'] > 0 ? `ended ${when(j['end-time'])}` : '',
    `duration ${dur(j.duration)}`,
    `parallelism ${esc(j.parallelism)}`,
    `${esc(j['slots-needed'])} slot${j['slots-needed'] === 1 ? '' : 's'}`,
    j.restarts ? `<span class="c-FAILED">${esc(j.restarts)} restarts</span>` : '',
    ck.interval_ms > 0 ? `checkpoints every ${dur(ck.interval_ms)} (${esc(ck.completed)} completed)` : 'no checkpoints',
  ].filter(Boolean);
  return `<div class="job-title"><h2 id="job-name">${esc(j.name)}</h2><span id="job-state">${badge(j.state)}</span>
    <div class="buttons">
      ${running ? `<button id="btn-savepoint" data-action="savepoint" data-jid="${esc(j.jid)}">Savepoint…</button>
      <button id="btn-stop" data-action="stop" data-jid="${esc(j.jid)}">Stop…</button>` : ''}
      ${live ? `<button id="btn-cancel" class="danger" data-action="cancel" data-jid="${esc(j.jid)}" data-name="${esc(j.name)}">Cancel job</button>` : ''}
    </div></div>
    <p class="facts">${facts.join(' · ')}</p>
    ${j.failure ? `<div class="alert">${when(j.failure.timestamp)}: ${esc(j.failure.message)}</div>` : ''}`;
}

function opsList(jid) {
  const mine = ops.filter(o => o.jid === jid);
  if (!mine.length) return '';
  return '<div class="ops">' + mine.map(o => {
    const what = o.kind === 'stop' ? 'Stop with savepoint' : 'Savepoint';
    const st = o.status === 'COMPLETED' ? (o.error ? '<span class="c-FAILED">failed</span>' : '<span class="c-FINISHED">completed</span>')
      : '<span class="c-RUNNING">in progress</span>';
    const tail = o.error ? `: ${esc(o.error)}` : o.location ? `: <code>${esc(o.location)}</code>` : ` (target ${esc(o.dir)})`;
    return `<div class="op" data-request="${esc(o.rid)}">${what} #${esc(o.rid)} ${st}${tail}</div>`;
  }).join('') + '</div>';
}

// Columns by longest path from a source (topological order), rows ordered
// by the mean row of each vertex's inputs to keep edges short and uncrossed.
function layout(vertices, edges) {
  const idx = new Map(vertices.map((v, i) => [v.id, i]));
  const preds = vertices.map(() => []), succs = vertices.map(() => []);
  for (const e of edges) {
    const a = idx.get(e.source), b = idx.get(e.target);
    if (a === undefined || b === undefined) continue;
    preds[b].push(a);
    succs[a].push(b);
  }
  const layer = vertices.map(() => 0), indeg = preds.map(p => p.length);
  const queue = vertices.map((_, i) => i).filter(i => indeg[i] === 0);
  const seen = new Set();
  while (queue.length) {
    const v = queue.shift();
    seen.add(v);
    for (const w of succs[v]) {
      layer[w] = Math.max(layer[w], layer[v] + 1);
      if (--indeg[w] === 0) queue.push(w);
    }
  }
  const maxLayer = Math.max(0, ...layer);
  vertices.forEach((_, i) => { if (!seen.has(i)) layer[i] = maxLayer + 1; });  // a cycle: never planned
  const cols = [];
  vertices.forEach((_, i) => (cols[layer[i]] = cols[layer[i]] || []).push(i));
  const row = new Array(vertices.length).fill(0);
  cols.forEach((col, c) => {
    if (c > 0) {
      const key = i => preds[i].length ? preds[i].reduce((s, p) => s + row[p], 0) / preds[i].length : i;
      col.sort((a, b) => key(a) - key(b) || a - b);
    }
    col.forEach((v, k) => { row[v] = k; });
  });
  return { cols: cols.filter(Boolean), row, layer, preds };
}

// The vertex's low watermark: the minimum over its subtasks of what they
// received (a source: of what it emitted); null while one has none.
function watermarkOf(doc, source) {
  if (!Array.isArray(doc)) return null;
  const suffix = source ? '.currentOutputWatermark' : '.currentInputWatermark';
  let min = null;
  for (const m of doc) {
    if (typeof m.id !== 'string' || !m.id.endsWith(suffix)) continue;
    if (m.value === NO_WATERMARK || m.value === undefined) return null;  // one subtask has none yet
    const v = Number(m.value);
    if (!Number.isFinite(v)) return null;
    min = min === null ? v : Math.min(min, v);
  }
  return min;
}

// An event time in ms: a date, "end of input" for Long.MAX_VALUE, "-" for none.
function eventTime(ms) {
  if (typeof ms !== 'number' || ms < -8.64e15) return '-';
  if (ms > 8.64e15) return 'end of input';
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.` +
    String(d.getUTCMilliseconds()).padStart(3, '0');
}

function jobGraph(j, wm) {
  const W = 236, H = 104, GX = 96, GY = 26, P = 16;
  const vs = j.vertices, L = layout(vs, j.edges);
  const tallest = Math.max(1, ...L.cols.map(c => c.length));
  const width = P * 2 + L.cols.length * W + (L.cols.length - 1) * GX;
  const height = P * 2 + tallest * H + (tallest - 1) * GY;
  const pos = vs.map((_, i) => {
    const col = L.cols.findIndex(c => c.includes(i)), n = L.cols[col].length;
    const top = P + (height - 2 * P - (n * H + (n - 1) * GY)) / 2;
    return { x: P + col * (W + GX), y: top + L.row[i] * (H + GY) };
  });
  const idx = new Map(vs.map((v, i) => [v.id, i]));
  const live = !TERMINAL.includes(j.state);
  let g = '';
  // edges first, under the vertices; several inputs of one vertex enter at
  // spread points
  const inCount = new Map(), inSeen = new Map(), outCount = new Map(), outSeen = new Map();
  for (const e of j.edges) {
    inCount.set(e.target, (inCount.get(e.target) || 0) + 1);
    outCount.set(e.source, (outCount.get(e.source) || 0) + 1);
  }
  for (const e of j.edges) {
    const a = idx.get(e.source), b = idx.get(e.target);
    if (a === undefined || b === undefined) continue;
    const ki = inSeen.get(e.target) || 0, ko = outSeen.get(e.source) || 0;
    inSeen.set(e.target, ki + 1);
    outSeen.set(e.source, ko + 1);
    const x1 = pos[a].x + W, y1 = pos[a].y + H * (ko + 1) / (outCount.get(e.source) + 1);
    const x2 = pos[b].x - 6, y2 = pos[b].y + H * (ki + 1) / (inCount.get(e.target) + 1);
    const dx = Math.max(40, (x2 - x1) / 2);
    const mx = (x1 + x2) / 2, my = (y1 + y2) / 2;
    const label = String(e.ship_strategy || '');
    g += `<g class="edge" data-source="${esc(e.source)}" data-target="${esc(e.target)}">` +
      `<path d="M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}" marker-end="url(#arrow)"/>` +
      `<rect x="${mx - label.length * 3.6 - 5}" y="${my - 9}" width="${label.length * 7.2 + 10}" height="17" rx="3"/>` +
      `<text x="${mx}" y="${my + 4}" text-anchor="middle">${esc(label)}</text></g>`;
  }
  vs.forEach((v, i) => {
    const { x, y } = pos[i], m = v.metrics || {};
    const level = live && v.status === 'RUNNING' ? (v['backpressure-level'] || 'ok') : 'idle';
    const source = !j.edges.some(e => e.target === v.id);
    const sink = !j.edges.some(e => e.source === v.id);
    const name = v.name.length > 27 ? v.name.slice(0, 26) + '…' : v.name;   // ~8 px a letter
    // the last figures of a vertex that stopped are not rates any more
    const fresh = v.status === 'RUNNING';
    const r = x => (fresh ? rate(x) : '—');
    const busy = fresh ? m.busyTimeMsPerSecond / 10 : NaN;
    const w = wm ? watermarkOf(wm[i], source) : null;
    const tip = `${v.name}\noperators: ${(v.operators || []).join(' -> ')}\n` +
      `backpressure: ${v['backpressure-level'] || '-'}, busy ${pct(busy)}, backpressured ${pct(m.backPressuredTimeMsPerSecond / 10)}`;
    g += `<g class="vertex bp-${esc(level)}${selectedVertex === v.id ? ' selected' : ''}" data-action="vertex" ` +
      `data-vertex="${esc(v.id)}" data-rate-in="${esc(fresh ? m.numRecordsInPerSecond : 0)}" data-rate-out="${esc(fresh ? m.numRecordsOutPerSecond : 0)}" ` +
      `data-parallelism="${esc(v.parallelism)}" transform="translate(${x},${y})">` +
      `<title>${esc(tip)}</title>` +
      `<rect class="box" width="${W}" height="${H}" rx="6"/><rect class="band" width="6" height="${H}" rx="3"/>` +
      `<text class="name" x="16" y="22">${esc(name)}</text>` +
      `<text x="16" y="42"><tspan class="k">Parallelism</tspan> ${esc(v.parallelism)} · ${esc(v.status)}</text>` +
      `<text x="16" y="60"><tspan class="k">In</tspan> <tspan class="rate-in">${source ? '—' : esc(r(m.numRecordsInPerSecond))}</tspan>` +
      `  <tspan class="k">Out</tspan> <tspan class="rate-out">${sink && !m.numRecordsOutPerSecond ? '—' : esc(r(m.numRecordsOutPerSecond))}</tspan></text>` +
      `<text x="16" y="78"><tspan class="k">Backpressure</tspan> <tspan class="bp">${esc(v['backpressure-level'] || '-')}</tspan>` +
      ` · <tspan class="k">busy</tspan> ${esc(pct(busy))}</text>` +
      (w !== null ? `<text x="16" y="96" class="wm"><tspan class="k">Watermark</tspan> ${esc(eventTime(w))}</text>` : '') +
      `</g>`;
  });
  return `<div class="graph-wrap"><svg id="job-graph" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="job graph">` +
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">` +
    `<path d="M0,0 L10,5 L0,10 z"/></marker></defs>${g}</svg></div>` +
    `<div class="legend"><span class="sw bp-ok"></span>no backpressure <span class="sw bp-low"></span>low ` +
    `<span class="sw bp-high"></span>high <span class="sw bp-idle"></span>not running · click a vertex for its row</div>`;
}

function jobOverview(j, wm) {
  const rows = j.vertices.map(v => {
    const m = v.metrics || {};
    const opm = v['operator-metrics'] || [];
    const chain = opm.length < 2 ? '' : opm.map(o =>
      `${esc(o.name)} <span class="muted">(${compact(o['records-in'])} in, ${compact(o['records-out'])} out)</span>`).join(' → ');
    const counts = {};
    for (const s of v.subtasks) counts[s.status] = (counts[s.status] || 0) + 1;
    const fresh = v.status === 'RUNNING';
    const r = x => (fresh ? rate(x) : '-');
    return `<tr id="vrow-${esc(v.id)}" class="${selectedVertex === v.id ? 'selected' : ''}">` +
      `<td><b class="nowrap">${esc(v.name)}</b><div class="tiny">${chain}</div></td><td>${badge(v.status)}</td>` +
      `<td class="r">${esc(v.parallelism)}</td>` +
      `<td class="r">${num(m['read-records'])}</td><td class="r">${num(m['write-records'])}</td>` +
      `<td class="r">${r(m.numRecordsInPerSecond)} / ${r(m.numRecordsOutPerSecond)}</td>` +
      `<td class="r">${bytes(m['read-bytes'])} / ${bytes(m['write-bytes'])}</td>` +
      `<td class="r">${fresh ? pct(m.busyTimeMsPerSecond / 10) : '-'}</td>` +
      `<td><span class="bp-text bp-${esc(v['backpressure-level'])}">${esc(v['backpressure-level'])}</span></td>` +
      `<td class="r">${num(m.numRecordsDeadLettered)}</td>` +
      `<td class="tiny nowrap">${Object.entries(counts).map(([k, n]) => `${n} ${esc(k)}`).join('<br>')}</td></tr>`;
  });
  return jobGraph(j, wm) + '<h3>Vertices</h3>' + table('vertices',
    ['Vertex (operator chain)', 'Status', '>Parallelism', '>Records in', '>Records out', '>Rate in / out',
      '>Bytes in / out', '>Busy', 'Backpressure', '>Dead letters', 'Subtasks'], rows, 'No vertices.');
}

function subtasksTab(j) {
  const rows = [], parts = [];
  const failures = j.vertices.some(v => v.subtasks.some(s => s.failure));
  for (const v of j.vertices) {
    const source = !j.edges.some(e => e.target === v.id);
    for (const s of v.subtasks) {
      const m = s.metrics || {};
      const wmark = source ? m.currentOutputWatermark : m.currentInputWatermark;
      for (const pt of m.partitions || [])
        parts.push(`<tr><td class="nowrap">${esc(v.name)}</td><td class="r">${esc(s.subtask + 1)}/${esc(v.parallelism)}</td>` +
          `<td>${esc(pt.topic)}</td><td class="r">${esc(pt.partition)}</td>` +
          `<td class="r">${pt.currentOffset == null ? '-' : num(pt.currentOffset)}</td>` +
          `<td class="r">${pt.pendingRecords == null ? '-' : num(pt.pendingRecords)}</td></tr>`);
      const fresh = s.status === 'RUNNING';
      const r = x => (fresh ? rate(x) : '-');
      const p = x => (fresh ? pct(x / 10) : '-');
      rows.push(`<tr data-vertex="${esc(v.id)}" class="${selectedVertex === v.id ? 'selected' : ''}">` +
        `<td class="nowrap">${esc(v.name)}</td><td class="r">${esc(s.subtask + 1)}/${esc(v.parallelism)}</td><td>${badge(s.status)}</td>` +
        `<td>${tmLink(s['taskmanager-id'])} <span class="muted tiny">${esc(s.host || '')}</span></td>` +
        `<td class="r">${num(m['read-records'])}</td><td class="r">${num(m['write-records'])}</td>` +
        `<td class="r">${r(m.numRecordsInPerSecond)} / ${r(m.numRecordsOutPerSecond)}</td>` +
        `<td class="r">${p(m.busyTimeMsPerSecond)}</td><td class="r">${p(m.backPressuredTimeMsPerSecond)}</td>` +
        `<td class="r">${m.pendingRecords == null ? '-' : num(m.pendingRecords)}</td>` +
        `<td class="r">${num(m.numRecordsDeadLettered)}</td>` +
        `<td class="nowrap wm">${esc(eventTime(wmark))}</td>` +
        (failures ? `<td>${s.failure ? `<div class="err">${esc(s.failure)}</div>` : ''}</td>` : '') + '</tr>');
    }
  }
  return table('subtasks', ['Vertex', '>Subtask', 'Status', 'Task manager', '>Records in', '>Records out',
    '>Rate in / out', '>Busy', '>Back&shy;pressured', '>Pending', '>Dead letters', 'Watermark'].concat(failures ? ['Failure'] : []),
    rows, 'No subtasks.') +
    (parts.length ? '<h3>Kafka partitions</h3>' + table('partitions', ['Vertex', '>Subtask', 'Topic', '>Partition',
      '>Next offset', '>Pending'], parts, '') : '');
}

function checkpointsTab(j, c, conf) {
  const k = c.counts || { total: 0, completed: c.completed, failed: c.failed, in_progress: c.in_progress ? 1 : 0, restored: c.restored_from ? 1 : 0 };
  if (!(c.interval_ms > 0) && !k.total)
    return '<p class="empty" id="ckpt-disabled">Checkpointing is not enabled for this job: its job file has no <code>checkpoint:</code> block.</p>';
  let h = '<div class="cards">' +
    card('Triggered', esc(k.total)) +
    card('Completed', `<span class="c-FINISHED" id="ckpt-completed">${esc(k.completed)}</span>`) +
    card('Failed', `<span class="${k.failed ? 'c-FAILED' : ''}" id="ckpt-failed">${esc(k.failed)}</span>`) +
    card('In progress', c.in_progress
      ? `<span class="c-RUNNING">#${esc(c.in_progress.id)}</span>`
      : '0', c.in_progress ? `<div class="sub">${esc(c.in_progress.acknowledged)}/${esc(c.in_progress.subtasks)} acknowledged</div>` : '') +
    card('Restored from', c.restored_from ? '#' + esc(c.restored_from) : '-') +
    '</div>';
  const l = c.latest;
  h += '<div class="two">';
  h += '<div><h3>Latest completed</h3>' + (l ? kv([
    ['Id', '#' + esc(l.id)], ['Completed', when(l.completed_ms)], ['End to end', dur(l.duration_ms)],
    ['Synchronous part', dur(l.sync_ms)], ['State size', bytes(l.bytes)], ['Path', `<code>${esc(l.path)}</code>`],
  ]) : '<p class="empty">None yet.</p>') +
    (c.last_failure ? `<h3>Last failure</h3><div class="alert">${esc(c.last_failure)}</div>` : '') + '</div>';
  const s = c.summary;
  h += '<div><h3>Summary of the history</h3>' + (s ? table(null, ['', '>Min', '>Average', '>Max'], [
    `<tr><td>End to end duration</td><td class="r">${dur(s.end_to_end_duration.min)}</td><td class="r">${dur(s.end_to_end_duration.avg)}</td><td class="r">${dur(s.end_to_end_duration.max)}</td></tr>`,
    `<tr><td>State size</td><td class="r">${bytes(s.state_size.min)}</td><td class="r">${bytes(s.state_size.avg)}</td><td class="r">${bytes(s.state_size.max)}</td></tr>`,
  ], '') : '<p class="empty">No completed checkpoints yet.</p>') + '</div></div>';
  h += '<h3>History</h3>' + table('ckpt-history',
    ['Id', 'Status', 'Type', 'Triggered', '>End to end', '>Sync', '>State size', '>Acknowledged', 'Failure'],
    (c.history || []).map(x => `<tr data-ckpt="${esc(x.id)}" data-status="${esc(x.status)}"><td>#${esc(x.id)}</td><td>${badge(x.status)}</td>` +
      `<td>${x.is_savepoint ? 'savepoint' : 'checkpoint'}</td><td>${when(x.trigger_timestamp)}</td>` +
      `<td class="r">${x.status === 'IN_PROGRESS' ? '-' : dur(x.end_to_end_duration)}</td><td class="r">${dur(x.sync_duration)}</td>` +
      `<td class="r">${bytes(x.state_size)}</td><td class="r">${esc(x.num_acknowledged_subtasks)}/${esc(x.num_subtasks)}</td>` +
      `<td>${x.failure_message ? `<span class="err">${esc(x.failure_message)}</span>` : ''}</td></tr>`),
    'No checkpoints yet; the first one is due one interval after the job starts.');
  h += '<h3>Configuration</h3>';
  if (conf && !conf.error) {
    h += kv([
      ['Mode', esc(conf.mode)], ['Interval', dur(conf.interval)], ['Timeout', dur(conf.timeout)],
      ['Minimum pause', dur(conf.min_pause)], ['Max concurrent', esc(conf.max_concurrent)],
      ['Tolerable failures', esc(conf.tolerable_failed_checkpoints)], ['Retained', esc(conf.retained)],
      ['State backend', esc(conf.state_backend)], ['Storage', esc(conf.checkpoint_storage)],
      ['Unaligned', conf.unaligned_checkpoints ? 'yes' : 'no'],
      ['Kept on cancel', conf.externalization && !conf.externalization.delete_on_cancellation ? 'yes' : 'no'],
      ['Directory', `<code>${esc(conf.checkpoint_dir)}</code>`],
    ]);
  } else {
    h += kv([['Mode', esc(c.mode)], ['Interval', dur(c.interval_ms)]]);
  }
  return h;
}

function exceptionsTab(e) {
  let h = '<h3>Root exception</h3>';
  h += e.rootException
    ? `<div class="alert" id="root-exception">${e.timestamp ? `<div class="tiny">${when(e.timestamp)}</div>` : ''}<pre>${esc(e.rootException)}</pre></div>`
    : '<p class="empty" id="root-exception">No failure: the job has not failed.</p>';
  const entries = (e.exceptionHistory && e.exceptionHistory.entries) || [];
  h += '<h3>History</h3>' + table('exceptions', ['Time', '>Attempt', 'Exception'],
    entries.map(x => `<tr><td class="nowrap">${when(x.timestamp)}</td><td class="r">${esc(x.attempt)}</td>` +
      `<td><pre>${esc(x.exceptionName)}</pre></td></tr>`),
    'No exceptions.');
  if (e.exceptionHistory && e.exceptionHistory.truncated) h += '<p class="muted">Older entries were dropped.</p>';
  return h;
}

function configTab(j, conf, plan) {
  if (!conf || conf.error) return `<div class="alert">Cannot load the job's configuration: ${esc(conf && conf.error.message)}</div>`;
  const x = conf['execution-config'] || {};
  const ck = x.checkpointing || {};
  const vars = Object.entries(x['user-config'] || {});
  let h = '<div class="two"><div><h3>Execution</h3>' + kv([
    ['Job id', `<code>${esc(conf.jid)}</code>`], ['Name', esc(conf.name)],
    ['Parallelism', esc(x['job-parallelism']) + (x['parallelism-override'] ? ` (overridden at submit: ${esc(x['parallelism-override'])})` : '')],
    ['Max parallelism (key groups)', esc(x['max-parallelism'])], ['State backend', esc(x['state-backend'])],
    ['Restart strategy', esc(x['restart-strategy'])],
    ['Checkpointing', ck.enabled ? `${esc(ck.mode)}, every ${dur(ck.interval)}` : 'disabled'],
  ]) + '</div><div><h3>Variables</h3>' + table('job-vars', ['Name', 'Value'],
    vars.map(([k, v]) => `<tr><td><code>${esc(k)}</code></td><td><code>${esc(v)}</code></td></tr>`),
    'No variables were set at submit.') + '</div></div>';
  if (plan && !plan.error && plan.plan) {
    h += '<h3>Plan</h3>' + table('plan', ['Vertex', 'Operators', '>Parallelism', 'Inputs'],
      plan.plan.nodes.map(n => `<tr><td>${esc(n.id)} ${esc(n.description)}</td>` +
        `<td>${(n.operators || []).map(o => `${esc(o.name)} <span class="muted">(${esc(o.kind)})</span>`).join(' → ')}</td>` +
        `<td class="r">${esc(n.parallelism)}</td><td>${(n.inputs || []).map(i =>
          `${esc(i.id)} ${esc(i.ship_strategy)}${i.keys ? ` by ${i.keys.map(esc).join(', ')}` : ''}`).join('<br>') || '-'}</td></tr>`),
      '');
  }
  const f = conf['job-file'] || {};
  const lines = String(f.text || '').split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  h += `<h3>Job file <code>${esc(f.path || '')}</code></h3><div class="code" id="job-file">` +
    lines.map((l, i) => `<div class="ln"><span class="no">${i + 1}</span><span class="tx">${esc(l) || ' '}</span></div>`).join('') +
    '</div>';
  return h;
}

// ---- savepoint, stop, cancel --------------------------------------------

async function savepointDir() {
  try { return (await cached('config', '/config'))['savepoint-dir'] || ''; } catch (e) { return ''; }
}

async function askSavepoint(jid, stop) {
  const def = await savepointDir();
  dialog({
    title: stop ? 'Stop the job with a savepoint' : 'Trigger a savepoint',
    ok: stop ? 'Stop job' : 'Trigger savepoint',
    danger: stop,
    body: `<label>Target directory<input name="dir" id="sp-dir" required value="${esc(def)}" placeholder="/absolute/path" spellcheck="false"></label>
      <p class="muted">An absolute path that the job manager and every task manager can write to
      (a shared filesystem on several hosts). Each savepoint is a new directory inside it.
      ${stop ? 'The job stops once the savepoint is complete; resume it with <code>jobctl submit FILE --from-savepoint DIR</code> or the Submit page.' : ''}</p>
      ${stop ? '' : '<label class="check"><input type="checkbox" name="cancel" id="sp-cancel"> Cancel the job once the savepoint is complete</label>'}`,
    async onOk(form) {
      const dir = form.elements.dir.value.trim();
      if (!dir.startsWith('/')) throw new Error('The directory must be an absolute path (start with /).');
      const path = `/jobs/${encodeURIComponent(jid)}/${stop ? 'stop' : 'savepoints'}`;
      const body = stop ? { targetDirectory: dir, drain: false }
        : { 'target-directory': dir, 'cancel-job': !!(form.elements.cancel && form.elements.cancel.checked) };
      const r = await api(path, 'POST', body);
      ops.push({ jid, rid: r['request-id'], kind: stop ? 'stop' : 'savepoint', dir, status: 'IN_PROGRESS' });
      toast(`${stop ? 'Stop' : 'Savepoint'} requested (savepoint #${esc(r['request-id'])})`);
      tick();
    },
  });
}

function askCancel(jid, name) {
  dialog({
    title: 'Cancel the job',
    ok: 'Cancel job',
    danger: true,
    body: `<p>Cancel <b>${esc(name)}</b> <code>${esc(jid)}</code>? Its subtasks are stopped now and no savepoint is
      taken; completed checkpoints are kept.</p>`,
    async onOk() {
      await api(`/jobs/${encodeURIComponent(jid)}?mode=cancel`, 'PATCH');
      toast(`Canceling ${esc(name)}…`);
      tick();
    },
  });
}

// Savepoint requests in progress are followed whatever the view.
async function followOps() {
  for (const o of ops.filter(x => x.status === 'IN_PROGRESS')) {
    try {
      const r = await api(`/jobs/${encodeURIComponent(o.jid)}/savepoints/${encodeURIComponent(o.rid)}`);
      if (r.status && r.status.id === 'COMPLETED') {
        o.status = 'COMPLETED';
        const op = r.operation || {};
        if (op['failure-cause']) {
          o.error = op['failure-cause']['stack-trace'] || 'failed';
          toast(`Savepoint #${esc(o.rid)} failed: ${esc(o.error)}`, 'bad');
        } else {
          o.location = op.location;
          toast(`Savepoint #${esc(o.rid)} written to <code>${esc(o.location)}</code>`, 'good');
        }
      }
    } catch (e) {
      if (e.status === 404) { o.status = 'COMPLETED'; o.error = e.message; }
    }
  }
}

// ---- task managers -----------------------------------------------------

function heartbeat(ms, timeout) {
  const cls = ms > (timeout || 5000) / 2 ? 'c-FAILED' : '';
  return `<span class="${cls}">${(ms / 1000).toFixed(1)} s ago</span>`;
}

function remember(tm) {
  const h = tmHistory.get(tm.id) || [];
  const m = tm.metrics || {};
  h.push({ t: Date.now(), rss: m.rssBytes, cpu: m.cpuPercent });
  if (h.length > 180) h.shift();
  tmHistory.set(tm.id, h);
}

const tmsView = {
  skeleton: () => '<h2>Task managers</h2><section id="tm-list"></section>',
  load: () => Promise.all([api('/taskmanagers'), cached('config', '/config').catch(() => ({}))]),
  render([d, conf]) {
    d.taskmanagers.forEach(remember);
    patch('tm-list', table('taskmanagers', ['Id', 'Address', '>Slots', '>Free', 'Usage', 'Last heartbeat', '>Memory (RSS)', '>CPU'],
      d.taskmanagers.map(t => `<tr data-href="#/taskmanagers/${esc(t.id)}" data-tm="${esc(t.id)}"><td>${tmLink(t.id)}</td>` +
        `<td><code>${esc(t.path)}</code></td><td class="r">${esc(t.slotsNumber)}</td><td class="r">${esc(t.freeSlots)}</td>` +
        `<td class="w-bar">${bar(t.slotsNumber - t.freeSlots, t.slotsNumber)}</td>` +
        `<td>${heartbeat(t.timeSinceLastHeartbeat, conf['heartbeat-timeout'])}</td>` +
        `<td class="r">${bytes(t.metrics && t.metrics.rssBytes)}</td><td class="r">${pct(t.metrics && t.metrics.cpuPercent)}</td></tr>`),
      'No task managers registered. Start some with scripts/start-cluster.sh.'));
  },
};

function spark(points, key, fmt) {
  const W = 260, H = 48;
  const vals = points.map(p => p[key]).filter(Number.isFinite);
  if (vals.length < 2) return '<span class="muted tiny">collecting…</span>';
  const max = Math.max(...vals) || 1, min = Math.min(0, ...vals);
  const xy = vals.map((v, i) => `${(i * W / (vals.length - 1)).toFixed(1)},${(H - 2 - (v - min) * (H - 4) / (max - min || 1)).toFixed(1)}`);
  return `<svg class="spark" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none"><polyline points="${xy.join(' ')}" vector-effect="non-scaling-stroke"/></svg>` +
    `<div class="tiny muted">last ${vals.length} samples, max ${esc(fmt(max))}</div>`;
}

const tmView = {
  skeleton: r => `<h2>Task manager <span id="tm-id">${esc(r.id)}</span></h2><section id="tm-head"></section>
    <h3>Slots</h3><section id="tm-slots"></section>`,
  load: r => Promise.all([api('/taskmanagers/' + encodeURIComponent(r.id)), api('/jobs/overview'),
    cached('config', '/config').catch(() => ({}))]),
  render([t, jobs, conf]) {
    remember(t);
    const m = t.metrics || {}, hist = tmHistory.get(t.id) || [];
    patch('tm-head', '<div class="cards">' +
      card('Slots', esc(t.slotsNumber), `<div class="sub">${esc(t.freeSlots)} free</div>` + bar(t.slotsNumber - t.freeSlots, t.slotsNumber)) +
      card('Memory (RSS)', bytes(m.rssBytes), spark(hist, 'rss', bytes)) +
      card('CPU', pct(m.cpuPercent), spark(hist, 'cpu', pct)) +
      card('Last heartbeat', heartbeat(t.timeSinceLastHeartbeat, conf['heartbeat-timeout'])) +
      '</div>' + kv([
      ['Data address', `<code>${esc(t.path)}</code>`], ['Host', esc(t.host || '-')], ['Data port', esc(t.dataPort)],
      ['Registered', when(t.registered)],
    ]));
    const names = new Map(jobs.jobs.map(j => [j.jid, j]));
    patch('tm-slots', table('tm-slot-table', ['>Slot', 'Job', '>Subtask', 'Tasks'],
      (t.slots || []).map(s => {
        const j = s.job ? names.get(s.job) : null;
        const tasks = (s.tasks || []).map(x => typeof x === 'string' ? esc(x)
          : `${esc(x.name)} ${badge(x.status)}`).join('<br>');
        return `<tr><td class="r">${esc(s.index)}</td><td>${s.job ? jobLink(s.job, j ? j.name : s.job) : '<span class="muted">free</span>'}</td>` +
          `<td class="r">${s.job ? `${esc(s.subtask + 1)}/${esc(j ? j.parallelism : '?')}` : '-'}</td><td>${tasks || '-'}</td></tr>`;
      }), 'No slots.'));
  },
};

// ---- submit ------------------------------------------------------------

// ${NAME} and ${NAME:-default} references in a job file, in order.
function references(text) {
  const out = new Map();
  for (const m of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g)) {
    if (!out.has(m[1])) out.set(m[1], m[2]);
    else if (m[2] === undefined) out.set(m[1], undefined);   // required somewhere
  }
  return out;
}

const submitView = {
  poll: false,
  skeleton: () => `<h2>Submit a job</h2>
    <form id="submit-form" class="submit" autocomplete="off">
      <div class="row">
        <label class="file">Job file <input type="file" id="submit-file" accept=".yaml,.yml,text/yaml,text/plain"></label>
        <label>File name (in messages) <input id="submit-path" placeholder="job.yaml" value="${esc(draft.path)}" spellcheck="false"></label>
        <label>Parallelism <input type="number" id="submit-parallelism" min="1" max="32768" placeholder="from the file" value="${esc(draft.parallelism)}"></label>
      </div>
      <label>Job file text (YAML; see docs/job-files.md)
        <textarea id="submit-text" rows="20" spellcheck="false" placeholder="name: my-job&#10;sources:&#10;  - name: ...">${esc(draft.text)}</textarea></label>
      <div class="tiny muted" id="submit-pos">line 1, column 1</div>
      <h3>Variables</h3><div id="submit-vars"></div>
      <details><summary>Start from a savepoint</summary>
        <label>Savepoint or checkpoint directory <input id="submit-savepoint" placeholder="/path/to/savepoint" value="${esc(draft.savepoint)}" spellcheck="false"></label>
        <label class="check"><input type="checkbox" id="submit-allow"${draft.allowNonRestored ? ' checked' : ''}> Allow state that maps to no operator (skip it)</label>
      </details>
      <div class="actions"><button type="submit" class="primary" id="submit-button">Submit job</button></div>
      <div id="submit-result"></div>
    </form>`,
  load: () => null,
  render() {},
  mount() {
    const form = document.getElementById('submit-form');
    const text = document.getElementById('submit-text');
    const pos = document.getElementById('submit-pos');
    const save = () => {
      draft.text = text.value;
      draft.path = document.getElementById('submit-path').value;
      draft.parallelism = document.getElementById('submit-parallelism').value;
      draft.savepoint = document.getElementById('submit-savepoint').value;
      draft.allowNonRestored = document.getElementById('submit-allow').checked;
      for (const inp of document.querySelectorAll('#submit-vars input[data-var]')) draft.vars[inp.dataset.var] = inp.value;
    };
    let lastNames = null;
    const vars = () => {
      const refs = references(text.value);
      const names = [...refs.keys()].join(',');
      if (names === lastNames) return;
      save();
      lastNames = names;
      patch('submit-vars', refs.size ? table('submit-var-table', ['Variable', 'Value', 'Default'],
        [...refs].map(([k, d]) => `<tr><td><code>${esc(k)}</code>${d === undefined ? ' <span class="req">required</span>' : ''}</td>` +
          `<td><input data-var="${esc(k)}" value="${esc(draft.vars[k] || '')}" placeholder="${d === undefined ? 'required' : esc(d)}" spellcheck="false"></td>` +
          `<td>${d === undefined ? '-' : `<code>${esc(d)}</code>`}</td></tr>`), '')
        : '<p class="empty">The file references no <code>${VARIABLES}</code>.</p>');
    };
    const caret = () => {
      const before = text.value.slice(0, text.selectionStart).split('\n');
      pos.textContent = `line ${before.length}, column ${before[before.length - 1].length + 1}`;
    };
    let deb = null;
    text.addEventListener('input', () => { clearTimeout(deb); deb = setTimeout(() => { vars(); save(); }, 150); caret(); });
    text.addEventListener('keyup', caret);
    text.addEventListener('click', caret);
    form.addEventListener('change', save);
    document.getElementById('submit-file').addEventListener('change', ev => {
      const f = ev.target.files[0];
      if (!f) return;
      const rd = new FileReader();
      rd.onload = () => {
        text.value = String(rd.result);
        document.getElementById('submit-path').value = f.name;
        vars();
        save();
      };
      rd.readAsText(f);
    });
    form.addEventListener('submit', async ev => {
      ev.preventDefault();
      save();
      const btn = document.getElementById('submit-button');
      const body = { job: text.value };
      const path = draft.path.trim();
      if (path) body.path = path;
      if (draft.parallelism !== '') body.parallelism = Number(draft.parallelism);
      const v = {};
      for (const k of references(text.value).keys()) if (draft.vars[k]) v[k] = draft.vars[k];
      if (Object.keys(v).length) body.vars = v;
      if (draft.savepoint.trim()) {
        body.savepoint = draft.savepoint.trim();
        body.allow_non_restored_state = draft.allowNonRestored;
      }
      btn.disabled = true;
      patch('submit-result', '<p class="muted">submitting…</p>');
      try {
        const r = await api('/jobs', 'POST', body);
        patch('submit-result', `<div class="okbox">Submitted: ${jobLink(r.jobid, r.jobid)}</div>`);
        toast(`Job submitted: ${jobLink(r.jobid, r.jobid)}`, 'good');
        location.hash = '#/jobs/' + encodeURIComponent(r.jobid);
      } catch (e) {
        patch('submit-result', submitErrors(e, text.value));
      } finally {
        btn.disabled = false;
      }
    });
    document.getElementById('submit-result').addEventListener('click', ev => {
      const a = ev.target.closest('[data-line]');
      if (!a) return;
      ev.preventDefault();
      goTo(text, Number(a.dataset.line), Number(a.dataset.col));
    });
    vars();
    caret();
  },
};

// Selects line:col in the textarea and scrolls it into view.
function goTo(text, line, col) {
  const lines = text.value.split('\n');
  let off = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) off += lines[i].length + 1;
  off += Math.max(0, Math.min(col - 1, (lines[line - 1] || '').length));
  text.focus();
  text.setSelectionRange(off, off + 1);
  const lh = parseFloat(getComputedStyle(text).lineHeight) || 18;
  text.scrollTop = Math.max(0, (line - 4) * lh);
}

// The 400 answer's "file:line:col: reason" lines, each with the line it
// points at and a caret under the column, like a compiler.
function submitErrors(e, src) {
  const lines = src.split('\n');
  const items = (e.errors || [e.message]).flatMap(s => String(s).split('\n')).filter(Boolean).map(s => {
    const m = s.match(/^(.*?):(\d+):(\d+): ([\s\S]*)$/);
    if (!m) return `<li class="submit-error"><span class="msg">${esc(s)}</span></li>`;
    const ln = Number(m[2]), col = Number(m[3]);
    const text = lines[ln - 1];
    const excerpt = text === undefined ? '' :
      `<pre class="excerpt">${String(ln).padStart(4)} | ${esc(text)}\n     | ${' '.repeat(Math.max(0, col - 1))}^</pre>`;
    return `<li class="submit-error" data-line="${ln}" data-col="${col}">` +
      `<a href="#" data-line="${ln}" data-col="${col}" class="where">${esc(m[1])}:${ln}:${col}</a> ` +
      `<span class="msg">${esc(m[4])}</span>${excerpt}</li>`;
  });
  const title = e.status === 400 ? 'The job manager refused the job:' : `Could not submit (${esc(e.status || 'no answer')}):`;
  return `<div class="alert" id="submit-errors"><b>${title}</b><ul>${items.join('')}</ul></div>`;
}

// ---- routing and the poll ---------------------------------------------

function route() {
  const parts = (location.hash.replace(/^#\/?/, '') || '').split('/').filter(Boolean).map(p => {
    try { return decodeURIComponent(p); } catch (e) { return p; }
  });
  if (parts[0] === 'jobs' && parts[1]) {
    const tab = JOB_TABS.some(([t]) => t === parts[2]) ? parts[2] : 'overview';
    return { name: 'job', id: parts[1], tab, nav: 'jobs', key: `job/${parts[1]}` };
  }
  if (parts[0] === 'jobs') return { name: 'jobs', nav: 'jobs', key: 'jobs' };
  if (parts[0] === 'taskmanagers' && parts[1]) return { name: 'tm', id: parts[1], nav: 'taskmanagers', key: `tm/${parts[1]}` };
  if (parts[0] === 'taskmanagers') return { name: 'tms', nav: 'taskmanagers', key: 'tms' };
  if (parts[0] === 'submit') return { name: 'submit', nav: 'submit', key: 'submit' };
  return { name: 'overview', nav: 'overview', key: 'overview' };
}

const VIEWS = { overview: overviewView, jobs: jobsView, job: jobView, tms: tmsView, tm: tmView, submit: submitView };

function mount(r) {
  const v = VIEWS[r.name];
  view.innerHTML = v.skeleton(r);
  mounted = r.key;
  selectedVertex = null;
  if (v.mount) v.mount(r);
  for (const a of document.querySelectorAll('#nav a'))
    a.classList.toggle('on', a.dataset.nav === r.nav);
  document.title = 'weir · ' + (r.id ? r.id : document.querySelector(`#nav a[data-nav="${r.nav}"]`).textContent);
}

async function tick() {
  clearTimeout(timer);
  timer = null;
  const gen = ++generation;
  const r = route();
  const v = VIEWS[r.name];
  if (mounted !== r.key) mount(r);
  for (const t of document.querySelectorAll('#job-tabs a')) t.classList.toggle('on', t.id === 'tab-' + r.tab);
  try {
    await followOps();
    const data = await v.load(r);
    if (gen !== generation) return;        // a newer tick owns the page
    v.render(data, r);
    statusEl.className = 'live';
    statusEl.textContent = 'live · ' + clock(Date.now());
  } catch (e) {
    if (gen !== generation) return;
    statusEl.className = 'down';
    statusEl.textContent = e.status ? `error: ${e.message}` : 'job manager unreachable; retrying';
    if (e.status === 404 && (r.name === 'job' || r.name === 'tm')) {
      // gone (or never there): say so and stop polling it
      view.innerHTML = `<div class="alert">${esc(e.message)}</div><p><a href="#/">Back to the overview</a></p>`;
      mounted = null;
      return;
    }
  }
  if (gen === generation && v.poll !== false && !document.hidden)
    timer = setTimeout(tick, REFRESH_MS);
}

document.addEventListener('click', ev => {
  const el = ev.target.closest('[data-action]');
  if (el) {
    const a = el.dataset.action;
    if (a === 'cancel') askCancel(el.dataset.jid, el.dataset.name);
    else if (a === 'savepoint') askSavepoint(el.dataset.jid, false);
    else if (a === 'stop') askSavepoint(el.dataset.jid, true);
    else if (a === 'vertex') {
      selectedVertex = selectedVertex === el.dataset.vertex ? null : el.dataset.vertex;
      tick().then(() => {
        const row = document.getElementById('vrow-' + selectedVertex);
        if (row) row.scrollIntoView({ block: 'nearest' });
      });
    }
    return;
  }
  // a click anywhere on a linked row follows its link
  const tr = ev.target.closest('tr[data-href]');
  if (tr && !ev.target.closest('a, button, input') && !getSelection().toString())
    location.hash = tr.dataset.href;
});
window.addEventListener('hashchange', tick);
document.addEventListener('visibilitychange', () => { if (!document.hidden) tick(); });
tick();
