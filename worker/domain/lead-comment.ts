import { crmTexts, type CrmTexts } from "../i18n/crm-texts";
import { channelLabel, renderTranscript } from "./comagic-chat";
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

/** Where the contact came from and what CoMagic knows of the visit: the closing lines of every CoMagic comment. */
function visitLines(event: LeadEvent, t: CrmTexts): string[] {
  const lines = [`${t.trafficType}: ${event.trafficType ?? "—"}`, `${t.entryPage}: ${event.entryPage ?? "—"}`, `${t.tags}: ${event.tags.length ? event.tags.join(", ") : "—"}`];
  if (event.recordingUrl) lines.push(`${t.recording}: ${event.recordingUrl}`);
  if (event.visitorId) lines.push(`${t.visitorId}: ${event.visitorId}`);
  const utm = utmLine(event.utm);
  if (utm) lines.push(`${t.utm}: ${utm}`);
  return lines;
}

/** A chat from the Data API: its channel, who answered, then who said what (comagic-chat.ts cut it), then the visit. */
function buildChatComment(event: LeadEvent, chat: NonNullable<LeadEvent["chat"]>, t: CrmTexts): string {
  const lines = [`${t.sessionId(t.kindTitle.chat)}: ${event.sessionId}`];
  const label = channelLabel(chat, t);
  if (label) lines.push(`${t.channel}: ${label}${chat.channelName && chat.channelName !== label ? ` (${chat.channelName})` : ""}`);
  lines.push(`${t.operator}: ${event.employee ?? "—"}`);
  if (chat.status === "lost") lines.push(t.missedChat);
  if (chat.pageUrl) lines.push(`${t.page}: ${chat.pageUrl}`);
  lines.push(...renderTranscript(chat, event.sessionId, t));
  return [...lines, ...visitLines(event, t)].join("\n");
}

/** A CoMagic request: its form, what the client wrote, the page, who processed it, then the visit. */
function buildRequestComment(event: LeadEvent, request: NonNullable<LeadEvent["request"]>, t: CrmTexts): string {
  const lines = [`${t.requestId}: ${event.sessionId}`, `${t.form}: ${request.formName ?? "—"}${request.formType ? ` (${t.formType}: ${request.formType})` : ""}`];
  if (request.text) lines.push(`${t.requestText}: ${request.text}`);
  if (request.comment) lines.push(`${t.requestComment}: ${request.comment}`);
  lines.push(`${t.page}: ${request.pageUrl ?? "—"}`);
  if (event.employee) lines.push(`${t.operator}: ${event.employee}`);
  return [...lines, ...visitLines(event, t)].join("\n");
}

/** The text the seed puts in COMMENTS; also the body of the timeline comment when a lead is updated. */
export function buildLeadComment(event: LeadEvent, t: CrmTexts = crmTexts("en")): string {
  if (event.form) return buildFormComment(event, event.form, t);
  if (event.chat) return buildChatComment(event, event.chat, t);
  if (event.request) return buildRequestComment(event, event.request, t);
  const lines = [`${t.sessionId(t.kindTitle[event.kind])}: ${event.sessionId}`];
  lines.push(`${t.operator}: ${event.employee ?? "—"}`);
  if (event.call) {
    const { talkSeconds, waitSeconds } = event.call;
    const parts = [talkSeconds === null ? "" : `${t.talk} ${seconds(talkSeconds, t)}`, waitSeconds === null ? "" : `${t.wait} ${seconds(waitSeconds, t)}`].filter(Boolean);
    lines.push(`${t.duration}: ${seconds(event.call.totalSeconds, t)}${parts.length ? ` (${parts.join(", ")})` : ""}`);
    if (event.call.lost) lines.push(t.lostCall);
  }
  return [...lines, ...visitLines(event, t)].join("\n");
}

/** "CoMagic chat (WhatsApp): +7…", "CoMagic request: <form name>"; a chat without a channel (the legacy body) has no brackets. */
export function buildLeadTitle(event: LeadEvent, t: CrmTexts = crmTexts("en")): string {
  if (event.form) return `${t.kindTitle.form}: ${event.form.name ?? event.form.pageUrl ?? event.sessionId}`;
  const who = event.kind === "call" ? event.phone : (event.name ?? event.phone ?? event.email);
  if (event.request?.formName) return `${t.kindTitle.request}: ${event.request.formName}`;
  const label = event.chat ? channelLabel(event.chat, t) : null;
  return `${t.kindTitle[event.kind]}${label ? ` (${label})` : ""}: ${who ?? event.sessionId}`;
}
