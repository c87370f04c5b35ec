// The demo page: each action is one or two calls to Tessera's API, logged at the bottom.
// Plain JavaScript, no build step, no network but this server.
"use strict";

const API = "/api/auth/";
const MODE_NAMES = {
  token: "an opaque token",
  jwt: "JWT in HttpOnly cookies",
  browser: "a browser session",
};
// The credentials the browser holds in a cookie, shared by every tab (named as the kinds of
// the sessions they open).
const COOKIE_MODES = new Set(["jwt", "browser"]);

// mode: the credential this tab uses, or null; token: the opaque token (token mode only,
// kept in memory: a reload forgets it); ticket and ticketMode: a login waiting for its
// second factor.
const state = {mode: null, token: null, username: null, ticket: null, ticketMode: null};

const $ = (id) => document.getElementById(id);

function csrfToken() {
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// The demo's JWT logins are in cookie mode: the pair comes in the body as well as in the
// HttpOnly cookies, and a front end in that mode keeps neither, so the log hides them.
function forLog(data) {
  if (!data || typeof data !== "object" || Array.isArray(data)) return data;
  const shown = {...data};
  for (const field of ["access", "refresh"]) {
    if (field in shown) shown[field] = "(in an HttpOnly cookie)";
  }
  return shown;
}

function log(line) {
  $("log").textContent += line + "\n";
}

function setStatus(text) {
  $("status").textContent = text;
}

function showLoggedIn() {
  setStatus(`Logged in as ${state.username} with ${MODE_NAMES[state.mode]}.`);
}

// The server no longer accepts this tab's credential (logged out here or in another tab,
// revoked, expired): say so and forget it.
function credentialRefused(status, code) {
  state.mode = null;
  state.token = null;
  setStatus(`Not logged in: the server refused this tab's credential (${status} ${code}).`);
}

async function request(method, path, body, {withCredential = true} = {}) {
  const headers = {Accept: "application/json", "X-CSRFToken": csrfToken()};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (withCredential && state.mode === "token") headers.Authorization = `Token ${state.token}`;
  const url = path.startsWith("/") ? path : API + path;
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  log(`${method} ${url} → ${response.status} ${data === null ? "" : JSON.stringify(forLog(data))}`);
  return {status: response.status, ok: response.ok, data};
}

// A call made with this tab's credential. An expired access cookie is renewed once with the
// refresh cookie, as a cookie-mode front end does.
async function call(method, path, body) {
  const hadCredential = state.mode !== null;
  let answer = await request(method, path, body);
  if (answer.status === 401 && state.mode === "jwt") {
    const refreshed = await request("POST", "jwt/refresh/", {});
    if (refreshed.ok) answer = await request(method, path, body);
  }
  if (answer.status === 401 && hadCredential) {
    credentialRefused(answer.status, answer.data && answer.data.code);
  }
  return answer;
}

function describe(answer) {
  if (answer.ok) return `${answer.status} OK`;
  const data = answer.data || {};
  const fields = data.fields
    ? " " + Object.entries(data.fields).map(([f, errors]) => `${f}: ${errors.map((e) => e.code).join(", ")}`).join("; ")
    : "";
  return `${answer.status} ${data.code || ""}${fields}`.trim();
}

function on(id, event, action) {
  $(id).addEventListener(event, async (e) => {
    e.preventDefault();
    try {
      await action(e);
    } catch (error) {
      log(`Error: ${error.message}`);
      setStatus(`Error: ${error.message}`);
    }
  });
}

// --- Sign up and verification ---------------------------------------------------------

on("register-form", "submit", async () => {
  const answer = await request("POST", "register/", {
    username: $("reg-username").value,
    email: $("reg-email").value,
    password: $("reg-password").value,
  }, {withCredential: false});
  $("sign-up-result").textContent = answer.ok
    ? `Signed up: ${describe(answer)}. The verification e-mail is in the demo's terminal.`
    : `Sign-up refused: ${describe(answer)}.`;
});

on("verify-form", "submit", async () => {
  const answer = await request("POST", "email/verify/", {key: $("verify-key").value.trim()},
    {withCredential: false});
  $("sign-up-result").textContent = answer.ok
    ? "E-mail address verified."
    : `Verification refused: ${describe(answer)}.`;
});

// --- Logging in ------------------------------------------------------------------------

const LOGIN_PATHS = {token: "login/", jwt: "jwt/", browser: "session/login/"};

async function logOutQuietly() {
  if (state.mode === null) return;
  await request("POST", state.mode === "browser" ? "session/logout/" : "logout/");
  state.mode = null;
  state.token = null;
  setStatus("Not logged in.");
}

function loggedIn(mode, data) {
  state.mode = mode;
  state.token = mode === "token" ? data.token : null;
  state.username = data.user.username;
  state.ticket = null;
  $("mfa-form").hidden = true;
  showLoggedIn();
  $("log-in-result").textContent = "";
}

on("login-form", "submit", async () => {
  const mode = $("login-form").mode.value;
  await logOutQuietly();
  const answer = await request("POST", LOGIN_PATHS[mode], {
    username: $("username").value,
    password: $("password").value,
    device_name: $("device-name").value,
  }, {withCredential: false});
  if (answer.ok) return loggedIn(mode, answer.data);
  if (answer.data && answer.data.code === "mfa_required") {
    state.ticket = answer.data.ticket;
    state.ticketMode = mode;
    // With a passkey as second factor the answer carries the request options for its keys.
    state.ticketWebauthn = (answer.data.options || {}).webauthn || null;
    $("mfa-passkey").hidden = !answer.data.methods.includes("webauthn");
    $("mfa-form").hidden = false;
    $("mfa-code").focus();
    $("log-in-result").textContent = `Second factor needed (${answer.data.methods.join(", ")}).`;
    return;
  }
  $("log-in-result").textContent = `Login refused: ${describe(answer)}.`;
});

on("mfa-form", "submit", async () => {
  const answer = await request("POST", "mfa/authenticate/", {
    ticket: state.ticket,
    code: $("mfa-code").value.trim(),
  }, {withCredential: false});
  if (answer.ok) return loggedIn(state.ticketMode, answer.data);
  $("log-in-result").textContent = `Code refused: ${describe(answer)}.`;
});

on("mfa-passkey", "click", async () => {
  const credential = await navigator.credentials.get({
    publicKey: requestOptions(state.ticketWebauthn),
  });
  const answer = await request("POST", "mfa/authenticate/", {
    ticket: state.ticket,
    webauthn: credentialJSON(credential),
  }, {withCredential: false});
  if (answer.ok) return loggedIn(state.ticketMode, answer.data);
  $("log-in-result").textContent = `Passkey refused: ${describe(answer)}.`;
});

on("passkey-login", "click", async () => {
  const mode = $("login-form").mode.value;
  await logOutQuietly();
  const begin = await request("POST", "passkey/login/begin/", undefined, {withCredential: false});
  if (!begin.ok) {
    $("log-in-result").textContent = `Passkey login refused: ${describe(begin)}.`;
    return;
  }
  const credential = await navigator.credentials.get({publicKey: requestOptions(begin.data)});
  const answer = await request("POST", "passkey/login/complete/", {
    credential: credentialJSON(credential),
    kind: mode,
    device_name: $("device-name").value,
  }, {withCredential: false});
  if (answer.ok) return loggedIn(mode, answer.data);
  $("log-in-result").textContent = `Passkey login refused: ${describe(answer)}.`;
});

on("jwt-refresh", "click", async () => {
  const answer = await request("POST", "jwt/refresh/", {});
  $("log-in-result").textContent = answer.ok
    ? "New JWT cookies (the refresh token was rotated)."
    : `Refresh refused: ${describe(answer)}.`;
});

// --- Password reset --------------------------------------------------------------------

on("reset-form", "submit", async () => {
  const answer = await request("POST", "password/reset/", {email: $("reset-email").value},
    {withCredential: false});
  // The same answer whether or not the address has an account.
  $("reset-result").textContent = answer.ok
    ? "Asked: if the address has an account, the e-mail is in the demo's terminal."
    : `Refused: ${describe(answer)}.`;
});

on("reset-confirm-form", "submit", async () => {
  const link = new URLSearchParams(location.search);
  const answer = await request("POST", "password/reset/confirm/", {
    uid: link.get("reset_uid"),
    token: link.get("reset_token"),
    new_password: $("reset-password").value,
  }, {withCredential: false});
  $("reset-result").textContent = answer.ok
    ? "Password changed, and every session of the account ended: log in with the new one."
    : `Refused: ${describe(answer)}.`;
});

// --- "This wasn't me" ------------------------------------------------------------------

async function reportLogin(allSessions) {
  const token = new URLSearchParams(location.search).get("not_me");
  const answer = await request("POST", "sessions/not-me/", {token, all: allSessions},
    {withCredential: false});
  $("not-me-result").textContent = answer.ok
    ? (allSessions ? "Every session of the account ended." : "That session ended.")
      + " Now reset your password: whoever logged in knows it."
    : `Refused: ${describe(answer)}.`;
}

on("not-me-one", "click", () => reportLogin(false));
on("not-me-all", "click", () => reportLogin(true));

// --- The API ---------------------------------------------------------------------------

for (const button of document.querySelectorAll("[data-call]")) {
  button.addEventListener("click", async () => {
    const path = button.dataset.call;
    const cell = $("result-" + path.split("/")[2]);
    const answer = await call("GET", path);
    cell.textContent = answer.ok ? `${answer.status} ${answer.data.message}` : describe(answer);
  });
}

// --- Sessions --------------------------------------------------------------------------

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

async function listSessions() {
  const body = $("sessions").tBodies[0];
  const answer = await call("GET", "sessions/");
  body.replaceChildren();
  if (!answer.ok) {
    const row = body.insertRow();
    row.append(cell(describe(answer)));
    return;
  }
  for (const session of answer.data) {
    const row = body.insertRow();
    row.dataset.id = session.id;
    row.append(
      cell(session.kind + (session.current ? " (this one)" : "")),
      cell(session.device_name),
      cell(new Date(session.created).toLocaleString()),
      cell((session.amr || []).join(" ")),
    );
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.textContent = "Revoke";
    revoke.addEventListener("click", async () => {
      const answer = await call("DELETE", `sessions/${session.id}/`);
      if (answer.ok && session.current) {
        state.mode = null;
        state.token = null;
        setStatus("Logged out: this tab's session was revoked.");
        body.replaceChildren();
      } else if (state.mode) {
        await listSessions();
      }
    });
    const actions = document.createElement("td");
    actions.append(revoke);
    row.append(actions);
  }
}

on("sessions-list", "click", listSessions);

// --- Second factors --------------------------------------------------------------------

on("totp-setup", "click", async () => {
  const answer = await call("POST", "mfa/totp/");
  if (!answer.ok) {
    $("second-factor-result").textContent = `Set-up refused: ${describe(answer)}.`;
    return;
  }
  $("totp-secret").textContent = answer.data.secret;
  // qr_svg is meant to be inlined in HTML, so it lacks the namespace an image needs; as an
  // image it runs nothing, whatever it holds.
  const svg = answer.data.qr_svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"');
  $("totp-qr").src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
  $("totp-enrolment").hidden = false;
  $("second-factor-result").textContent = "Waiting for a code from the app.";
});

function showRecoveryCodes(codes) {
  if (!codes) return;
  $("recovery-codes").replaceChildren(...codes.map((code) => {
    const item = document.createElement("li");
    item.textContent = code;
    return item;
  }));
  $("recovery").hidden = false;
}

on("totp-form", "submit", async () => {
  const answer = await call("POST", "mfa/totp/confirm/", {code: $("totp-code").value.trim()});
  if (!answer.ok) {
    $("second-factor-result").textContent = `Code refused: ${describe(answer)}.`;
    return;
  }
  $("totp-enrolment").hidden = true;
  showRecoveryCodes(answer.data.recovery_codes);
  $("second-factor-result").textContent =
    "Authenticator app added: every login of this account now asks for its code.";
});

on("passkey-register", "click", async () => {
  const begin = await call("POST", "mfa/webauthn/register/begin/", {passwordless: true});
  if (!begin.ok) {
    $("second-factor-result").textContent = `Passkey set-up refused: ${describe(begin)}.`;
    return;
  }
  const credential = await navigator.credentials.create({publicKey: creationOptions(begin.data)});
  const answer = await call("POST", "mfa/webauthn/register/complete/", {
    credential: credentialJSON(credential),
    name: $("passkey-name").value,
    passwordless: true,
  });
  if (!answer.ok) {
    $("second-factor-result").textContent = `Passkey refused: ${describe(answer)}.`;
    return;
  }
  showRecoveryCodes(answer.data.recovery_codes);
  $("second-factor-result").textContent = `Passkey registered: ${answer.data.name}.`;
});

// --- Personal access tokens ------------------------------------------------------------

on("pat-form", "submit", async () => {
  const scopes = [...document.querySelectorAll("[name=pat-scope]:checked")].map((box) => box.value);
  const answer = await call("POST", "tokens/", {
    name: $("pat-name").value,
    scopes,
    expires_in: Number($("pat-days").value) * 24 * 3600,
  });
  $("pat-token").textContent = answer.ok ? answer.data.token : "";
  $("pat-result").textContent = answer.ok
    ? `Token created: ${answer.data.name}, scopes ${answer.data.scopes.join(" ") || "none"}.`
    : `Token refused: ${describe(answer)}.`;
});

// --- Logging out -----------------------------------------------------------------------

on("logout", "click", async () => {
  if (state.mode === null) {
    $("log-out-result").textContent = "Not logged in.";
    return;
  }
  const answer = await call("POST", state.mode === "browser" ? "session/logout/" : "logout/");
  if (answer.ok) {
    state.mode = null;
    state.token = null;
    setStatus("Logged out.");
  }
  $("log-out-result").textContent = describe(answer);
});

on("logout-all", "click", async () => {
  const answer = await call("POST", "logout/all/");
  if (answer.ok) {
    state.mode = null;
    state.token = null;
    setStatus("Logged out everywhere.");
  }
  $("log-out-result").textContent = describe(answer);
});

// --- On load ---------------------------------------------------------------------------

// The CSRF cookie first; then a login this browser already holds in a cookie (another tab's
// JWT cookies or browser session) is this tab's too; then the link of an e-mail, if the
// page was opened from one.
async function start() {
  if (location.hostname !== "localhost") {
    $("origin-note").hidden = false;
    $("localhost-link").href = `${location.protocol}//localhost:${location.port}/`;
    $("localhost-link").textContent = $("localhost-link").href;
  }
  await request("GET", "csrf/", undefined, {withCredential: false});
  const sessions = await request("GET", "sessions/", undefined, {withCredential: false});
  const current = sessions.ok && sessions.data.find((s) => s.current);
  if (current && COOKIE_MODES.has(current.kind)) {
    const me = await request("GET", "me/", undefined, {withCredential: false});
    state.mode = current.kind;
    state.username = me.ok ? me.data.username : "?";
    showLoggedIn();
  }
  const link = new URLSearchParams(location.search);
  if (link.get("verify_email")) {
    $("verify-key").value = link.get("verify_email");
    $("verify-form").requestSubmit();
  }
  if (link.get("reset_uid") && link.get("reset_token")) {
    $("password-reset").open = true;
    $("reset-confirm-form").hidden = false;
  }
  if (link.get("not_me")) {
    $("not-me").hidden = false;
  }
}

start();
