/* app.js - the live parts of fourtier's landing page. Vanilla JS, no libraries.
 *
 * - "Who served you?": GET /api/whoami, showing the servers named in the JSON body
 *   (lb, web, app, request_id) next to the response headers the tiers add
 *   (X-LB, X-Web, X-App, X-Request-ID).
 * - Recent calls: a log of the page's last requests. After each whoami call the page also
 *   sends HEAD /static/css/site.css, which nginx answers alone, so it has no X-App header.
 * - Guestbook: GET /api/messages?limit=20 to list, POST /api/messages (JSON, with an
 *   Idempotency-Key header) to add.
 *
 * Everything that came from the server or a user goes onto the page through textContent,
 * never innerHTML, so it can never be interpreted as HTML.
 */
(function () {
  'use strict';

  var LOG_SIZE = 10;
  var STATIC_PROBE = '/static/css/site.css';
  var MESSAGES_URL = '/api/messages';
  var AUTHOR_MAX = 80;   // the same limits as the API and the database
  var TEXT_MAX = 1000;
  var DASH = '\u2014';

  var callLog = [];      // newest first, at most LOG_SIZE entries

  function byId(id) { return document.getElementById(id); }

  function setStatus(el, message, isError) {
    el.textContent = message;
    el.classList.toggle('error', Boolean(isError));
  }

  function pad2(n) { return String(n).padStart(2, '0'); }

  function clockTime(d) {
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }

  // Length in characters (code points), the way the API counts them.
  function charLength(s) { return Array.from(s).length; }

  function isApiPath(path) { return path.indexOf('/api/') === 0; }

  // ---- Traced requests and the call log ------------------------------------------------

  // fetch() that records the request in the call log. cache: 'no-store' makes every call go
  // over the network, so the headers shown are always fresh from the servers.
  async function tracedFetch(method, path, init) {
    var options = Object.assign({ method: method, cache: 'no-store' }, init || {});
    var entry = {
      time: new Date(), method: method, path: path,
      status: null, lb: null, web: null, app: null, requestId: null
    };
    try {
      var res = await fetch(path, options);
      entry.status = res.status;
      entry.lb = res.headers.get('X-LB');
      entry.web = res.headers.get('X-Web');
      entry.app = res.headers.get('X-App');
      entry.requestId = res.headers.get('X-Request-ID');
      return res;
    } finally {
      addToLog(entry);   // also when fetch failed (status stays null: network error)
    }
  }

  function addToLog(entry) {
    callLog.unshift(entry);
    if (callLog.length > LOG_SIZE) callLog.length = LOG_SIZE;
    renderLog();
  }

  function cell(row, text, className) {
    var td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function headerCell(row, value) {
    if (value) cell(row, value);
    else cell(row, DASH, 'none');
  }

  function renderLog() {
    var body = byId('log-body');
    body.replaceChildren();
    callLog.forEach(function (e) {
      var api = isApiPath(e.path);
      var tr = document.createElement('tr');
      tr.className = api ? 'dynamic' : 'static';
      cell(tr, clockTime(e.time));
      cell(tr, e.method + ' ' + e.path);
      if (e.status === null) cell(tr, 'network error', 'bad');
      else cell(tr, String(e.status), e.status >= 400 ? 'bad' : '');
      headerCell(tr, e.lb);
      headerCell(tr, e.web);
      if (e.app) cell(tr, e.app);
      // A static file never reaches an app server. An API call without X-App was answered
      // before reaching one (e.g. a 502 from nginx when no app server is up).
      else cell(tr, api ? DASH + ' (no app answered)' : DASH + ' (static, no app)', 'none');
      headerCell(tr, e.requestId);
      body.appendChild(tr);
    });
  }

  // Parse a JSON body; null if there is none or it is not JSON (e.g. an HTML error page
  // from HAProxy or nginx).
  async function readJson(res) {
    try { return await res.json(); } catch (err) { return null; }
  }

  // The API's errors look like {"error": "..."}; fall back to the HTTP status.
  function errorText(res, body) {
    if (body && typeof body.error === 'string' && body.error) return body.error;
    return ('HTTP ' + res.status + ' ' + (res.statusText || '')).trim();
  }

  // ---- Who served you? -------------------------------------------------------------------

  function showWho(body, headers) {
    document.querySelectorAll('[data-json]').forEach(function (el) {
      var v = body ? body[el.dataset.json] : null;
      el.textContent = (v === null || v === undefined || v === '') ? DASH : String(v);
    });
    document.querySelectorAll('[data-header]').forEach(function (el) {
      var v = headers ? headers.get(el.dataset.header) : null;
      el.textContent = v || DASH;
    });
  }

  async function callWhoami() {
    var button = byId('whoami-again');
    var status = byId('whoami-status');
    button.disabled = true;
    setStatus(status, 'Calling /api/whoami\u2026');
    try {
      var res;
      try {
        res = await tracedFetch('GET', '/api/whoami', { headers: { 'Accept': 'application/json' } });
      } catch (err) {
        showWho(null, null);
        setStatus(status, 'Could not reach the server (network error).', true);
        return;
      }
      var body = await readJson(res);
      showWho(res.ok ? body : null, res.headers);
      if (res.ok && body) {
        setStatus(status, 'Answered at ' + clockTime(new Date()) + ' (HTTP ' + res.status + ').');
      } else {
        setStatus(status, '/api/whoami failed: ' + errorText(res, body), true);
      }
    } finally {
      // The same trip for a static file: load balancer and web server only.
      try { await tracedFetch('HEAD', STATIC_PROBE); } catch (err) { /* already in the log */ }
      button.disabled = false;
    }
  }

  // ---- Guestbook -------------------------------------------------------------------------

  // A fresh Idempotency-Key. crypto.randomUUID() exists only in secure contexts (HTTPS or
  // localhost), so over plain HTTP on a LAN address fall back to getRandomValues(), and
  // to Math.random() as a last resort.
  function newIdempotencyKey() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === 'function') return c.randomUUID();
    if (c && typeof c.getRandomValues === 'function') {
      var bytes = c.getRandomValues(new Uint8Array(16));
      return Array.from(bytes, function (b) { return b.toString(16).padStart(2, '0'); }).join('');
    }
    return Date.now().toString(36) + '-' +
      Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  }

  function renderMessages(messages) {
    var list = byId('gb-messages');
    list.replaceChildren();
    messages.forEach(function (m) {
      var li = document.createElement('li');

      var meta = document.createElement('div');
      meta.className = 'msg-meta';
      var author = document.createElement('span');
      author.className = 'msg-author';
      author.textContent = String(m.author);
      var time = document.createElement('time');
      time.className = 'msg-time';
      var d = new Date(m.created_at);
      if (isNaN(d.getTime())) {
        time.textContent = m.created_at ? String(m.created_at) : '';
      } else {
        time.dateTime = d.toISOString();
        time.textContent = d.toLocaleString();
      }
      meta.append(author, time);

      var text = document.createElement('p');
      text.className = 'msg-text';
      text.textContent = String(m.text);

      li.append(meta, text);
      list.appendChild(li);
    });
  }

  async function loadMessages() {
    var status = byId('gb-list-status');
    var button = byId('gb-refresh');
    button.disabled = true;
    setStatus(status, 'Loading\u2026');
    try {
      var res;
      try {
        res = await tracedFetch('GET', MESSAGES_URL + '?limit=20', { headers: { 'Accept': 'application/json' } });
      } catch (err) {
        setStatus(status, 'Could not load messages (network error).', true);
        return;
      }
      var body = await readJson(res);
      if (!res.ok || !body || !Array.isArray(body.messages)) {
        setStatus(status, 'Could not load messages: ' + errorText(res, body), true);
        return;
      }
      renderMessages(body.messages);   // the API returns them newest first
      setStatus(status, body.messages.length ? '' : 'No messages yet. Be the first!');
    } finally {
      button.disabled = false;
    }
  }

  function setUpGuestbook() {
    var form = byId('guestbook-form');
    var authorEl = byId('gb-author');
    var textEl = byId('gb-text');
    var countEl = byId('gb-count');
    var submit = byId('gb-submit');
    var status = byId('gb-status');

    // The key of the submission in progress. It is created once per submission and kept
    // if the outcome is unknown (network error, 5xx), so pressing "Post" again retries the
    // same submission and the server stores it at most once. Editing the form, success,
    // or a definite rejection (4xx) starts a new submission with a new key.
    var pendingKey = null;

    function updateCount() {
      countEl.textContent = charLength(textEl.value) + ' / ' + TEXT_MAX;
    }
    authorEl.addEventListener('input', function () { pendingKey = null; });
    textEl.addEventListener('input', function () { pendingKey = null; updateCount(); });
    updateCount();

    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      var author = authorEl.value.trim();
      var text = textEl.value.trim();
      if (!author || !text) {
        setStatus(status, 'Please write both your name and a message.', true);
        return;
      }
      if (charLength(author) > AUTHOR_MAX || charLength(text) > TEXT_MAX) {
        setStatus(status, 'Name is limited to ' + AUTHOR_MAX + ' characters, message to ' + TEXT_MAX + '.', true);
        return;
      }
      if (!pendingKey) pendingKey = newIdempotencyKey();

      submit.disabled = true;
      setStatus(status, 'Posting\u2026');
      try {
        var res;
        try {
          res = await tracedFetch('POST', MESSAGES_URL, {
            headers: {
              'Content-Type': 'application/json',
              'Accept': 'application/json',
              'Idempotency-Key': pendingKey
            },
            body: JSON.stringify({ author: author, text: text })
          });
        } catch (err) {
          setStatus(status, 'Network error: the message may or may not have been saved. ' +
            'Press "Post message" again to retry; it will not be stored twice.', true);
          return;
        }
        var body = await readJson(res);
        if (res.ok) {   // 201 Created, also for a replay of an earlier identical post
          pendingKey = null;
          textEl.value = '';
          updateCount();
          // The API marks a retry it had already stored with Idempotent-Replayed: true.
          setStatus(status, res.headers.get('Idempotent-Replayed') === 'true'
            ? 'Posted. (The server had already stored this one, so it was not stored twice.)'
            : 'Posted. Thank you!');
          await loadMessages();
        } else {
          if (res.status < 500) pendingKey = null;
          setStatus(status, 'Not posted: ' + errorText(res, body), true);
        }
      } finally {
        submit.disabled = false;
      }
    });

    byId('gb-refresh').addEventListener('click', loadMessages);
  }

  // ---- Start -----------------------------------------------------------------------------

  function start() {
    byId('whoami-again').addEventListener('click', callWhoami);
    setUpGuestbook();
    callWhoami();
    loadMessages();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
