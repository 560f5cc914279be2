import { html, raw } from "hono/html";
import type { JourneyState, TabView } from "../bitrix-app/tab";
import { attribute, channelOf, MODELS, type Touch } from "../domain/attribution";
import type { CallNumberRefusal, CallRefusal } from "../domain/call-policy";
import type { SessionTouch, Touchpoint } from "../domain/touchpoints";
import { LOCALES, type Language, type Messages } from "../i18n";

/*
 * The CoMagic tab, rendered on the server with hono/html templates: every interpolated value is escaped,
 * and the page needs no framework in the browser.
 */

type Html = ReturnType<typeof raw>;

const STYLE = raw(`
body{font:13px/1.45 "Helvetica Neue",Arial,sans-serif;color:#333;margin:0;padding:16px 20px;background:#fff}
h2{font-size:15px;margin:18px 0 8px}h2:first-child{margin-top:0}
.note{background:#f5f7f8;border-left:3px solid #2fc6f6;padding:10px 12px;margin:8px 0}
.note.warn{border-color:#ffa900}.note code{font-size:12px;word-break:break-all}
ol.journey{list-style:none;margin:0;padding:0;border-left:2px solid #dfe3e6}
ol.journey li{margin:0 0 10px 0;padding-left:14px;position:relative}
ol.journey li:before{content:"";position:absolute;left:-6px;top:5px;width:10px;height:10px;border-radius:50%;background:#2fc6f6}
ol.journey li.contact:before{background:#9dcf00}
.when{color:#80868e;font-size:12px}.channel{font-weight:bold}.meta{color:#525c69;font-size:12px;word-break:break-all}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #eef2f4;padding:5px 8px;text-align:right}th:first-child,td:first-child{text-align:left}
th{color:#525c69;font-weight:normal;font-size:12px}
.call{display:flex;gap:10px;align-items:center;margin-bottom:14px}
button{background:#3bc8f5;border:0;border-radius:2px;color:#fff;font:bold 13px Arial;padding:8px 18px;cursor:pointer}button:disabled{background:#b9c0c6;cursor:default}
#call-result.ok{color:#5b8c00}#call-result.error{color:#d0021b}`);

/**
 * Two clicks: the first shows the exact number and asks; the second calls (the toll-fraud guard's confirm step).
 * The texts come in a JSON block, in the user's language.
 */
const CALL_SCRIPT = raw(`
const T = JSON.parse(document.getElementById("call-texts").textContent);
document.getElementById("call")?.addEventListener("click", async (event) => {
  const button = event.currentTarget, out = document.getElementById("call-result");
  if (button.dataset.confirmed !== "yes") {
    button.dataset.confirmed = "yes"; button.textContent = T.confirmCall + button.dataset.phone;
    out.className = ""; out.textContent = T.clickAgain;
    return;
  }
  button.disabled = true; out.className = ""; out.textContent = T.calling;
  try {
    const res = await fetch(button.dataset.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token: button.dataset.token, lang: document.documentElement.lang }) });
    const body = await res.json();
    out.className = res.ok ? "ok" : "error";
    out.textContent = res.ok ? T.ringing : body.message || T.callFailed;
    if (!res.ok && res.status !== 409) button.disabled = false;
  } catch (e) { out.className = "error"; out.textContent = T.workerUnreachable; button.disabled = false; }
});`);

/** What the sales manager reads when Call is refused, from the refusal's facts. */
export function callRefusalText(m: Messages, refusal: CallRefusal | CallNumberRefusal): string {
  const r = m.callRefusals;
  if ("reason" in refusal) {
    if (refusal.reason === "not_a_phone") return r.not_a_phone(refusal.phone);
    if (refusal.reason === "country_not_allowed") return r.country_not_allowed(refusal.country, refusal.allowed);
    return r.number_type_refused(refusal.phone, refusal.type);
  }
  switch (refusal.code) {
    case "not_configured":
    case "user_not_mapped":
      return r[refusal.code];
    case "no_phone":
    case "number_changed":
      return r[refusal.code](refusal.entity);
    case "number_not_allowed":
      return callRefusalText(m, refusal.policy);
    case "daily_limit":
      return r.daily_limit(refusal.whose);
    case "comagic_refused":
      return r.comagic_refused(refusal.mnemonic);
  }
}

/** Joins already-escaped fragments. */
const join = (parts: readonly unknown[]): Html => raw(parts.map(String).join(""));

/** `nonce`: the Content-Security-Policy nonce the tab's style and script carry; the other pages send no CSP. */
function page(title: string, body: unknown, nonce = "", lang: Language = "en"): Html {
  return raw(String(html`<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><title>${title}</title><style nonce="${nonce}">${STYLE}</style></head><body>${body}</body></html>`));
}

type TabTexts = Messages["tab"];
/** A touch's time in the user's locale and the account's time zone. */
type When = (iso: string) => string;

function sessionItem(session: SessionTouch, when: When, t: TabTexts) {
  const utm = Object.entries(session.utm).filter(([, v]) => v);
  return html`<li class="session"><div class="when">${when(session.at)}</div>
<div>${t.visit} · <span class="channel">${channelOf(session)}</span></div>
${utm.length ? html`<div class="meta">${utm.map(([k, v]) => `utm_${k}=${v}`).join("  ")}</div>` : ""}
${session.referrer ? html`<div class="meta">${t.cameFrom(session.referrer)}</div>` : ""}
${session.entrancePage ? html`<div class="meta">${t.enteredAt(session.entrancePage)}</div>` : ""}</li>`;
}

function timeline(touchpoints: readonly Touchpoint[], when: When, t: TabTexts) {
  const items = touchpoints.map((touch) =>
    touch.type === "session"
      ? sessionItem(touch, when, t)
      : html`<li class="contact"><div class="when">${when(touch.at)}</div><div><span class="channel">${t.contacts[touch.type] ?? touch.type}</span> · ${t.comagicId(touch.id)}</div></li>`,
  );
  return html`<ol class="journey">${join(items)}</ol>`;
}

const percent = (share: number | undefined) => `${Math.round((share ?? 0) * 100)}%`;

function attributionTable(sessions: readonly SessionTouch[], conversionAt: number, m: Messages) {
  const touches: Touch[] = sessions.map((s) => ({ channel: channelOf(s), at: Date.parse(s.at) }));
  const credits = MODELS.map((model) => attribute(model, touches, conversionAt));
  const channels = [...new Set(touches.map((t) => t.channel))];
  const head = join(MODELS.map((model) => html`<th>${m.models[model]}</th>`));
  const rows = join(channels.map((channel) => html`<tr><td>${channel}</td>${join(credits.map((credit) => html`<td>${percent(credit[channel])}</td>`))}</tr>`));
  return html`<table id="attribution"><thead><tr><th>${m.tab.channel}</th>${head}</tr></thead><tbody>${rows}</tbody></table>`;
}

function emptyState(state: Exclude<JourneyState, { kind: "ready" }>, snippetUrl: string, t: TabTexts) {
  if (state.kind === "no_visitor") {
    return html`<div class="note" id="empty">${t.noVisitor} <code>${`<script src="${snippetUrl}" data-forms="form" async></script>`}</code></div>`;
  }
  if (state.kind === "not_ours") return html`<div class="note" id="empty">${t.notOurs}</div>`;
  // CoMagic's own error stays as it came: the administrator searches for it in CoMagic's documentation.
  if (state.kind === "unreachable") return html`<div class="note warn" id="empty">${t.unreachable} ${state.reason}</div>`;
  return html`<div class="note" id="empty">${t.notLoaded} ${t.notLoadedReasons[state.reason]}</div>`;
}

export interface TabPageProps {
  view: TabView;
  token: string;
  callUrl: string;
  snippetUrl: string;
  timeZone: string;
  canCall: boolean;
  cspNonce: string;
  language: Language;
  messages: Messages;
}

function callBar(view: TabView, token: string, callUrl: string, canCall: boolean, m: Messages) {
  const number = view.callNumber;
  const note = !number ? m.tab.noPhone : number.refusal ? callRefusalText(m, number.refusal) : !canCall ? m.tab.callNotConfigured : "";
  const enabled = Boolean(number && !number.refusal && canCall);
  return html`<div class="call"><button id="call" type="button" data-token="${token}" data-url="${callUrl}" data-phone="${number?.phone ?? ""}"${enabled ? "" : raw(" disabled")}>${m.tab.call(number?.phone ?? null)}</button><span id="call-result"${number?.refusal ? raw(' class="error"') : ""}>${note}</span></div>`;
}

function whenIn(language: Language, timeZone: string): When {
  const format = new Intl.DateTimeFormat(LOCALES[language], { dateStyle: "medium", timeStyle: "short", timeZone });
  return (iso) => format.format(new Date(iso));
}

/** A JSON island for the page's script; `<` escaped so no text can close the script element. */
function jsonIsland(id: string, value: unknown) {
  return html`<script type="application/json" id="${id}">${raw(JSON.stringify(value).replace(/</g, "\\u003c"))}</script>`;
}

export function renderTabPage({ view, token, callUrl, snippetUrl, timeZone, canCall, cspNonce, language, messages: m }: TabPageProps): Html {
  const { journeyState } = view;
  const sessions = journeyState.kind === "ready" ? journeyState.journey.touchpoints.filter((t): t is SessionTouch => t.type === "session") : [];
  const conversionAt = Date.parse(view.card.dateCreate ?? "") || Date.now();
  const { confirmCall, clickAgain, calling, ringing, callFailed, workerUnreachable } = m.tab;
  const body = html`${callBar(view, token, callUrl, canCall, m)}
<h2>${m.tab.journey} <span class="when">· ${m.tab.timesIn(timeZone)}</span></h2>
${journeyState.kind === "ready" ? timeline(journeyState.journey.touchpoints, whenIn(language, timeZone), m.tab) : emptyState(journeyState, snippetUrl, m.tab)}
${sessions.length ? html`<h2>${m.tab.attribution}</h2><p class="meta">${m.tab.attributionHelp}</p>${attributionTable(sessions, conversionAt, m)}` : ""}
${jsonIsland("call-texts", { confirmCall, clickAgain, calling, ringing, callFailed, workerUnreachable })}
<script nonce="${cspNonce}">${CALL_SCRIPT}</script>`;
  return page("CoMagic", body, cspNonce, language);
}

export function renderMessagePage(title: string, message: string, lang: Language = "en"): Html {
  return page(title, html`<div class="note warn"><strong>${title}.</strong> ${message}</div>`, "", lang);
}

/** `warning`: something the administrator should fix (required lead fields), shown under the confirmation. */
export function renderInstalledPage(m: Messages, language: Language, warning: string | null = null): Html {
  return raw(
    String(html`<!doctype html><html lang="${language}"><head><meta charset="utf-8"><title>${m.install.title}</title><script src="//api.bitrix24.com/api/v1/"></script></head>
<body><p id="installed">${m.install.installed}</p>${warning ? html`<p id="warning">${warning}</p>` : ""}
<script>if (window.BX24) BX24.init(function () { BX24.installFinish(); });</script></body></html>`),
  );
}
