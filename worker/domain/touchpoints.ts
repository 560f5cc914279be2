import type { Utm } from "./lead-event";

/** One visit of the visitor to the site. */
export interface SessionTouch {
  type: "session";
  at: string;
  sessionId: string;
  channel: string | null;
  source: string | null;
  utm: Utm;
  referrer: string | null;
  entrancePage: string | null;
  /** CoMagic's advertising campaign and site of the visit: the keys its ad cost report speaks (FACTS-calls §5). Absent in journeys cached before the report. */
  campaignId?: string | null;
  campaignName?: string | null;
  siteId?: string | null;
}

/** A call, chat, form (offline message) or goal, placed in the journey. */
export interface ContactTouch {
  type: "call" | "chat" | "offline_message" | "goal";
  at: string;
  id: string;
  sessionId: string | null;
}

export type Touchpoint = SessionTouch | ContactTouch;

export interface Journey {
  visitorId: string;
  fetchedAt: string;
  touchpoints: Touchpoint[];
}

/** utm_source when the visit had one, else CoMagic's channel or source name. */
export function sourceOf(session: SessionTouch): string | null {
  return session.utm.source ?? session.channel ?? session.source;
}

export function buildJourney(visitorId: string, fetchedAt: Date, touchpoints: readonly Touchpoint[]): Journey {
  const sorted = [...touchpoints].sort((a, b) => a.at.localeCompare(b.at) || (a.type === "session" ? -1 : 1));
  return { visitorId, fetchedAt: fetchedAt.toISOString(), touchpoints: sorted };
}

export interface JourneySummary {
  sessions: number;
  firstSource: string | null;
  lastSource: string | null;
}

/** What the lead's four CoMagic fields show. */
export function summarizeJourney(journey: Journey): JourneySummary {
  const sessions = journey.touchpoints.filter((t): t is SessionTouch => t.type === "session");
  const first = sessions[0];
  const last = sessions[sessions.length - 1];
  return { sessions: sessions.length, firstSource: first ? sourceOf(first) : null, lastSource: last ? sourceOf(last) : null };
}
