// The older system's front end, without a build step: a guest id made once
// and kept in localStorage, conversations through the HTTP gateway, and a
// sign-up that carries the guest id so its conversations are kept.
"use strict";

const store = window.localStorage;
if (!store.getItem("anonymousUserId")) {
  store.setItem("anonymousUserId", crypto.randomUUID());
  store.setItem("anonymousCreatedAt", new Date().toISOString());
}
const guestId = store.getItem("anonymousUserId");
let current = null;
// Answers can arrive out of order (a slow first load after a quick click):
// each load or open counts, and only the latest may touch the page.
let loads = 0;
let opens = 0;

const $ = (id) => document.getElementById(id);

function headers() {
  const h = { "Content-Type": "application/json" };
  const token = store.getItem("token");
  if (token) h["Authorization"] = "Bearer " + token;
  else h["X-Anonymous-User-Id"] = guestId;
  return h;
}

async function call(method, path, body) {
  const response = await fetch(path, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  const envelope = await response.json();
  if (!envelope.success) {
    const e = envelope.error || {};
    throw new Error((e.message || response.statusText) + (e.hint ? " — " + e.hint : ""));
  }
  return envelope;
}

function notice(text, kind) {
  const n = $("notice");
  n.textContent = text;
  n.className = kind || "";
}

function showIdentity() {
  const email = store.getItem("email");
  $("who").textContent = email ? "Signed in as " + email : "Guest " + guestId.slice(0, 8) + "…";
  $("signed-out").hidden = Boolean(email);
  $("signed-in").hidden = !email;
}

async function loadConversations() {
  const mine = ++loads;
  const { data } = await call("GET", "/api/chat/sessions");
  if (mine !== loads) return;
  const list = $("conversations");
  list.replaceChildren();
  data.forEach((session, i) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = (session.metadata && session.metadata.title) || "Conversation " + (data.length - i);
    button.dataset.sessionId = session.sessionId;
    button.setAttribute("aria-current", String(session.sessionId === current));
    button.addEventListener("click", () => open(session.sessionId));
    item.append(button);
    list.append(item);
  });
  if (!current && data.length) await open(data[0].sessionId);
  if (!data.length) { current = null; $("messages").replaceChildren(); $("composer").hidden = true; $("empty").hidden = false; }
}

async function open(sessionId) {
  current = sessionId;
  const mine = ++opens;
  const { data } = await call("GET", `/api/chat/session/${encodeURIComponent(sessionId)}/messages`);
  if (mine !== opens) return;
  const list = $("messages");
  list.replaceChildren(...data.map((m) => {
    const li = document.createElement("li");
    li.className = m.role;
    li.textContent = m.content;
    return li;
  }));
  $("empty").hidden = true;
  $("composer").hidden = false;
  document.querySelectorAll("#conversations button").forEach((b) =>
    b.setAttribute("aria-current", String(b.dataset.sessionId === current)));
  $("message").focus();
}

$("new-conversation").addEventListener("click", async () => {
  try {
    const { data } = await call("POST", "/api/chat/session", { userId: store.getItem("userId") || guestId });
    current = data.sessionId;
    await loadConversations();
    await open(current);
  } catch (e) { notice(e.message, "error"); }
});

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("message");
  try {
    await call("POST", `/api/chat/session/${encodeURIComponent(current)}/messages`, { role: "user", content: input.value });
    input.value = "";
    await open(current);
  } catch (e) { notice(e.message, "error"); }
});

function signedIn(data) {
  store.setItem("token", data.token);
  store.setItem("refreshToken", data.refreshToken);
  store.setItem("email", data.user.email);
  store.setItem("userId", data.user.id);
  current = null;
  showIdentity();
}

$("register").addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = new FormData(event.target);
  try {
    const { data } = await call("POST", "/api/auth/register", {
      name: f.get("name"), email: f.get("email"), password: f.get("password"), anonymousUserId: guestId });
    signedIn(data);
    const n = data.migratedSessions;
    notice(`Welcome! ${n} conversation${n === 1 ? " was" : "s were"} saved to your account.`, "ok");
    await loadConversations();
  } catch (e) { notice(e.message, "error"); }
});

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = new FormData(event.target);
  try {
    const { data } = await call("POST", "/api/auth/login", {
      email: f.get("email"), password: f.get("password"), anonymousUserId: guestId });
    signedIn(data);
    const n = data.migratedSessions;
    notice(n ? `Welcome back! ${n} guest conversation${n === 1 ? " was" : "s were"} added to your account.` : "Welcome back!", "ok");
    await loadConversations();
  } catch (e) { notice(e.message, "error"); }
});

$("logout").addEventListener("click", async () => {
  try { await call("POST", "/api/auth/logout"); } catch (e) { /* the token may have expired already */ }
  ["token", "refreshToken", "email", "userId"].forEach((k) => store.removeItem(k));
  current = null;
  showIdentity();
  notice("Logged out.");
  await loadConversations();
});

showIdentity();
loadConversations().catch((e) => notice(e.message, "error"));
