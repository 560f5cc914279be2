import type { CountryCode } from "libphonenumber-js/min";
import * as z from "zod";
import type { LeadEvent, Utm } from "./lead-event";
import { normalizePhone } from "./phone";

/** What calls and chats have in common. */
export interface SessionBase {
  id: string;
  phone: string | null;
  visitorId: string | null;
  utm: Utm;
  employee: string | null;
  trafficType: string | null;
  entryPage: string | null;
  tags: string[];
}

/** A completed CoMagic call or chat as read from a notification, before any rule is applied. */
export type CoMagicSession =
  | (SessionBase & {
      kind: "call";
      /** null when the notification does not say. */
      lost: boolean | null;
      totalSeconds: number | null;
      talkSeconds: number | null;
      waitSeconds: number | null;
      recordingUrl: string | null;
    })
  | (SessionBase & { kind: "chat"; name: string | null; email: string | null });

export interface SessionRules {
  defaultRegion: CountryCode;
  minLostCallSeconds: number;
  receivedAt: Date;
}

export type Classification =
  | { status: "accepted"; event: LeadEvent }
  | { status: "ignored"; reason: "untargeted_call" | "unparseable_phone" | "no_contact" };

const emailSchema = z.email();

export function normalizeEmail(raw: string | null): string | null {
  if (!raw) return null;
  const email = raw.trim().toLowerCase();
  return emailSchema.safeParse(email).success ? email : null;
}

/** The targeted-call rule of the seed: a lost call shorter than the threshold is not a lead. */
export function isTargetedCall(lost: boolean, totalSeconds: number | null, minLostCallSeconds: number): boolean {
  return !(lost && (totalSeconds ?? 0) < minLostCallSeconds);
}

/** A call whose notification says nothing about being lost is lost when nobody talked. */
function isLost(session: Extract<CoMagicSession, { kind: "call" }>): boolean {
  if (session.lost !== null) return session.lost;
  return session.talkSeconds !== null && session.talkSeconds <= 0;
}

/** The lead-event fields a call and a chat fill the same way. */
function sharedEventFields(session: SessionBase, receivedAt: Date) {
  return {
    sessionId: session.id,
    receivedAt: receivedAt.toISOString(),
    visitorId: session.visitorId,
    utm: session.utm,
    employee: session.employee,
    trafficType: session.trafficType,
    entryPage: session.entryPage,
    tags: session.tags,
  };
}

export function classifySession(session: CoMagicSession, rules: SessionRules): Classification {
  if (session.kind === "call") {
    const lost = isLost(session);
    if (!isTargetedCall(lost, session.totalSeconds, rules.minLostCallSeconds)) {
      return { status: "ignored", reason: "untargeted_call" };
    }
    const phone = session.phone ? normalizePhone(session.phone, rules.defaultRegion) : null;
    if (!phone) return { status: "ignored", reason: "unparseable_phone" };
    return {
      status: "accepted",
      event: {
        ...sharedEventFields(session, rules.receivedAt),
        kind: "call",
        key: session.id,
        phone,
        email: null,
        name: null,
        recordingUrl: session.recordingUrl,
        call: { lost, totalSeconds: session.totalSeconds, talkSeconds: session.talkSeconds, waitSeconds: session.waitSeconds },
      },
    };
  }
  const phone = session.phone ? normalizePhone(session.phone, rules.defaultRegion) : null;
  const email = normalizeEmail(session.email);
  if (!phone && !email) return { status: "ignored", reason: "no_contact" };
  return {
    status: "accepted",
    event: {
      ...sharedEventFields(session, rules.receivedAt),
      kind: "chat",
      // Chat and call sessions are numbered separately in CoMagic, so the chat key carries a prefix.
      key: `chat-${session.id}`,
      phone,
      email,
      name: session.name,
      recordingUrl: null,
      call: null,
    },
  };
}
