// The older system's front end, without a build step: a guest id made once
// and kept in localStorage, conversations through the HTTP gateway, and a
// sign-up that carries the guest id so its conversations are kept.
//
// Everything from the server reaches the page through textContent, never
// innerHTML: titles and messages are whatever people typed.
"use strict";

const store = window.localStorage;
// The open conversation survives a reload of this tab, not a new tab.
const tab = window.sessionStorage;
const PAGE = 20; // conversations per page of the list

function newGuest() {
  store.setItem("anonymousUserId", crypto.randomUUID());
  store.setItem("anonymousCreatedAt", new Date().toISOString());
}
if (!store.getItem("anonymousUserId")) newGuest();
let guestId = store.getItem("anonymousUserId");

let current = tab.getItem("currentSessionId");
let shown = [];        // the conversations the list shows, newest activity first
let more = false;      // whether the server has more after the last one shown
let sending = false;
// Answers can arrive out of order (a slow first load after a quick click):
// each load or open counts, and only the latest may touch the page.
let loads = 0;
let opens = 0;

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, code, message, hint) {
    super(message + (hint ? " — " + hint : ""));
    this.status = status;
    this.code = code;
  }
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const token = store.getItem("token");
  if (token) h["Authorization"] = "Bearer " + token;
  else h["X-Anonymous-User-Id"] = guestId;
  return h;
}

async function failure(response) {
  let envelope = null;
  try { envelope = await response.json(); } catch (e) { /* not JSON: a proxy's page */ }
  const e = (envelope && envelope.error) || {};
  return new ApiError(response.status, e.code, e.message || response.statusText || "The request failed", e.hint);
}

async function send(method, path, body) {
  try {
    return await fetch(path, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  } catch (e) {
    throw new ApiError(0, null, "The server cannot be reached", "Check your connection and try again.");
  }
}

// An expired access token is exchanged once for a new one, then the call is
// made again; a refused refresh signs the person out of this page.
async function fetchAs(method, path, body) {
  let response = await send(method, path, body);
  if (response.status === 401 && store.getItem("refreshToken")) {
    const refreshed = await fetch("/api/auth/refresh", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refreshToken: store.getItem("refreshToken") }),
    }).catch(() => null);
    const envelope = refreshed && refreshed.ok ? await refreshed.json().catch(() => null) : null;
    if (envelope && envelope.success) {
      store.setItem("token", envelope.data.token);
      store.setItem("refreshToken", envelope.data.refreshToken);
      response = await send(method, path, body);
    } else {
      forgetAccount();
      showIdentity();
      throw new ApiError(401, null, "Your sign-in has expired", "Log in again.");
    }
  }
  return response;
}

async function call(method, path, body) {
  const response = await fetchAs(method, path, body);
  if (!response.ok) throw await failure(response);
  const envelope = await response.json();
  if (!envelope.success) throw await failure(response);
  return envelope;
}

function notice(text, kind) {
  const n = $("notice");
  n.textContent = text;
  n.className = kind || "";
}

function complain(e) {
  notice(e.message, "error");
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function showIdentity() {
  const email = store.getItem("email");
  $("who").textContent = email ? "Signed in as " + email : "Guest " + guestId.slice(0, 8) + "…";
  $("signed-out").hidden = Boolean(email);
  $("signed-in").hidden = !email;
  if (!email) $("signed-in").open = false;
}

function setCurrent(sessionId) {
  current = sessionId;
  if (sessionId) tab.setItem("currentSessionId", sessionId);
  else tab.removeItem("currentSessionId");
  document.querySelectorAll("#conversations button.open").forEach((b) =>
    b.setAttribute("aria-current", String(b.dataset.sessionId === current)));
}

function startFresh() {
  setCurrent(null);
  opens++;
  $("messages").replaceChildren();
  $("empty").hidden = false;
}

// ---- the conversation list -------------------------------------------------

function titleOf(c) {
  return c.title || "Untitled conversation";
}

function conversationItem(c) {
  const item = document.createElement("li");
  item.dataset.sessionId = c.sessionId;

  const open = document.createElement("button");
  open.type = "button";
  open.className = "open";
  open.dataset.sessionId = c.sessionId;
  open.setAttribute("aria-current", String(c.sessionId === current));
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = titleOf(c);
  const preview = document.createElement("span");
  preview.className = "preview";
  preview.textContent = c.lastMessage || "No messages yet";
  open.append(title, preview);
  open.addEventListener("click", () => openConversation(c.sessionId).catch(complain));

  const rename = document.createElement("button");
  rename.type = "button";
  rename.className = "rename secondary";
  rename.textContent = "Rename";
  rename.setAttribute("aria-label", "Rename " + titleOf(c));
  rename.addEventListener("click", () => renameForm(item, c));

  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "delete secondary";
  remove.textContent = "Delete";
  remove.setAttribute("aria-label", "Delete " + titleOf(c));
  remove.addEventListener("click", () => deleteConversation(c).catch(complain));

  const actions = document.createElement("div");
  actions.className = "actions";
  actions.append(rename, remove);
  item.append(open, actions);
  return item;
}

function renderList() {
  $("conversations").replaceChildren(...shown.map(conversationItem));
  $("more-conversations").hidden = !more;
}

function listPath(limit, after) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (after) {
    q.set("before", after.updatedAt);
    q.set("beforeId", after.sessionId);
  }
  return "/api/chat/conversations?" + q;
}

// The first pages again (as many as are shown), asking for one row more than
// it shows to know whether a "more" control is needed.
async function loadConversations() {
  const mine = ++loads;
  const want = Math.min(Math.max(PAGE, shown.length), 199);
  const { data } = await call("GET", listPath(want + 1));
  if (mine !== loads) return;
  more = data.length > want;
  shown = data.slice(0, want);
  renderList();
}

$("more-conversations").addEventListener("click", async () => {
  const mine = ++loads;
  try {
    const { data } = await call("GET", listPath(PAGE + 1, shown[shown.length - 1]));
    if (mine !== loads) return;
    more = data.length > PAGE;
    shown = shown.concat(data.slice(0, PAGE));
    renderList();
    const next = $("conversations").children[shown.length - Math.min(PAGE, data.length)];
    if (next) next.querySelector("button.open").focus();
  } catch (e) { complain(e); }
});

function renameForm(item, c) {
  const form = document.createElement("form");
  form.className = "rename-form";
  const label = document.createElement("label");
  label.textContent = "Title";
  const input = document.createElement("input");
  input.name = "title";
  input.maxLength = 200;
  input.value = c.title || "";
  input.placeholder = "Leave empty for no title";
  label.append(input);
  const save = document.createElement("button");
  save.type = "submit";
  save.textContent = "Save";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "secondary";
  cancel.textContent = "Cancel";
  const back = () => { renderList(); focusConversation(c.sessionId); };
  cancel.addEventListener("click", back);
  form.addEventListener("keydown", (event) => { if (event.key === "Escape") back(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await call("PATCH", `/api/chat/session/${encodeURIComponent(c.sessionId)}`, { title: input.value });
      c.title = input.value.trim() || null;
      await loadConversations();
      focusConversation(c.sessionId);
      await refreshClaimPreview();
    } catch (e) { complain(e); }
  });
  form.append(label, save, cancel);
  item.replaceChildren(form);
  input.focus();
  input.select();
}

function focusConversation(sessionId) {
  const button = document.querySelector(`#conversations button.open[data-session-id="${CSS.escape(sessionId)}"]`);
  if (button) button.focus();
}

async function deleteConversation(c) {
  if (!window.confirm(`Delete “${titleOf(c)}” and all its messages? This cannot be undone.`)) return;
  await call("DELETE", `/api/chat/session/${encodeURIComponent(c.sessionId)}`);
  shown = shown.filter((s) => s.sessionId !== c.sessionId);
  if (current === c.sessionId) startFresh();
  notice(`Deleted “${titleOf(c)}”.`, "ok");
  await Promise.all([loadConversations(), refreshClaimPreview()]);
  $("new-conversation").focus();
}

// ---- one conversation ----------------------------------------------------

async function openConversation(sessionId) {
  setCurrent(sessionId);
  const mine = ++opens;
  let data;
  try {
    ({ data } = await call("GET", `/api/chat/session/${encodeURIComponent(sessionId)}/messages`));
  } catch (e) {
    // Gone (deleted, or another person's after a sign-out): start afresh.
    if (mine === opens && (e.status === 404 || e.status === 403)) startFresh();
    throw e;
  }
  if (mine !== opens) return;
  $("messages").replaceChildren(...data.map((m) => {
    const li = document.createElement("li");
    li.className = m.role;
    li.textContent = m.content;
    return li;
  }));
  $("empty").hidden = data.length > 0;
  setCurrent(sessionId);
  $("message").focus();
}

// A new conversation starts on the page; the server gets it with its first
// message, so nothing typed is lost and no empty conversation is left behind.
$("new-conversation").addEventListener("click", () => {
  startFresh();
  $("message").focus();
});

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (sending) return;
  const input = $("message");
  const text = input.value;
  const button = event.target.querySelector("button[type=submit]");
  sending = true;
  button.disabled = true;
  try {
    if (!current) {
      const { data } = await call("POST", "/api/chat/session", {});
      setCurrent(data.sessionId);
    }
    await call("POST", `/api/chat/session/${encodeURIComponent(current)}/messages`, { role: "user", content: text });
    if (input.value === text) input.value = "";
    notice("");
    await openConversation(current);
    await Promise.all([loadConversations(), refreshClaimPreview(), refreshAllowance()]);
  } catch (e) {
    complain(e); // the text stays in the box, to send again
    refreshAllowance();
  } finally {
    sending = false;
    button.disabled = false;
  }
});

// ---- what a guest would keep, and what is left today -----------------------

async function refreshClaimPreview() {
  const p = $("claim-preview");
  if (store.getItem("token")) { p.hidden = true; return; }
  try {
    const { data } = await call("GET", "/api/chat/claim-preview");
    const n = data.length;
    p.textContent = n === 1 ? "Sign up to keep this conversation." : `Sign up to keep these ${n} conversations.`;
    p.hidden = n === 0;
  } catch (e) {
    p.hidden = true;
  }
}

async function refreshAllowance() {
  const p = $("allowance");
  try {
    const { data } = await call("GET", "/api/chat/allowance");
    if (data.allowed === null || data.allowed === undefined) { p.hidden = true; return; }
    const left = Math.max(0, data.allowed - data.used);
    p.textContent = plural(left, "message", "messages") + " left today";
    p.hidden = false;
  } catch (e) {
    p.hidden = true; // a gateway without allowances
  }
}

// ---- the account -----------------------------------------------------------

function signedIn(data) {
  store.setItem("token", data.token);
  store.setItem("refreshToken", data.refreshToken);
  store.setItem("email", data.user.email);
  store.setItem("userId", data.user.id);
  showIdentity();
}

function forgetAccount() {
  ["token", "refreshToken", "email", "userId"].forEach((k) => store.removeItem(k));
}

async function reloadAll() {
  await Promise.all([loadConversations(), refreshClaimPreview(), refreshAllowance()]);
}

$("register").addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = new FormData(event.target);
  try {
    const { data } = await call("POST", "/api/auth/register", {
      name: f.get("name"), email: f.get("email"), password: f.get("password"), anonymousUserId: guestId });
    signedIn(data);
    event.target.reset();
    const n = data.migratedSessions;
    notice(`Welcome! ${n} conversation${n === 1 ? " was" : "s were"} saved to your account.`, "ok");
    await reloadAll(); // the open conversation is the account's now, and stays open
  } catch (e) { complain(e); }
});

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = new FormData(event.target);
  try {
    const { data } = await call("POST", "/api/auth/login", {
      email: f.get("email"), password: f.get("password"), anonymousUserId: guestId });
    signedIn(data);
    event.target.reset();
    const n = data.migratedSessions;
    notice(n ? `Welcome back! ${n} guest conversation${n === 1 ? " was" : "s were"} added to your account.`
      : "Welcome back!", "ok");
    await reloadAll();
  } catch (e) { complain(e); }
});

async function leave(text) {
  forgetAccount();
  shown = [];
  startFresh();
  showIdentity();
  notice(text, "ok");
  await reloadAll();
}

$("logout").addEventListener("click", async () => {
  try { await call("POST", "/api/auth/logout"); } catch (e) { /* the token may have expired already */ }
  await leave("Logged out.").catch(complain);
});

$("download-data").addEventListener("click", async () => {
  try {
    const response = await fetchAs("GET", "/api/account/export");
    if (!response.ok) throw await failure(response);
    const blob = await response.blob();
    const disposition = response.headers.get("Content-Disposition") || "";
    const named = /filename="?([^";]+)"?/.exec(disposition);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = named ? named[1] : "chatmem-export.json";
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    notice("Your data is downloading as " + link.download + ".", "ok");
  } catch (e) { complain(e); }
});

$("delete-account").addEventListener("submit", async (event) => {
  event.preventDefault();
  const email = store.getItem("email");
  if (!window.confirm(`Delete the account ${email} and every conversation in it? This cannot be undone.`)) return;
  const f = new FormData(event.target);
  try {
    const { data } = await call("DELETE", "/api/account", { password: f.get("password") });
    event.target.reset();
    // A new guest: nothing on this browser points at the erased account.
    newGuest();
    guestId = store.getItem("anonymousUserId");
    await leave(`Your account was deleted, with ${plural(data.erasedSessions, "conversation", "conversations")}.`);
  } catch (e) { complain(e); }
});

showIdentity();
reloadAll().catch(complain);
if (current) openConversation(current).catch(complain);
