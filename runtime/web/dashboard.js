// weir dashboard: polls the job manager's REST API and renders the views.
// Plain JS, no framework, no external requests.
'use strict';

const view = document.getElementById('view');
const status = document.getElementById('status');
const REFRESH_MS = 2000;
let timer = null;

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
function dur(ms) {
  if (ms < 0) return '-';
  const s = Math.floor(ms / 1000), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${(ms / 1000).toFixed(1)}s`;
}
function when(ms) { return ms > 0 ? new Date(ms).toLocaleString() : '-'; }
function state(s) { return `<span class="state ${esc(s)}">${esc(s)}</span>`; }
async function get(path) {
  const r = await fetch(path, { cache: 'no-store' });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.errors || [r.statusText]).join('; '));
  return body;
}

async function overview() {
  const [o, tms, jobs] = await Promise.all([get('/overview'), get('/taskmanagers'), get('/jobs/overview')]);
  const used = o['slots-total'] - o['slots-available'];
  const pct = o['slots-total'] ? 100 * used / o['slots-total'] : 0;
  const names = Object.fromEntries(jobs.jobs.map(j => [j.jid, j.name]));
  let h = `<div class="cards">
    <div class="card"><div class="l">Task slots</div><div class="n" id="slots-total">${o['slots-total']}</div>
      <div class="muted"><span id="slots-available">${o['slots-available']}</span> available</div>
      <div class="bar"><div style="width:${pct}%"></div></div></div>
    <div class="card"><div class="l">Task managers</div><div class="n">${o.taskmanagers}</div></div>
    <div class="card"><div class="l">Running jobs</div><div class="n RUNNING">${o['jobs-running']}</div></div>
    <div class="card"><div class="l">Finished</div><div class="n FINISHED">${o['jobs-finished']}</div></div>
    <div class="card"><div class="l">Canceled</div><div class="n CANCELED">${o['jobs-cancelled']}</div></div>
    <div class="card"><div class="l">Failed</div><div class="n FAILED">${o['jobs-failed']}</div></div>
  </div><h2>Task slots</h2><div class="slots" id="slot-grid">`;
  for (const tm of tms.taskmanagers) {
    h += `<div class="tm"><div class="id">${esc(tm.id)}</div><div class="addr">${esc(tm.path)}</div>`;
    for (const s of tm.slots || []) {
      h += s.job
        ? `<div class="slot used" title="${esc(s.job)}">slot ${s.index}: <b>${esc(names[s.job] || s.job.slice(0, 8))}</b> #${s.subtask + 1}<br>${(s.tasks || []).map(esc).join('<br>')}</div>`
        : `<div class="slot">slot ${s.index}: free</div>`;
    }
    h += '</div>';
  }
  h += '</div>';
  if (!tms.taskmanagers.length) h += '<p class="muted">no task managers registered</p>';
  h += '<h2>Jobs</h2>' + jobTable(jobs.jobs);
  return h;
}

function jobTable(jobs) {
  if (!jobs.length) return '<p class="muted">no jobs yet: <code>jobctl submit FILE</code></p>';
  let h = '<table id="jobs"><tr><th>Name</th><th>State</th><th>Started</th><th>Duration</th><th>Parallelism</th><th>Tasks</th><th>Id</th></tr>';
  for (const j of [...jobs].reverse()) {
    const t = j.tasks;
    h += `<tr class="click" data-job="${esc(j.jid)}"><td>${esc(j.name)}</td><td>${state(j.state)}</td>
      <td>${when(j['start-time'])}</td><td>${dur(j.duration)}</td><td>${j.parallelism}</td>
      <td>${t.running} running, ${t.finished} finished${t.failed ? `, ${t.failed} failed` : ''}</td>
      <td><code>${esc(j.jid)}</code></td></tr>`;
  }
  return h + '</table>';
}

async function jobs() { return '<h2>Jobs</h2>' + jobTable((await get('/jobs/overview')).jobs); }

async function job(id) {
  const j = await get('/jobs/' + encodeURIComponent(id));
  const live = !['FINISHED', 'FAILED', 'CANCELED'].includes(j.state);
  let h = `<h2>${esc(j.name)} ${state(j.state)}</h2>
    <p class="muted"><code>${esc(j.jid)}</code> · started ${when(j['start-time'])} · ${dur(j.duration)}
    · parallelism ${j.parallelism} · ${j['slots-needed']} slots</p>
    ${live ? `<button class="danger" id="cancel">Cancel job</button>` : ''}
    ${j.failure ? `<h2>Failure</h2><div class="err">${esc(j.failure.message)}</div>` : ''}
    <h2>Vertices</h2><table id="vertices"><tr><th>Id</th><th>Vertex</th><th>Parallelism</th><th>Status</th><th>Subtasks</th></tr>`;
  for (const v of j.vertices) {
    h += `<tr><td>${esc(v.id)}</td><td>${esc(v.name)}</td><td>${v.parallelism}</td><td>${state(v.status)}</td><td>` +
      v.subtasks.map(s => `#${s.subtask + 1} ${state(s.status)} <span class="muted">${esc(s['taskmanager-id'] || '')}</span>` +
        (s.failure ? `<div class="err">${esc(s.failure)}</div>` : '')).join('<br>') + '</td></tr>';
  }
  h += '</table><h2>Edges</h2><table><tr><th>From</th><th>To</th><th>Partitioning</th></tr>' +
    j.edges.map(e => `<tr><td>${esc(e.source)}</td><td>${esc(e.target)}</td><td>${esc(e.ship_strategy)}</td></tr>`).join('') + '</table>';
  return h;
}

async function taskmanagers() {
  const tms = (await get('/taskmanagers')).taskmanagers;
  if (!tms.length) return '<p class="muted">no task managers registered</p>';
  return '<h2>Task managers</h2><table><tr><th>Id</th><th>Address</th><th>Slots</th><th>Free</th><th>Last heartbeat</th></tr>' +
    tms.map(t => `<tr><td>${esc(t.id)}</td><td>${esc(t.path)}</td><td>${t.slotsNumber}</td><td>${t.freeSlots}</td>
      <td>${(t.timeSinceLastHeartbeat / 1000).toFixed(1)} s ago</td></tr>`).join('') + '</table>';
}

async function render() {
  clearTimeout(timer);
  const hash = location.hash.replace(/^#/, '') || '/';
  try {
    let h;
    const m = hash.match(/^\/jobs\/([0-9a-f]+)$/);
    if (m) h = await job(m[1]);
    else if (hash === '/jobs') h = await jobs();
    else if (hash === '/taskmanagers') h = await taskmanagers();
    else h = await overview();
    view.innerHTML = h;
    status.textContent = 'updated ' + new Date().toLocaleTimeString();
    for (const tr of view.querySelectorAll('tr[data-job]'))
      tr.onclick = () => { location.hash = '#/jobs/' + tr.dataset.job; };
    const cancel = document.getElementById('cancel');
    if (cancel && m) cancel.onclick = async () => {
      if (!confirm('Cancel this job?')) return;
      await fetch('/jobs/' + m[1] + '?mode=cancel', { method: 'PATCH' });
      render();
    };
  } catch (e) {
    status.textContent = 'job manager unreachable: ' + e.message;
  }
  timer = setTimeout(render, REFRESH_MS);
}

window.addEventListener('hashchange', render);
render();
