/*
 * The settings page's HTML: a checklist of six steps, each with its state, its settings and its check, rendered on
 * the server (hono/html escapes every value). The one script copies, checks and saves with the settings token in
 * POST bodies; a renewed token comes back in X-Settings-Token. Labels wrap their fields and every action is a
 * button, so the page works by keyboard.
 */
import { html, raw } from "hono/html";
import type { Funnel, LeadStatus, Managers, Platform } from "../bitrix-app/settings";
import type { CrmMode } from "../domain/crm-entity";
import { LOCALES, type Language } from "../i18n";
import { settingsMessages } from "../i18n/settings";

type Html = ReturnType<typeof raw>;

export interface SettingsView {
  language: Language;
  /** A stored portal's settings change here; the default portal's live in env and are only shown. */
  editable: boolean;
  portal: string;
  platform: Platform;
  localPlatform: boolean;
  /** PAGE_SETTINGS by name as the page shows them; secrets empty (their hint is shown instead). */
  values: Record<string, string>;
  /** PAGE_SECRETS by name: "set, ends in …7f" or "not set" (bitrix-app/settings.ts secretHint). */
  hints: Record<string, string>;
  comagicReady: boolean;
  notificationUrl: string | null;
  scriptTag: string;
  lastNotificationAt: string | null;
  lastFormAt: string | null;
  crmMode: CrmMode | null;
  unfilled: string[] | null;
  timeZone: string;
  /** Null until the CoMagic account answers (or when it cannot be read just now). */
  managers: Managers | null;
  /** A portal without leads: its deal funnels and their stages in progress; null otherwise. */
  funnels: Funnel[] | null;
  /** The CoMagic fields on leads and deals: how many there are, and which this opening had to make again. */
  fields: { present: number; remade: string[] } | null;
  /** Closing the loop (issue #25): what is on, and what the deal journal says. */
  loop: {
    /** COMAGIC_DEALS. */
    dealsOn: boolean;
    /** The deal journal's counts (storage/deal-journal.ts summary); null when it cannot be read. */
    deals: { sent: number; waiting: number; rejected: number; notLinked: number } | null;
    /** The portal's lead statuses in progress; null (a portal without leads, or not read): the status is typed. */
    leadStatuses: LeadStatus[] | null;
    /** Without leads a deal made is the "qualified" moment, and no lead status is asked for. */
    withoutLeads: boolean;
    metricaOn: boolean;
    ga4On: boolean;
  };
}

const STYLE = raw(`
body{font:13px/1.45 "Helvetica Neue",Arial,sans-serif;color:#333;margin:0;padding:16px 20px;background:#fff;max-width:980px}
h1{font-size:18px;margin:0 0 6px}h2{font-size:15px;margin:0 0 8px;display:flex;gap:10px;align-items:center}
section{border:1px solid #dfe3e6;border-radius:4px;padding:12px 14px;margin:12px 0}
h3{font-size:13px;margin:14px 0 4px;display:flex;gap:8px;align-items:baseline}
label{display:block;margin:8px 0 0;color:#525c69;font-size:12px}label input,label select,textarea{display:block;width:100%;box-sizing:border-box;font:13px Arial;padding:5px;margin-top:3px;color:#333}
textarea{height:7.5em;font:12px monospace}code{word-break:break-all;background:#f5f7f8;padding:2px 4px}
.state{font-size:11px;border-radius:10px;padding:1px 8px;color:#fff;background:#a8adb4}.state.done{background:#9dcf00}.state.todo{background:#ffa900}
.row{display:flex;gap:10px}.row>label{flex:1}.actions{display:flex;gap:8px;align-items:center;margin-top:10px;flex-wrap:wrap}
button{background:#3bc8f5;border:0;border-radius:2px;color:#fff;font:bold 13px Arial;padding:7px 14px;cursor:pointer}button.secondary{background:#eef2f4;color:#333}
#step-loop p{margin:4px 0}#step-loop h3{margin-top:12px}h3 .meta{font-weight:normal}label.check{display:flex;gap:6px;align-items:center;color:#333;font-size:13px}label.check input{width:auto;margin:0}
button:focus-visible,input:focus-visible,select:focus-visible{outline:2px solid #2067b0;outline-offset:1px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eef2f4;padding:4px 6px;text-align:left;vertical-align:middle}th{color:#525c69;font-weight:normal;font-size:12px}
td select{font:13px Arial;padding:4px}
.answer{min-height:1.2em}.answer.ok{color:#5b8a00}.answer.bad{color:#c4131b}.meta{color:#80868e;font-size:12px}.note{background:#f5f7f8;border-left:3px solid #2fc6f6;padding:8px 12px;margin:8px 0}`);

/** Bitrix24's frame library (BX24): the frame is sized to the page with it. Without it (no network) the page scrolls. */
const BX24_LIBRARY = "https://api.bitrix24.com/api/v1/";

/** Copy buttons, the checks and saving: the token travels in POST bodies only. */
const SCRIPT = raw(`
// Bitrix24 gives an app's frame a fixed height: the page asks for its own, once loaded and whenever an answer grows it.
const fit = () => { if (window.BX24) BX24.init(() => BX24.resizeWindow(document.documentElement.scrollWidth, document.documentElement.scrollHeight)); };
document.getElementById("bx24")?.addEventListener("load", fit);
const token = document.getElementById("token");
const keep = (res) => { const renewed = res.headers.get("x-settings-token"); if (renewed) token.value = renewed; };
const fields = () => {
  const settings = {};
  document.querySelectorAll("[data-setting]").forEach((el) => { settings[el.name] = el.type === "checkbox" ? String(el.checked) : el.value; });
  const platform = document.getElementById("platform");
  const table = document.getElementById("managers");
  const employees = table ? [...table.querySelectorAll("select[data-employee]")].filter((el) => el.value).map((el) => ({ employeeId: el.dataset.employee, userId: el.value })) : undefined;
  return { platform: platform ? platform.value : undefined, settings, employees };
};
const post = async (url, body, answer) => {
  answer.className = "answer"; answer.textContent = answer.dataset.busy;
  try {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token: token.value, ...body }) });
    keep(res);
    const json = await res.json().catch(() => ({}));
    const problems = (json.problems || []).map((p) => p.setting + ": " + p.problem).join("; ");
    // CoMagic names its account's time zone: the field takes it, nothing to type.
    const zone = document.getElementById("COMAGIC_TIMEZONE");
    if (json.timeZone && zone && !zone.disabled) zone.value = json.timeZone;
    answer.textContent = [json.message || answer.dataset.failed, problems].filter(Boolean).join(" ");
    answer.className = "answer " + (res.ok && json.ok ? "ok" : "bad");
    fit();
    return res.ok && json.ok;
  } catch (e) { answer.textContent = answer.dataset.failed; answer.className = "answer bad"; return false; }
};
// A stage belongs to one funnel: choosing a funnel offers its stages only.
document.getElementById("DEAL_CATEGORY_ID")?.addEventListener("change", (event) => {
  const stage = document.getElementById("DEAL_STAGE_ID");
  stage.value = "";
  stage.querySelectorAll("option[data-funnel]").forEach((option) => { option.hidden = option.dataset.funnel !== event.currentTarget.value; });
});
document.querySelectorAll("[data-copy]").forEach((button) => button.addEventListener("click", async () => {
  const source = document.getElementById(button.dataset.copy);
  try { await navigator.clipboard.writeText(source.value ?? source.textContent); } catch (e) { source.select?.(); document.execCommand?.("copy"); }
  button.textContent = button.dataset.done;
}));
document.getElementById("check-comagic")?.addEventListener("click", () => post("/bitrix/settings/check-comagic", fields(), document.getElementById("comagic-answer")));
document.getElementById("make-funnels")?.addEventListener("click", () => post("/bitrix/settings/sales-funnels", {}, document.getElementById("funnels-answer")));
document.getElementById("check-page")?.addEventListener("click", () => post("/bitrix/settings/check-page", { url: document.getElementById("page-url").value }, document.getElementById("page-answer")));
document.getElementById("save")?.addEventListener("click", async () => {
  if (await post("/bitrix/settings/save", fields(), document.getElementById("save-answer"))) document.getElementById("reload").submit();
});`);

function when(at: string | null, language: Language, never: string): string {
  if (!at) return never;
  return new Intl.DateTimeFormat(LOCALES[language], { dateStyle: "medium", timeStyle: "short" }).format(new Date(at));
}

export function renderSettingsPage(view: SettingsView, tokens: { settings: string; report: string }, nonce: string): Html {
  const token = tokens.settings;
  const m = settingsMessages(view.language);
  const lang = `?LANG=${view.language}`;
  const disabled = view.editable ? "" : raw(" disabled");
  const join = (parts: readonly unknown[]) => raw(parts.map(String).join(""));
  const state = (s: "done" | "todo" | "waiting") => html`<span class="state ${s}">${m.stepState[s]}</span>`;
  const input = (name: string, label: string, type = "text", placeholder = "") =>
    html`<label>${label}<input data-setting name="${name}" id="${name}" type="${type}" value="${view.values[name] ?? ""}" placeholder="${placeholder}" autocomplete="off"${disabled}></label>`;
  const secret = (name: string, label: string) =>
    html`<label>${label} <span class="meta" id="${name}-hint">(${view.hints[name] ?? m.secretUnset})</span><input data-setting name="${name}" id="${name}" type="password" value="" placeholder="${m.keepSecret}" autocomplete="new-password"${disabled}></label>`;
  const platforms: Platform[] = ["comagic", "uis", "callgear", ...(view.localPlatform ? (["local"] as const) : []), ...(view.platform === "custom" ? (["custom"] as const) : [])];
  const users = view.managers?.users ?? null;
  const userOptions = (selected: string | null) =>
    join([
      html`<option value="">${m.managers.nobody}</option>`,
      ...(users ?? []).map((u) => html`<option value="${u.id}"${u.id === selected ? raw(" selected") : ""}>${u.name}${u.email ? ` (${u.email})` : ""}</option>`),
    ]);
  // With the portal's users read, a user is chosen from them; else (CoMagic not connected yet) the id is typed.
  const userChoice = (name: string, label: string) =>
    users ? html`<label>${label}<select data-setting name="${name}" id="${name}"${disabled}>${userOptions(view.values[name] || null)}</select></label>` : input(name, label);
  const managersTable = view.managers
    ? html`<p class="meta">${m.managers.table}</p><table id="managers"><thead><tr><th>${m.managers.employee}</th><th>${m.managers.user}</th></tr></thead><tbody>${join(
        view.managers.matches.map(
          (match) =>
            html`<tr><td>${match.employee.fullName || `#${match.employee.id}`}${match.employee.email ? html` <span class="meta">${match.employee.email}</span>` : ""}</td><td><select data-employee="${match.employee.id}" aria-label="${m.managers.user}: ${match.employee.fullName}"${disabled}>${userOptions(match.userId)}</select> <span class="meta" data-by="${match.by}">${m.managers.by[match.by]}</span></td></tr>`,
        ),
      )}</tbody></table>`
    : html`<p class="meta" id="managers-later">${m.managers.connectFirst}</p>`;
  const managersState = view.managers?.matches.every((match) => match.userId) && view.values.DEFAULT_RESPONSIBLE_ID ? "done" : "todo";
  const chosenFunnel = view.values.DEAL_CATEGORY_ID || "0";
  const funnelChoice = view.funnels
    ? html`<div class="row"><label>${m.crm.funnel}<select data-setting name="DEAL_CATEGORY_ID" id="DEAL_CATEGORY_ID"${disabled}>${join(
        view.funnels.map((f) => html`<option value="${f.id}"${f.id === chosenFunnel ? raw(" selected") : ""}>${f.name || m.crm.generalFunnel}</option>`),
      )}</select></label><label>${m.crm.stage}<select data-setting name="DEAL_STAGE_ID" id="DEAL_STAGE_ID"${disabled}><option value="">${m.crm.firstStage}</option>${join(
        view.funnels.flatMap((f) =>
          f.stages.map(
            (st) =>
              html`<option value="${st.id}" data-funnel="${f.id}"${st.id === view.values.DEAL_STAGE_ID ? raw(" selected") : ""}${f.id === chosenFunnel ? "" : raw(" hidden")}>${st.name}</option>`,
          ),
        ),
      )}</select></label></div>`
    : "";
  const notificationState = view.lastNotificationAt ? "done" : view.notificationUrl ? "waiting" : "todo";
  const { loop } = view;
  const onOff = (on: boolean, offHint: string) => html`<span class="meta">${on ? m.loop.on : offHint}</span>`;
  // The statuses read from the portal are offered; a saved one no longer among them is kept as it is.
  const savedStatus = view.values.QUALIFIED_LEAD_STATUS ?? "";
  const statuses = loop.leadStatuses && [...loop.leadStatuses, ...(savedStatus && !loop.leadStatuses.some((s) => s.id === savedStatus) ? [{ id: savedStatus, name: savedStatus }] : [])];
  const statusChoice = loop.withoutLeads
    ? ""
    : statuses?.length
      ? html`<label>${m.loop.metrica.status}<select data-setting name="QUALIFIED_LEAD_STATUS" id="QUALIFIED_LEAD_STATUS"${disabled}><option value="">${m.loop.metrica.noStatus}</option>${join(
          statuses.map((s) => html`<option value="${s.id}"${s.id === savedStatus ? raw(" selected") : ""}>${s.name}</option>`),
        )}</select></label>`
      : input("QUALIFIED_LEAD_STATUS", m.loop.metrica.status, "text", "IN_PROCESS");
  const journal = loop.deals
    ? html`<p class="meta" id="deal-journal">${m.loop.deals.journal(loop.deals.sent, loop.deals.waiting, loop.deals.rejected)}${loop.deals.notLinked ? ` ${m.loop.deals.notLinked(loop.deals.notLinked)}` : ""}</p>`
    : "";
  const loopStep = html`<section id="step-loop"><h2>${m.loop.title} ${state(loop.dealsOn ? "done" : "todo")}</h2>
<p class="meta">${m.loop.how}</p>
<h3>${m.loop.deals.title}</h3>
<p class="meta">${m.funnels.how} ${m.loop.deals.twice}</p>
${
  view.comagicReady
    ? html`<div class="actions"><button type="button" class="secondary" id="make-funnels">${m.funnels.make}</button><span class="answer" id="funnels-answer" role="status" data-busy="${m.checking}" data-failed="${m.failed}"></span></div>`
    : html`<p class="meta" id="funnels-later">${m.loop.deals.connectFirst}</p>`
}
<div class="row"><label class="check"><input type="checkbox" data-setting name="COMAGIC_DEALS" id="COMAGIC_DEALS"${loop.dealsOn ? raw(" checked") : ""}${disabled}>${m.loop.deals.send}</label>${input("COMAGIC_CURRENCY", m.loop.deals.currency, "text", "RUB")}</div>
${journal}
<h3>${m.loop.metrica.title} ${onOff(loop.metricaOn, m.loop.metrica.offHint)}</h3>
<p class="meta">${m.loop.metrica.how} ${loop.withoutLeads ? m.loop.metrica.qualifiedWithoutLeads : m.loop.metrica.qualified} ${m.loop.metrica.won} ${m.loop.metrica.goals}</p>
<div class="row">${input("METRICA_COUNTER_ID", m.loop.metrica.counter, "text", "12345678")}${secret("METRICA_TOKEN", m.loop.metrica.token)}</div>
<div class="row">${input("METRICA_GOAL_QUALIFIED", m.loop.metrica.goalQualified, "text", "crm_qualified")}${input("METRICA_GOAL_WON", m.loop.metrica.goalWon, "text", "crm_won")}${statusChoice}</div>
<h3>${m.loop.ga4.title} ${onOff(loop.ga4On, m.loop.ga4.offHint)}</h3>
<p class="meta">${m.loop.ga4.how}</p>
<div class="row">${input("GA4_MEASUREMENT_ID", m.loop.ga4.measurementId, "text", "G-XXXXXXXXXX")}${secret("GA4_API_SECRET", m.loop.ga4.apiSecret)}${input("GA4_EVENT_QUALIFIED", m.loop.ga4.eventQualified, "text", "crm_qualified")}${input("GA4_EVENT_WON", m.loop.ga4.eventWon, "text", "crm_won")}</div>
<p class="meta">${m.loop.ga4.check}</p></section>`;
  const crmState = view.unfilled && view.unfilled.length === 0 ? "done" : "todo";
  const page = html`<!doctype html><html lang="${view.language}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${m.title}</title><style nonce="${nonce}">${STYLE}</style>
<script src="${BX24_LIBRARY}" id="bx24" nonce="${nonce}" async></script></head><body>
<h1>${m.title}</h1><p class="meta">${m.intro}</p>
<form id="open-report" method="post" action="/bitrix/report${lang}"><input type="hidden" name="token" value="${tokens.report}"><button type="submit" class="secondary">${m.reportLink}</button></form>
${view.editable ? "" : html`<div class="note" id="env-portal">${m.envPortal}</div>`}
<input type="hidden" id="token" value="${token}">
<form id="reload" method="post" action="/bitrix/settings${lang}"><input type="hidden" name="token" value="${token}"></form>

<section id="step-comagic"><h2>${m.comagic.title} ${state(view.comagicReady ? "done" : "todo")}</h2>
<label>${m.comagic.platform}<select id="platform" name="platform"${disabled}>${join(platforms.map((p) => html`<option value="${p}"${p === view.platform ? raw(" selected") : ""}>${m.comagic.platforms[p]}</option>`))}</select></label>
${secret("COMAGIC_API_TOKEN", m.comagic.apiToken)}
<div class="row">${input("COMAGIC_LOGIN", m.comagic.login)}${secret("COMAGIC_PASSWORD", m.comagic.password)}</div>
${input("COMAGIC_TIMEZONE", m.comagic.timeZone)}
<div class="actions"><button type="button" class="secondary" id="check-comagic">${m.check}</button><span class="answer" id="comagic-answer" role="status" data-busy="${m.checking}" data-failed="${m.failed}"></span></div></section>

<section id="step-notification"><h2>${m.notification.title} ${state(notificationState)}</h2>
<p>${m.notification.how}</p>
<label>${m.notification.url}<input id="notification-url" readonly value="${view.notificationUrl ?? ""}"></label>
<div class="actions"><button type="button" class="secondary" data-copy="notification-url" data-done="${m.copied}">${m.copy}</button></div>
<label>${m.notification.body}<textarea id="notification-body" readonly>${NOTIFICATION_BODY}</textarea></label>
<div class="actions"><button type="button" class="secondary" data-copy="notification-body" data-done="${m.copied}">${m.copy}</button></div>
<p class="meta" id="last-notification">${view.lastNotificationAt ? m.notification.last(when(view.lastNotificationAt, view.language, m.never)) : m.notification.waiting}</p></section>

<section id="step-website"><h2>${m.website.title} ${state(view.lastFormAt ? "done" : view.values.ALLOWED_ORIGINS ? "waiting" : "todo")}</h2>
<p>${m.website.how}</p>
<label>${m.website.tag}<input id="script-tag" readonly value="${view.scriptTag}"></label>
<div class="actions"><button type="button" class="secondary" data-copy="script-tag" data-done="${m.copied}">${m.copy}</button></div>
${input("ALLOWED_ORIGINS", m.website.origins, "text", "https://shop.example.ru")}
<div class="row"><label>${m.website.pageUrl}<input id="page-url" type="url" placeholder="https://shop.example.ru/"></label></div>
<div class="actions"><button type="button" class="secondary" id="check-page">${m.website.checkPage}</button><span class="answer" id="page-answer" role="status" data-busy="${m.checking}" data-failed="${m.failed}"></span></div>
<p class="meta" id="last-form">${view.lastFormAt ? m.website.last(when(view.lastFormAt, view.language, m.never)) : m.website.waiting}</p></section>

<section id="step-managers"><h2>${m.managers.title} ${state(managersState)}</h2>
${managersTable}
<div class="row">${userChoice("DEFAULT_RESPONSIBLE_ID", m.managers.responsible)}${userChoice("LOST_CALL_RESPONSIBLE_ID", m.managers.lostCalls)}</div>
<div class="row">${input("COMAGIC_VIRTUAL_NUMBER", m.managers.virtualNumber)}${input("CALL_COUNTRIES", m.managers.countries)}</div>
<div class="row">${input("CALL_DAILY_LIMIT_PER_USER", m.managers.dailyLimit, "number")}${input("CALL_DAILY_LIMIT", m.managers.portalLimit, "number")}</div></section>

<section id="step-crm"><h2>${m.crm.title} ${state(crmState)}</h2>
<p id="crm-mode">${view.crmMode === "classic" ? m.crm.modeClassic : view.crmMode === "simple" ? m.crm.modeSimple : m.crm.modeUnknown}</p>
<p id="crm-comagic-fields">${view.fields ? (view.fields.remade.length ? m.crm.fieldsRemade(view.fields.remade.join(", ")) : m.crm.fieldsPresent(view.fields.present)) : ""}</p>
<p id="crm-fields">${view.unfilled === null ? "" : view.unfilled.length === 0 ? m.crm.fieldsOk : m.crm.fieldsBlocking(view.unfilled.join(", "))}</p>
${view.funnels ? funnelChoice : ""}
<label>${m.crm.language}<select data-setting name="CRM_LANGUAGE" id="CRM_LANGUAGE"${disabled}>${join(
    (["ru", "en"] as const).map((l) => html`<option value="${l}"${(view.values.CRM_LANGUAGE || "ru") === l ? raw(" selected") : ""}>${l === "ru" ? "Русский" : "English"}</option>`),
  )}</select></label></section>

${loopStep}

${view.editable ? html`<div class="actions"><button type="button" id="save">${m.save}</button><span class="answer" id="save-answer" role="status" data-busy="${m.saving}" data-failed="${m.failed}"></span></div>` : ""}
<script nonce="${nonce}">${SCRIPT}</script></body></html>`;
  return raw(String(page));
}

/** The notification body to paste into CoMagic (docs/comagic-call-notification.template, which a unit test keeps equal). */
export const NOTIFICATION_BODY = `{
  "notification_name": {{notification_name}},
  "notification_time": {{notification_time}},
  "call_session_id": {{call_session_id}},
  "communication_number": {{communication_number}},
  "contact_phone_number": {{contact_phone_number}},
  "virtual_phone_number": {{virtual_phone_number}},
  "direction": {{direction}},
  "is_internal": {{is_internal}},
  "call_source": {{call_source}},
  "scenario_name": {{scenario_name}},
  "employee_id": {{employee_id}},
  "employee_full_name": {{employee_full_name}},
  "talk_time_duration": {{talk_time_duration}},
  "total_time_duration": {{total_time_duration}},
  "wait_time_duration": {{wait_time_duration}},
  "tag_names": {{tag_names}}
}
`;
