import { html, raw } from "hono/html";
import type { JourneyState, TabView } from "../bitrix/app-tab";
import { attribute, channelOf, MODEL_LABELS, MODELS, type Touch } from "../domain/attribution";
import { formatComagicDateTime } from "../domain/comagic-time";
import type { SessionTouch, Touchpoint } from "../domain/touchpoints";

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

/** Two clicks: the first shows the exact number and asks; the second calls (the toll-fraud guard's confirm step). */
const CALL_SCRIPT = raw(`
document.getElementById("call")?.addEventListener("click", async (event) => {
  const button = event.currentTarget, out = document.getElementById("call-result");
  if (button.dataset.confirmed !== "yes") {
    button.dataset.confirmed = "yes"; button.textContent = "Confirm: call " + button.dataset.phone;
    out.className = ""; out.textContent = "Click again to call this number.";
    return;
  }
  button.disabled = true; out.className = ""; out.textContent = "Calling your phone…";
  try {
    const res = await fetch(button.dataset.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token: button.dataset.token }) });
    const body = await res.json();
    out.className = res.ok ? "ok" : "error";
    out.textContent = res.ok ? "Your phone is ringing; the client is called when you answer." : body.message || "The call could not be started.";
    if (!res.ok && res.status !== 409) button.disabled = false;
  } catch (e) { out.className = "error"; out.textContent = "The worker could not be reached."; button.disabled = false; }
});`);

const CONTACT_LABELS: Record<string, string> = { call: "Call", chat: "Chat", offline_message: "Form", goal: "Goal" };

/** Joins already-escaped fragments. */
const join = (parts: readonly unknown[]): Html => raw(parts.map(String).join(""));

/** `nonce`: the Content-Security-Policy nonce the tab's style and script carry; the other pages send no CSP. */
function page(title: string, body: unknown, nonce = "", lang = "en"): Html {
  return raw(String(html`<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><title>${title}</title><style nonce="${nonce}">${STYLE}</style></head><body>${body}</body></html>`));
}

function sessionItem(session: SessionTouch, timeZone: string) {
  const utm = Object.entries(session.utm).filter(([, v]) => v);
  return html`<li class="session"><div class="when">${formatComagicDateTime(new Date(session.at), timeZone)}</div>
<div>Visit · <span class="channel">${channelOf(session)}</span></div>
${utm.length ? html`<div class="meta">${utm.map(([k, v]) => `utm_${k}=${v}`).join("  ")}</div>` : ""}
${session.referrer ? html`<div class="meta">from ${session.referrer}</div>` : ""}
${session.entrancePage ? html`<div class="meta">entered at ${session.entrancePage}</div>` : ""}</li>`;
}

function timeline(touchpoints: readonly Touchpoint[], timeZone: string) {
  const items = touchpoints.map((t) =>
    t.type === "session"
      ? sessionItem(t, timeZone)
      : html`<li class="contact"><div class="when">${formatComagicDateTime(new Date(t.at), timeZone)}</div><div><span class="channel">${CONTACT_LABELS[t.type] ?? t.type}</span> · CoMagic id ${t.id}</div></li>`,
  );
  return html`<ol class="journey">${join(items)}</ol>`;
}

const percent = (share: number | undefined) => `${Math.round((share ?? 0) * 100)}%`;

function attributionTable(sessions: readonly SessionTouch[], conversionAt: number) {
  const touches: Touch[] = sessions.map((s) => ({ channel: channelOf(s), at: Date.parse(s.at) }));
  const credits = MODELS.map((model) => attribute(model, touches, conversionAt));
  const channels = [...new Set(touches.map((t) => t.channel))];
  const head = join(MODELS.map((m) => html`<th>${MODEL_LABELS[m]}</th>`));
  const rows = join(channels.map((channel) => html`<tr><td>${channel}</td>${join(credits.map((credit) => html`<td>${percent(credit[channel])}</td>`))}</tr>`));
  return html`<table id="attribution"><thead><tr><th>Channel</th>${head}</tr></thead><tbody>${rows}</tbody></table>`;
}

function emptyState(state: Exclude<JourneyState, { kind: "ready" }>, snippetUrl: string) {
  if (state.kind === "no_visitor") {
    return html`<div class="note" id="empty">This lead has no CoMagic visitor id, so there is no journey to show. Leads get one from calls and chats CoMagic tracked on the site, and from website forms once the site carries the snippet: <code>${`<script src="${snippetUrl}" data-forms="form" async></script>`}</code></div>`;
  }
  const lead = state.kind === "unreachable" ? "CoMagic cannot be reached right now, so the journey is not shown. " : "The touchpoints are not loaded yet. ";
  return html`<div class="note${state.kind === "unreachable" ? " warn" : ""}" id="empty">${lead}${state.reason}</div>`;
}

export interface TabPageProps {
  view: TabView;
  token: string;
  callUrl: string;
  snippetUrl: string;
  timeZone: string;
  canCall: boolean;
  cspNonce: string;
}

function callBar(view: TabView, token: string, callUrl: string, canCall: boolean) {
  const number = view.callNumber;
  const note = !number ? "This lead has no phone number." : number.refusal ?? (!canCall ? "Click-to-call is not configured on the worker." : "");
  const enabled = Boolean(number && !number.refusal && canCall);
  return html`<div class="call"><button id="call" type="button" data-token="${token}" data-url="${callUrl}" data-phone="${number?.phone ?? ""}"${enabled ? "" : raw(" disabled")}>Call${number ? ` ${number.phone}` : ""}</button><span id="call-result"${number?.refusal ? raw(' class="error"') : ""}>${note}</span></div>`;
}

export function renderTabPage({ view, token, callUrl, snippetUrl, timeZone, canCall, cspNonce }: TabPageProps): Html {
  const { journeyState } = view;
  const sessions = journeyState.kind === "ready" ? journeyState.journey.touchpoints.filter((t): t is SessionTouch => t.type === "session") : [];
  const conversionAt = Date.parse(view.card.dateCreate ?? "") || Date.now();
  const body = html`${callBar(view, token, callUrl, canCall)}
<h2>Journey <span class="when">· times in ${timeZone}</span></h2>
${journeyState.kind === "ready" ? timeline(journeyState.journey.touchpoints, timeZone) : emptyState(journeyState, snippetUrl)}
${sessions.length ? html`<h2>Attribution</h2><p class="meta">How each model credits this lead to the channels of the visitor's visits. "direct" is a visit with no UTM tags, no referrer and no other channel from CoMagic.</p>${attributionTable(sessions, conversionAt)}` : ""}
<script nonce="${cspNonce}">${CALL_SCRIPT}</script>`;
  return page("CoMagic", body, cspNonce);
}

export function renderMessagePage(title: string, message: string, lang = "en"): Html {
  return page(title, html`<div class="note warn"><strong>${title}.</strong> ${message}</div>`, "", lang);
}

/** `warning`: something the administrator should fix (required lead fields), shown under the confirmation. */
export function renderInstalledPage(warning: string | null = null): Html {
  return raw(
    String(html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>CoMagic installed</title><script src="//api.bitrix24.com/api/v1/"></script></head>
<body><p id="installed">CoMagic is installed: lead, deal and contact cards now have a "CoMagic" tab.</p>${warning ? html`<p id="warning">${warning}</p>` : ""}
<script>if (window.BX24) BX24.init(function () { BX24.installFinish(); });</script></body></html>`),
  );
}
