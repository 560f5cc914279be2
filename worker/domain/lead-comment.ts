import type { LeadEvent } from "./lead-event";

const KIND_TITLE: Record<LeadEvent["kind"], string> = {
  call: "CoMagic call",
  chat: "CoMagic chat",
  form: "Website form",
};

function seconds(n: number | null | undefined): string {
  return n === null || n === undefined ? "—" : `${Math.round(n)} sec.`;
}

/** The text the seed puts in COMMENTS; also the body of the timeline comment when a lead is updated. */
export function buildLeadComment(event: LeadEvent): string {
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
  const utm = Object.entries(event.utm).filter(([, v]) => v);
  if (utm.length) lines.push(`UTM: ${utm.map(([k, v]) => `utm_${k}=${v}`).join(", ")}`);
  return lines.join("\n");
}

export function buildLeadTitle(event: LeadEvent): string {
  const who = event.kind === "call" ? event.phone : (event.name ?? event.phone ?? event.email);
  return `${KIND_TITLE[event.kind]}: ${who ?? event.sessionId}`;
}
