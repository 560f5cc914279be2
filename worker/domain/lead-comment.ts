import { crmTexts, type CrmTexts } from "../i18n/crm-texts";
import type { LeadEvent, Utm } from "./lead-event";

/* Titles and comments in CRM_LANGUAGE: `texts` defaults to English, the language the worker's own tests read. */

function seconds(n: number | null | undefined, t: CrmTexts): string {
  return n === null || n === undefined ? "—" : t.seconds(Math.round(n));
}

function utmLine(utm: Utm): string | null {
  const set = Object.entries(utm).filter(([, v]) => v);
  return set.length ? set.map(([k, v]) => `utm_${k}=${v}`).join(", ") : null;
}

function buildFormComment(event: LeadEvent, form: NonNullable<LeadEvent["form"]>, t: CrmTexts): string {
  const lines = [`${t.websiteForm}: ${form.name ?? "—"}`];
  if (form.message) lines.push(`${t.message}: ${form.message}`);
  lines.push(`${t.page}: ${form.pageUrl ?? "—"}`);
  lines.push(`${t.referrer}: ${form.referrer || "—"}`);
  if (event.visitorId) lines.push(`${t.visitorId}: ${event.visitorId}`);
  if (form.comagicSessionId) lines.push(`${t.sessionIdOfVisit}: ${form.comagicSessionId}`);
  const last = utmLine(event.utm);
  const first = utmLine(form.firstUtm);
  if (last) lines.push(`${t.utmLast}: ${last}`);
  if (first) lines.push(`${t.utmFirst}: ${first}`);
  const clicks = Object.entries(form.clickIds);
  if (clicks.length) lines.push(`${t.clickIds}: ${clicks.map(([k, v]) => `${k}=${v}`).join(", ")}`);
  const extra = Object.entries(form.extra);
  if (extra.length) lines.push(t.otherFields, ...extra.map(([k, v]) => `  ${k}: ${v}`));
  return lines.join("\n");
}

/** The text the seed puts in COMMENTS; also the body of the timeline comment when a lead is updated. */
export function buildLeadComment(event: LeadEvent, t: CrmTexts = crmTexts("en")): string {
  if (event.form) return buildFormComment(event, event.form, t);
  const lines = [`${t.sessionId(t.kindTitle[event.kind])}: ${event.sessionId}`];
  lines.push(`${t.operator}: ${event.employee ?? "—"}`);
  if (event.call) {
    const { talkSeconds, waitSeconds } = event.call;
    const parts = [talkSeconds === null ? "" : `${t.talk} ${seconds(talkSeconds, t)}`, waitSeconds === null ? "" : `${t.wait} ${seconds(waitSeconds, t)}`].filter(Boolean);
    lines.push(`${t.duration}: ${seconds(event.call.totalSeconds, t)}${parts.length ? ` (${parts.join(", ")})` : ""}`);
    if (event.call.lost) lines.push(t.lostCall);
  }
  lines.push(`${t.trafficType}: ${event.trafficType ?? "—"}`);
  lines.push(`${t.entryPage}: ${event.entryPage ?? "—"}`);
  lines.push(`${t.tags}: ${event.tags.length ? event.tags.join(", ") : "—"}`);
  if (event.recordingUrl) lines.push(`${t.recording}: ${event.recordingUrl}`);
  if (event.visitorId) lines.push(`${t.visitorId}: ${event.visitorId}`);
  const utm = utmLine(event.utm);
  if (utm) lines.push(`${t.utm}: ${utm}`);
  return lines.join("\n");
}

export function buildLeadTitle(event: LeadEvent, t: CrmTexts = crmTexts("en")): string {
  if (event.form) return `${t.kindTitle.form}: ${event.form.name ?? event.form.pageUrl ?? event.sessionId}`;
  const who = event.kind === "call" ? event.phone : (event.name ?? event.phone ?? event.email);
  return `${t.kindTitle[event.kind]}: ${who ?? event.sessionId}`;
}
