// neurostack dashboard (docs/dashboard.md). Plain JS, no dependencies: it
// polls the JSON API, listens to /api/events, and draws its charts on canvas.
'use strict';

(() => {
  const $ = (sel) => document.querySelector(sel);
  const EVENT_KINDS = ['load_started', 'load_completed', 'load_failed', 'unloaded', 'generation_started',
    'generation_completed', 'generation_failed', 'context_shifted', 'session_created', 'session_truncated',
    'session_cleared', 'session_deleted', 'snapshot_saved', 'snapshot_restored', 'snapshot_deleted',
    'alert_fired', 'alert_cleared', 'mode_changed', 'dropped'];
  const MAX_EVENTS = 100;

  // ---- small helpers ----

  // h('td', {class: 'num'}, 'text', node...): an element, text set as text (never HTML).
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function bytes(n) {
    if (n === null || n === undefined || !isFinite(n)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
  }
  function num(n, digits = 1) {
    if (n === null || n === undefined || !isFinite(n)) return '–';
    return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  }
  function ms(n) {
    if (n === null || n === undefined || !isFinite(n)) return '–';
    return n < 1 ? num(n, 3) + ' ms' : n < 1000 ? num(n, 1) + ' ms' : num(n / 1000, 2) + ' s';
  }
  function clock(iso) {
    const d = new Date(iso);
    return isNaN(d) ? '' : d.toLocaleTimeString([], { hour12: false });
  }
  function ago(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return '–';
    const s = Math.round((Date.now() - d.getTime()) / 1000);
    if (s < 5) return 'just now';
    if (s < 90) return s + ' s ago';
    if (s < 5400) return Math.round(s / 60) + ' min ago';
    return d.toLocaleString([], { hour12: false });
  }
  function until(iso) {
    const d = new Date(iso);
    if (!iso || isNaN(d)) return '–';
    if (d.getFullYear() > 9000 || d.getFullYear() < 1971) return 'never';
    let s = Math.round((d.getTime() - Date.now()) / 1000);
    if (s <= 0) return 'now';
    const hh = Math.floor(s / 3600); s -= hh * 3600;
    const mm = Math.floor(s / 60); s -= mm * 60;
    if (hh > 48) return 'in ' + Math.round(hh / 24) + ' days';
    return 'in ' + (hh ? hh + 'h ' : '') + (hh || mm ? mm + 'm ' : '') + s + 's';
  }

  // ---- errors, in the API's own words ----

  const errorsEl = $('#errors');
  function showError(what, msg) {
    const text = what + ': ' + msg;
    for (const el of errorsEl.children) if (el.dataset.text === text) return; // once
    const item = h('div', { class: 'error' }, h('span', {}, text),
      h('button', { type: 'button', 'aria-label': 'Dismiss: ' + text, onclick: () => item.remove() }, 'Dismiss'));
    item.dataset.text = text;
    errorsEl.append(item);
    while (errorsEl.children.length > 5) errorsEl.firstElementChild.remove();
  }

  class ApiError extends Error {}

  // api('GET', '/api/ps'): the parsed JSON; throws ApiError with the API's
  // {"error"} message, or the HTTP status when the body has none.
  async function api(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError('cannot reach the server (' + e.message + ')');
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!res.ok) {
      const msg = data && typeof data.error === 'string' ? data.error : text.trim() || res.statusText;
      throw new ApiError(msg + ' (HTTP ' + res.status + ')');
    }
    return data;
  }

  // Runs an action from a button: disables it meanwhile, shows any error.
  async function act(button, what, fn) {
    if (button) button.disabled = true;
    try {
      await fn();
    } catch (e) {
      showError(what, e.message);
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ---- theme: auto (prefers-color-scheme), light, dark ----

  const THEMES = ['auto', 'light', 'dark'];
  function storedTheme() {
    try { return localStorage.getItem('nstack-theme') || 'auto'; } catch (e) { return 'auto'; }
  }
  function applyTheme(t) {
    if (t === 'auto') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = t;
    const btn = $('#theme-toggle');
    const next = THEMES[(THEMES.indexOf(t) + 1) % THEMES.length];
    btn.textContent = 'Theme: ' + t;
    btn.setAttribute('aria-label', 'Theme: ' + t + '. Switch to ' + next);
    $('#theme-now').textContent = t === 'auto'
      ? (matchMedia('(prefers-color-scheme: dark)').matches ? '(dark, from the system)' : '(light, from the system)') : '';
    drawCharts();
  }
  $('#theme-toggle').addEventListener('click', () => {
    const t = THEMES[(THEMES.indexOf(storedTheme()) + 1) % THEMES.length];
    try { localStorage.setItem('nstack-theme', t); } catch (e) { /* private mode: this page only */ }
    applyTheme(t);
  });
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => applyTheme(storedTheme()));

  // ---- state ----

  const state = {
    ps: [], perModel: new Map(), generations: [], resources: null, history: [], sessions: [], snapshots: [],
  };

  // ---- models ----

  function renderModels() {
    const tbody = $('#models-table tbody');
    const rows = state.ps.map((m) => {
      const name = m.name || m.model;
      const perf = state.perModel.get(name) || {};
      const busy = (m.active_requests || 0) > 0;
      const unload = h('button', {
        type: 'button', class: 'danger', 'aria-label': 'Unload ' + name,
        onclick: (ev) => act(ev.currentTarget, 'Unload ' + name, async () => {
          await api('POST', '/api/unload', { model: name });
          await refreshModels();
        }),
      }, 'Unload');
      return h('tr', { 'data-model': name },
        h('th', { scope: 'row' }, name, busy ? h('span', { class: 'status-busy' }, ' · busy') : null),
        h('td', { class: 'num' }, bytes(m.size)),
        h('td', { class: 'num' }, bytes(m.size_vram)),
        h('td', { class: 'num' }, num(m.context_length, 0)),
        h('td', { class: 'num' }, num(m.num_parallel, 0)),
        h('td', { class: 'num', 'data-field': 'active' }, num(m.active_requests || 0, 0)),
        h('td', { class: 'num', 'data-field': 'queued' }, num(m.queued_requests || 0, 0)),
        h('td', {}, until(m.expires_at)),
        h('td', { class: 'num', 'data-field': 'tps' }, perf.avg_tokens_per_s ? num(perf.avg_tokens_per_s, 1) : '–'),
        h('td', { class: 'num' }, perf.peak_tokens_per_s ? num(perf.peak_tokens_per_s, 1) : '–'),
        h('td', { class: 'num', 'data-field': 'ttft' }, perf.avg_ttft_ms !== undefined ? ms(perf.avg_ttft_ms) : '–'),
        h('td', { class: 'num' }, num(perf.requests || 0, 0)),
        h('td', {}, unload));
    });
    // keep focus on a button that survives the re-render
    const focused = document.activeElement && tbody.contains(document.activeElement)
      ? document.activeElement.getAttribute('aria-label') : null;
    tbody.replaceChildren(...rows);
    if (focused) {
      const again = [...tbody.querySelectorAll('button')].find((b) => b.getAttribute('aria-label') === focused);
      if (again) again.focus();
    }
    $('#models-empty').hidden = rows.length > 0;
    $('#models-table').hidden = rows.length === 0;
    const active = state.ps.reduce((a, m) => a + (m.active_requests || 0), 0);
    const queued = state.ps.reduce((a, m) => a + (m.queued_requests || 0), 0);
    $('#t-active').textContent = num(active, 0);
    $('#t-queued').textContent = num(queued, 0);
  }

  async function refreshModels() {
    const data = await api('GET', '/api/ps');
    state.ps = (data && data.models) || [];
    renderModels();
  }

  async function refreshTags() {
    const data = await api('GET', '/api/tags');
    const names = ((data && data.models) || []).map((m) => m.name);
    $('#model-names').replaceChildren(...names.map((n) => h('option', { value: n })));
  }

  $('#load-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const model = form.model.value.trim();
    if (!model) return;
    const body = { model };
    const ctx = form.num_ctx.value.trim();
    if (ctx) body.options = { num_ctx: Number(ctx) };
    const keep = form.keep_alive.value.trim();
    if (keep) body.keep_alive = /^-?\d+$/.test(keep) ? Number(keep) : keep;
    act(form.querySelector('button[type=submit]'), 'Load ' + model, async () => {
      await api('POST', '/api/load', body);
      await refreshModels();
    });
  });
  $('#unload-all').addEventListener('click', (ev) => act(ev.currentTarget, 'Unload all', async () => {
    await api('POST', '/api/unload', { all: true });
    await refreshModels();
  }));

  // ---- generations: per-model speed, throughput, the chart ----

  async function refreshGenerations() {
    const data = await api('GET', '/api/metrics/generations?limit=500&since=1h');
    state.generations = (data && data.generations) || [];
    state.perModel = new Map(((data && data.models) || []).map((m) => [m.model, m]));
    renderModels();
    renderThroughput();
    drawCharts();
  }

  function renderThroughput() {
    const now = Date.now();
    let tokens = 0;
    for (const g of state.generations) {
      if (now - new Date(g.time).getTime() <= 60000) tokens += g.eval_tokens || 0;
    }
    $('#t-tput').textContent = num(tokens / 60, 1) + ' tok/s';
    const last = state.generations[0];
    $('#t-last').textContent = last ? num(last.eval_tokens_per_s, 1) + ' tok/s · TTFT ' + ms(last.ttft_ms) : '–';
  }

  // ---- resources now ----

  async function refreshResources() {
    const r = await api('GET', '/api/resources');
    state.resources = r;
    const cpu = r.cpu || {}, ram = r.ram || {};
    $('#t-cpu').textContent = num(cpu.system_pct, 1) + ' %' + (cpu.cores ? ' of ' + cpu.cores + ' cores' : '');
    $('#m-cpu').value = cpu.system_pct || 0;
    $('#t-cpu-proc').textContent = num(cpu.process_pct, 1) + ' %';
    const ramPct = ram.total ? (100 * ram.used) / ram.total : 0;
    $('#t-ram').textContent = bytes(ram.used) + ' / ' + bytes(ram.total);
    $('#m-ram').value = ramPct;
    $('#m-ram').setAttribute('aria-label', 'RAM in use: ' + num(ramPct, 0) + ' %');
    $('#t-rss').textContent = bytes(ram.process_rss);
    const gpus = r.gpus || [];
    $('#no-gpu').hidden = gpus.length > 0;
    $('#gpus').replaceChildren(...gpus.map((g) => {
      const pct = g.vram_total ? (100 * g.vram_used) / g.vram_total : 0;
      return h('div', { class: 'tile gpu' },
        h('span', { class: 'k' }, 'GPU ' + g.index + ': ' + (g.name || '')),
        h('span', { class: 'v' }, 'VRAM ' + bytes(g.vram_used) + ' / ' + bytes(g.vram_total)),
        h('meter', { min: 0, max: 100, value: pct.toFixed(1), 'aria-label': 'GPU ' + g.index + ' VRAM in use: ' + num(pct, 0) + ' %' }),
        h('span', {}, 'ours ' + bytes(g.vram_ours) + ' · util ' + (g.util_pct ?? '–') + ' % · ' +
          (g.temp_c ?? '–') + ' °C · ' + (g.power_w !== null && g.power_w !== undefined ? num(g.power_w, 0) : '–') + ' W'));
    }));
    // active and queued jobs, between /api/ps refreshes
    for (const m of r.models || []) {
      const row = [...document.querySelectorAll('#models-table tbody tr')].find((tr) => tr.dataset.model === m.name);
      if (row) {
        row.querySelector('[data-field=active]').textContent = num(m.active_jobs || 0, 0);
        row.querySelector('[data-field=queued]').textContent = num(m.queued_jobs || 0, 0);
      }
    }
    const models = r.models || [];
    $('#t-active').textContent = num(models.reduce((a, m) => a + (m.active_jobs || 0), 0), 0);
    $('#t-queued').textContent = num(models.reduce((a, m) => a + (m.queued_jobs || 0), 0), 0);
    renderAlerts(r.alerts);
  }

  function renderAlerts(alerts) {
    if (!alerts) return;
    const list = $('#alerts');
    const items = (alerts.active || []).map((a) => {
      const key = a.metric + (a.gpu !== undefined ? ':' + a.gpu : '');
      return h('li', { 'data-key': key },
        h('span', { class: 'kind bad' }, a.metric + (a.gpu !== undefined ? ' (GPU ' + a.gpu + ')' : '')),
        num(a.value, 1) + ' ≥ ' + num(a.threshold, 1) + ' ', h('span', { class: 'when' }, 'since ' + clock(a.since)));
    });
    // only touch the live region when the set of alerts changes
    if (!items.length) items.push(h('li', { class: 'muted', 'data-key': 'none' }, 'No active alerts.'));
    const keys = items.map((li) => li.dataset.key + li.textContent).join('|');
    const oldKeys = [...list.children].map((li) => li.dataset.key + li.textContent).join('|');
    if (keys !== oldKeys) list.replaceChildren(...items);
    const t = alerts.thresholds || {};
    $('#thresholds').textContent = 'Thresholds: RAM ' + (t.ram_pct || 'off') + ' %, VRAM ' + (t.vram_pct || 'off') +
      ' %, GPU temperature ' + (t.temp_c || 'off') + ' °C.';
  }

  async function refreshHistory() {
    const data = await api('GET', '/api/resources/history?period=24h&step=5m');
    state.history = (data && data.points) || [];
    drawCharts();
  }

  // ---- charts (canvas, two series on their own scales) ----

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // series: [{points: [[t, v]...], color, unit, label}], left axis for the
  // first, right for the second.
  function drawChart(canvas, series, t0, t1, emptyText) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, hgt = canvas.clientHeight;
    if (!w || !hgt) return;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(hgt * dpr);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    const fg = cssVar('--muted'), grid = cssVar('--grid');
    ctx.font = '11px system-ui, sans-serif';
    const padL = 50, padR = 58, padT = 10, padB = 20;
    const pw = w - padL - padR, ph = hgt - padT - padB;
    const any = series.some((s) => s.points.length);
    ctx.strokeStyle = grid;
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = padT + (ph * i) / 4 + 0.5;
      ctx.beginPath(); ctx.moveTo(padL, y); ctx.lineTo(padL + pw, y); ctx.stroke();
    }
    ctx.fillStyle = fg;
    if (!any) {
      ctx.textAlign = 'center';
      ctx.fillText(emptyText, padL + pw / 2, padT + ph / 2);
      return;
    }
    // time labels
    ctx.textAlign = 'left';
    ctx.fillText(new Date(t0).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false }), padL, hgt - 5);
    ctx.textAlign = 'right';
    ctx.fillText(new Date(t1).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false }), padL + pw, hgt - 5);
    const span = Math.max(1, t1 - t0);
    series.forEach((s, idx) => {
      let max = s.max || 0;
      for (const [, v] of s.points) if (v > max) max = v;
      if (!max) max = 1;
      ctx.fillStyle = s.color;
      ctx.textAlign = idx === 0 ? 'right' : 'left';
      const x = idx === 0 ? padL - 4 : padL + pw + 4;
      ctx.fillText(compact(max) + s.unit, x, padT + 9);
      ctx.fillText('0', x, padT + ph);
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      s.points.forEach(([t, v], i) => {
        const px = padL + ((t - t0) / span) * pw, py = padT + ph - (v / max) * ph;
        if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      });
      ctx.stroke();
      if (s.points.length < 40) {
        for (const [t, v] of s.points) {
          const px = padL + ((t - t0) / span) * pw, py = padT + ph - (v / max) * ph;
          ctx.beginPath(); ctx.arc(px, py, 2.5, 0, 2 * Math.PI); ctx.fill();
        }
      }
    });
  }
  function compact(v) {
    if (v >= 1e6) return num(v / 1e6, 1) + 'M';
    if (v >= 1e4) return num(v / 1e3, 0) + 'k';
    if (v >= 100) return num(v, 0);
    return num(v, 2);
  }

  function drawCharts() {
    const gens = state.generations.slice().reverse().map((g) => [new Date(g.time).getTime(), g]);
    const now = Date.now();
    const tps = gens.filter(([, g]) => g.eval_tokens_per_s > 0).map(([t, g]) => [t, g.eval_tokens_per_s]);
    const ttft = gens.filter(([, g]) => g.ttft_ms >= 0).map(([t, g]) => [t, g.ttft_ms]);
    const t0 = gens.length ? Math.min(gens[0][0], now - 60000) : now - 3600000;
    const genCanvas = $('#chart-gen');
    drawChart(genCanvas, [
      { points: tps, color: cssVar('--s1'), unit: '' },
      { points: ttft, color: cssVar('--s2'), unit: ' ms' },
    ], t0, now, 'No generations in the last hour');
    const lastTps = tps.length ? tps[tps.length - 1][1] : null;
    genCanvas.setAttribute('aria-label', tps.length
      ? 'Tokens per second of ' + tps.length + ' generations in the last hour: last ' + num(lastTps, 1) + ', best ' +
        num(Math.max(...tps.map((p) => p[1])), 1) + '. Median TTFT ' + ms(median(ttft.map((p) => p[1]))) + '.'
      : 'No generations in the last hour');

    const pts = state.history.map((p) => [new Date(p.time).getTime(), p]);
    const cpu = pts.filter(([, p]) => p.cpu && p.cpu.system_pct !== null).map(([t, p]) => [t, p.cpu.system_pct]);
    const ram = pts.filter(([, p]) => p.ram && p.ram.total).map(([t, p]) => [t, (100 * p.ram.used) / p.ram.total]);
    const resCanvas = $('#chart-res');
    drawChart(resCanvas, [
      { points: cpu, color: cssVar('--s1'), unit: ' %', max: 100 },
      { points: ram, color: cssVar('--s2'), unit: ' %', max: 100 },
    ], now - 24 * 3600000, now, 'No resource history yet (points every 5 minutes)');
    resCanvas.setAttribute('aria-label', cpu.length
      ? 'CPU and RAM over the last 24 hours, ' + cpu.length + ' points: CPU now ' + num(cpu[cpu.length - 1][1], 0) +
        ' %, RAM now ' + num(ram.length ? ram[ram.length - 1][1] : null, 0) + ' %.'
      : 'No resource history yet');
  }
  function median(a) {
    if (!a.length) return null;
    const s = a.slice().sort((x, y) => x - y);
    return s[Math.floor(s.length / 2)];
  }
  if (window.ResizeObserver) new ResizeObserver(() => drawCharts()).observe($('.charts'));

  // ---- sessions and snapshots ----

  function sessionRow(s) {
    const id = s.id;
    const truncId = 'trunc-' + id, snapId = 'snap-' + id;
    const truncInput = h('input', { id: truncId, type: 'number', min: 0, step: 1, inputmode: 'numeric',
      value: Math.max(0, Math.floor((s.tokens || 0) / 2)) });
    const snapInput = h('input', { id: snapId, class: 'name', placeholder: 'optional name', autocomplete: 'off' });
    const done = async () => { await Promise.all([refreshSessions(), refreshSnapshots()]); };
    return h('tr', { 'data-session': id },
      h('th', { scope: 'row' }, id, s.busy ? h('span', { class: 'status-busy' }, ' · busy') : null),
      h('td', {}, s.model),
      h('td', {}, s.kind || '–'),
      h('td', { class: 'num' }, num(s.tokens, 0) + (s.max_tokens ? ' / ' + num(s.max_tokens, 0) : '')),
      h('td', { class: 'num' }, bytes(s.kv_bytes)),
      h('td', { class: 'num' }, num(s.messages, 0)),
      h('td', {}, ago(s.last_used_at)),
      h('td', {}, h('div', { class: 'cell-actions' },
        h('button', { type: 'button', class: 'secondary', 'aria-label': 'Clear session ' + id,
          onclick: (ev) => act(ev.currentTarget, 'Clear ' + id, async () => {
            await api('POST', '/api/sessions/' + encodeURIComponent(id) + '/clear', {}); await done();
          }) }, 'Clear'),
        h('label', { for: truncId, class: 'sr-only' }, 'Tokens to keep in session ' + id),
        truncInput,
        h('button', { type: 'button', class: 'secondary', 'aria-label': 'Truncate session ' + id,
          onclick: (ev) => act(ev.currentTarget, 'Truncate ' + id, async () => {
            const n = Number(truncInput.value);
            if (!Number.isInteger(n) || n < 0) throw new ApiError('the number of tokens must be a whole number, 0 or more');
            await api('POST', '/api/sessions/' + encodeURIComponent(id) + '/truncate', { tokens: n }); await done();
          }) }, 'Truncate'),
        h('label', { for: snapId, class: 'sr-only' }, 'Snapshot name for session ' + id),
        snapInput,
        h('button', { type: 'button', 'aria-label': 'Save a snapshot of session ' + id,
          onclick: (ev) => act(ev.currentTarget, 'Snapshot ' + id, async () => {
            const name = snapInput.value.trim();
            await api('POST', '/api/sessions/' + encodeURIComponent(id) + '/snapshot', name ? { name } : {});
            snapInput.value = '';
            await done();
          }) }, 'Save snapshot'))));
  }

  async function refreshSessions() {
    const data = await api('GET', '/api/sessions');
    state.sessions = (data && data.sessions) || [];
    const tbody = $('#sessions-table tbody');
    // do not re-render under someone typing into a row
    if (tbody.contains(document.activeElement) && document.activeElement.tagName === 'INPUT') return;
    tbody.replaceChildren(...state.sessions.map(sessionRow));
    $('#sessions-empty').hidden = state.sessions.length > 0;
    $('#sessions-table').hidden = state.sessions.length === 0;
  }

  async function refreshSnapshots() {
    const data = await api('GET', '/api/sessions/snapshots');
    state.snapshots = (data && data.snapshots) || [];
    $('#snapshots-table tbody').replaceChildren(...state.snapshots.map((s) => h('tr', {},
      h('th', { scope: 'row' }, s.name),
      h('td', {}, s.session),
      h('td', {}, s.model),
      h('td', { class: 'num' }, num(s.tokens, 0)),
      h('td', { class: 'num' }, bytes(s.file_bytes)),
      h('td', {}, ago(s.created_at)),
      h('td', {}, h('button', { type: 'button', class: 'secondary', 'aria-label': 'Restore snapshot ' + s.name,
        onclick: (ev) => act(ev.currentTarget, 'Restore ' + s.name, async () => {
          const body = $('#restore-replace').checked ? { replace: true } : {};
          await api('POST', '/api/sessions/snapshots/' + encodeURIComponent(s.name) + '/restore', body);
          await Promise.all([refreshSessions(), refreshSnapshots()]);
        }) }, 'Restore')))));
    $('#snapshots-empty').hidden = state.snapshots.length > 0;
    $('#snapshots-table').hidden = state.snapshots.length === 0;
  }

  // ---- mode and profile ----

  async function refreshMode() {
    const m = await api('GET', '/mode');
    state.mode = m;
    const sel = $('#mode-select');
    if (document.activeElement !== sel) sel.value = m.mode;
    renderProfile();
  }
  async function refreshProfile() {
    state.profile = await api('GET', '/api/profile');
    renderProfile();
  }
  function renderProfile() {
    const m = state.mode, p = state.profile;
    const rows = [];
    if (m) rows.push(['Mode', m.mode + ' since ' + clock(m.since) + (m.changed_by ? ' (by ' + m.changed_by + ')' : '')]);
    if (p) {
      rows.push(['Profile', p.name === null || p.name === undefined ? 'none' : p.name]);
      if (p.description) rows.push(['Description', p.description]);
      if (p.selected_by) rows.push(['Selected by', p.selected_by]);
      if (p.runtime) {
        rows.push(['Runtime', Object.entries(p.runtime).map(([k, v]) => k + ' ' + v).join(', ')]);
      }
      if (p.note) rows.push(['Note', p.note]);
      if (p.available) rows.push(['Available profiles', p.available.join(', ')]);
    }
    $('#profile').replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  }
  $('#mode-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const mode = $('#mode-select').value;
    act(ev.currentTarget.querySelector('button'), 'Set mode ' + mode, async () => {
      state.mode = await api('PUT', '/mode', { mode });
      renderProfile();
    });
  });

  // ---- events (Server-Sent Events) ----

  const eventsEl = $('#events');
  const seen = new Set();
  function eventClass(kind) {
    if (/failed|fired|dropped/.test(kind)) return 'kind bad';
    if (/completed|cleared|restored/.test(kind)) return 'kind good';
    if (/shifted|truncated/.test(kind)) return 'kind warn';
    return 'kind';
  }
  function eventSummary(e) {
    const d = e.detail || {};
    if (e.kind === 'generation_completed') {
      return (d.eval_tokens ?? '?') + ' tokens, ' + num(d.tokens_per_s, 1) + ' tok/s, TTFT ' + ms(d.ttft_ms);
    }
    if (e.kind === 'alert_fired' || e.kind === 'alert_cleared') {
      return d.metric + (d.gpu !== undefined ? ' GPU ' + d.gpu : '') + ' ' + num(d.value, 1) + ' / ' + num(d.threshold, 1);
    }
    if (e.kind === 'dropped') return (d.count ?? e.count ?? '') + ' events lost';
    if (d.error) return d.error;
    if (d.session) return 'session ' + d.session + (d.name ? ', ' + d.name : '');
    if (d.name) return d.name;
    if (d.mode) return d.mode;
    return '';
  }
  function addEvent(e) {
    if (e.id !== undefined) {
      if (seen.has(e.id)) return;
      seen.add(e.id);
    }
    const li = h('li', { 'data-kind': e.kind },
      h('time', { datetime: e.time || '' }, clock(e.time || new Date().toISOString())),
      h('span', { class: eventClass(e.kind) }, e.kind),
      e.model ? h('span', { class: 'model' }, e.model + ' ') : null,
      h('span', { class: 'muted' }, eventSummary(e)));
    eventsEl.prepend(li);
    while (eventsEl.children.length > MAX_EVENTS) eventsEl.lastElementChild.remove();
  }

  // refreshes a kind of event calls for, at most once per 300 ms each
  const pending = new Map();
  function soon(name, fn) {
    if (pending.has(name)) return;
    pending.set(name, setTimeout(() => { pending.delete(name); run(name, fn); }, 300));
  }
  function onEvent(e) {
    addEvent(e);
    const k = e.kind;
    if (/^load_|^unloaded|^generation_/.test(k)) soon('models', refreshModels);
    if (k === 'generation_completed' || k === 'generation_failed') soon('gens', refreshGenerations);
    if (/^session_|^snapshot_|^context_shifted|^generation_completed/.test(k)) {
      soon('sessions', refreshSessions);
      soon('snapshots', refreshSnapshots);
    }
    if (/^alert_/.test(k)) soon('resources', refreshResources);
    if (k === 'mode_changed') soon('mode', refreshMode);
    if (k === 'load_completed' || k === 'unloaded') soon('tags', refreshTags);
  }

  function connectEvents() {
    const pill = $('#events-state');
    if (!window.EventSource) { pill.textContent = 'unsupported'; return; }
    const es = new EventSource('/api/events?replay=30');
    es.addEventListener('open', () => { pill.textContent = 'live'; pill.className = 'pill live'; });
    es.addEventListener('error', () => {
      // EventSource reconnects by itself (the server says retry: 2000)
      pill.textContent = es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting';
      pill.className = 'pill down';
    });
    for (const kind of EVENT_KINDS) {
      es.addEventListener(kind, (m) => {
        let e;
        try { e = JSON.parse(m.data); } catch (err) { return; }
        if (!e.kind) e.kind = kind;
        onEvent(e);
      });
    }
    window.addEventListener('pagehide', () => es.close());
  }

  // ---- polling ----

  const failing = new Set();
  async function run(name, fn) {
    try {
      await fn();
      if (failing.delete(name) && failing.size === 0) $('#server-status').textContent = 'neurostack is running';
    } catch (e) {
      failing.add(name);
      if (/cannot reach/.test(e.message)) $('#server-status').textContent = 'the server does not answer';
      else showError('Refreshing ' + name, e.message);
    }
  }
  function every(name, fn, ms_) {
    run(name, fn);
    setInterval(() => { if (!document.hidden) run(name, fn); }, ms_);
  }

  applyTheme(storedTheme());
  run('version', async () => {
    const v = await api('GET', '/api/version');
    $('#version').textContent = v && v.version ? '· nstack ' + v.version : '';
  });
  every('models', refreshModels, 2000);
  every('resources', refreshResources, 1500);
  every('generations', refreshGenerations, 5000);
  every('history', refreshHistory, 60000);
  every('sessions', refreshSessions, 10000);
  every('snapshots', refreshSnapshots, 15000);
  every('mode', refreshMode, 10000);
  every('profile', refreshProfile, 30000);
  every('tags', refreshTags, 30000);
  connectEvents();
})();
