import type { LeadEvent, Utm } from "./lead-event";

const KIND_TITLE: Record<LeadEvent["kind"], string> = {
  call: "CoMagic call",
  chat: "CoMagic chat",
  form: "Website form",
};

function seconds(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : `${Math.round(n)} sec.`;
}

function utmLine(utm: Utm): string | null {
  const set = Object.entries(utm).filter(([, v]) => v);
  return set.length ? set.map(([k, v]) => `utm_${k}=${v}`).join(", ") : null;
}

function buildFormComment(event: LeadEvent, form: NonNullable<LeadEvent["form"]>): string {
  const lines = [`Website form: ${form.name ?? "—"}`];
  if (form.message) lines.push(`Message: ${form.message}`);
  lines.push(`Page: ${form.pageUrl ?? "—"}`);
  lines.push(`Referrer: ${form.referrer || "—"}`);
  if (event.visitorId) lines.push(`CoMagic visitor ID: ${event.visitorId}`);
  if (form.comagicSessionId) lines.push(`CoMagic session ID: ${form.comagicSessionId}`);
  const last = utmLine(event.utm);
  const first = utmLine(form.firstUtm);
  if (last) lines.push(`UTM (last touch): ${last}`);
  if (first) lines.push(`UTM (first touch): ${first}`);
  const clicks = Object.entries(form.clickIds);
  if (clicks.length) lines.push(`Click ids: ${clicks.map(([k, v]) => `${k}=${v}`).join(", ")}`);
  const extra = Object.entries(form.extra);
  if (extra.length) lines.push("Other fields:", ...extra.map(([k, v]) => `  ${k}: ${v}`));
  return lines.join("\n");
}

/** The text the seed puts in COMMENTS; also the body of the timeline comment when a lead is updated. */
export function buildLeadComment(event: LeadEvent): string {
  if (event.form) return buildFormComment(event, event.form);
  const lines = [`${KIND_TITLE[event.kind]} session ID: ${event.sessionId}`];
  lines.push(`Operator: ${event.employee ?? "—"}`);
  if (event.call) {
    const { talkSeconds, waitSeconds } = event.call;
    const parts = [talkSeconds === null ? "" : `talk ${seconds(talkSeconds)}`, waitSeconds === null ? "" : `wait ${seconds(waitSeconds)}`].filter(Boolean);
    lines.push(`Duration: ${seconds(event.call.totalSeconds)}${parts.length ? ` (${parts.join(", ")})` : ""}`);
    if (event.call.lost) lines.push("Lost call: yes");
  }
  lines.push(`Traffic type: ${event.trafficType ?? "—"}`);
  lines.push(`Entry page: ${event.entryPage ?? "—"}`);
  lines.push(`Tags: ${event.tags.length ? event.tags.join(", ") : "—"}`);
  if (event.recordingUrl) lines.push(`Recording: ${event.recordingUrl}`);
  if (event.visitorId) lines.push(`CoMagic visitor ID: ${event.visitorId}`);
  const utm = utmLine(event.utm);
  if (utm) lines.push(`UTM: ${utm}`);
  return lines.join("\n");
}

export function buildLeadTitle(event: LeadEvent): string {
  if (event.form) return `${KIND_TITLE.form}: ${event.form.name ?? event.form.pageUrl ?? event.sessionId}`;
  const who = event.kind === "call" ? event.phone : (event.name ?? event.phone ?? event.email);
  return `${KIND_TITLE[event.kind]}: ${who ?? event.sessionId}`;
}
