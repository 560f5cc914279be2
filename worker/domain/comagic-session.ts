import type { CountryCode } from "libphonenumber-js/core";
import * as z from "zod";
import { chatIgnoreReason, clip, cutTranscript, type ChatDetails, type ChatIgnoreReason, type RequestDetails } from "./comagic-chat";
import type { LeadEvent, Utm } from "./lead-event";
import { callKey, chatKey, requestKey } from "./event-keys";
import { normalizePhone } from "./phone";

/** What calls, chats and requests have in common. */
export interface SessionBase {
  id: string;
  phone: string | null;
  visitorId: string | null;
  utm: Utm;
  employee: string | null;
  /** CoMagic's employee id (`employee_id` / `last_answered_employee_id`), when the body carries it. */
  employeeId: string | null;
  trafficType: string | null;
  entryPage: string | null;
  tags: string[];
}

/** A CoMagic call, chat or request as read from a notification or a report, before any rule is applied. */
export type CoMagicSession =
  | (SessionBase & {
      kind: "call";
      /** `in` / `out` as CoMagic documents them; null when the body does not say (lost-call templates never do). */
      direction: "in" | "out" | null;
      /** CoMagic's `is_internal`: a call between two employees. */
      internal: boolean | null;
      /** null when the notification does not say. */
      lost: boolean | null;
      totalSeconds: number | null;
      talkSeconds: number | null;
      waitSeconds: number | null;
      recordingUrl: string | null;
      /** A call the worker itself started through the Call API (the calls report's `call_api_external_id`). */
      startedByWorker: boolean;
    })
  | (SessionBase & {
      kind: "chat";
      name: string | null;
      email: string | null;
      /** From get.chats_report (comagic-chat.ts); absent in the legacy chat_session body, which names no channel. */
      chat?: ChatDetails | null;
    })
  | (SessionBase & { kind: "request"; name: string | null; email: string | null; request: RequestDetails });

export interface SessionRules {
  defaultRegion: CountryCode;
  minLostCallSeconds: number;
  receivedAt: Date;
  /** COMAGIC_TECH_REQUESTS: CoMagic's technical requests make leads too (off: they make nothing). */
  includeTechRequests?: boolean;
}

export type Classification = { status: "accepted"; event: LeadEvent } | { status: "ignored"; reason: IgnoreReason };

/** Why a session is not a lead; each is answered `200 ignored` so CoMagic does not send it again. */
export type IgnoreReason =
  | "untargeted_call"
  | "unparseable_phone"
  | "hidden_number"
  | "no_contact"
  | "outbound_call"
  | "internal_call"
  | "started_by_worker"
  | ChatIgnoreReason
  | "tech_request"
  | "form_sent_by_worker";

/** Reasons that may change: an open chat is read again once CoMagic closes it (the feed keeps its cursor before it). */
const NOT_FINAL: ReadonlySet<IgnoreReason> = new Set(["chat_open"]);

export function isFinalIgnore(reason: IgnoreReason): boolean {
  return !NOT_FINAL.has(reason);
}

const emailSchema = z.email();

export function normalizeEmail(raw: string | null): string | null {
  if (!raw) return null;
  const email = raw.trim().toLowerCase();
  // 254: the longest address SMTP carries, and lead-event.ts's bound.
  return email.length <= 254 && emailSchema.safeParse(email).success ? email : null;
}

/** The targeted-call rule of the seed: a lost call shorter than the threshold is not a lead. */
export function isTargetedCall(lost: boolean, totalSeconds: number | null, minLostCallSeconds: number): boolean {
  return !(lost && (totalSeconds ?? 0) < minLostCallSeconds);
}

/**
 * A call whose notification says nothing about being lost is lost when nobody talked. Without a talk time
 * either (the "Потерянный звонок" template sends none) it cannot be told apart, so it counts as answered:
 * a lead too many beats a client lost.
 */
function isLost(session: Extract<CoMagicSession, { kind: "call" }>): boolean {
  if (session.lost !== null) return session.lost;
  return session.talkSeconds !== null && session.talkSeconds <= 0;
}

/**
 * Only inbound client calls become leads. Outbound calls (`direction` out, which click-to-call sets) and
 * internal ones never do; a notification without `direction` is inbound (FACTS-calls §3.2: lost-call templates
 * carry none).
 */
function notInbound(session: Extract<CoMagicSession, { kind: "call" }>): IgnoreReason | null {
  if (session.startedByWorker) return "started_by_worker";
  if (session.internal === true) return "internal_call";
  if (session.direction === "out") return "outbound_call";
  return null;
}

/** The lead-event fields every kind fills the same way. */
function sharedEventFields(session: SessionBase, receivedAt: Date) {
  return {
    sessionId: session.id,
    receivedAt: receivedAt.toISOString(),
    visitorId: session.visitorId,
    utm: session.utm,
    employee: session.employee,
    employeeId: session.employeeId,
    trafficType: session.trafficType,
    entryPage: session.entryPage,
    tags: session.tags,
  };
}

export function classifySession(session: CoMagicSession, rules: SessionRules): Classification {
  if (session.kind === "call") {
    const direction = notInbound(session);
    if (direction) return { status: "ignored", reason: direction };
    const lost = isLost(session);
    if (!isTargetedCall(lost, session.totalSeconds, rules.minLostCallSeconds)) {
      return { status: "ignored", reason: "untargeted_call" };
    }
    if (!session.phone) return { status: "ignored", reason: "hidden_number" };
    const phone = normalizePhone(session.phone, rules.defaultRegion);
    if (!phone) return { status: "ignored", reason: "unparseable_phone" };
    return {
      status: "accepted",
      event: {
        ...sharedEventFields(session, rules.receivedAt),
        kind: "call",
        key: callKey(session.id),
        phone,
        email: null,
        name: null,
        recordingUrl: session.recordingUrl,
        call: { lost, totalSeconds: session.totalSeconds, talkSeconds: session.talkSeconds, waitSeconds: session.waitSeconds },
      },
    };
  }
  if (session.kind === "request") return classifyRequest(session, rules);
  if (session.chat) {
    const reason = chatIgnoreReason(session.chat);
    if (reason) return { status: "ignored", reason };
  }
  const phone = session.phone ? normalizePhone(session.phone, rules.defaultRegion) : null;
  const email = normalizeEmail(session.email);
  if (!phone && !email) return { status: "ignored", reason: "no_contact" };
  const { chat } = session;
  return {
    status: "accepted",
    event: {
      ...sharedEventFields(session, rules.receivedAt),
      kind: "chat",
      // Chat and call sessions are numbered separately in CoMagic, so the chat key carries a prefix.
      key: chatKey(session.id),
      phone,
      email,
      name: clip(session.name, TEXT_MAX),
      recordingUrl: null,
      call: null,
      ...(chat
        ? {
            chat: {
              channelType: clip(chat.channelType, 100),
              channelName: clip(chat.channelName, 200),
              status: clip(chat.status, 40),
              pageUrl: clip(chat.pageUrl, TEXT_MAX),
              ...(chat.messages ? cutTranscript(chat.messages) : { messages: null, omitted: 0 }),
            },
          }
        : {}),
    },
  };
}

/** lead-event.ts bounds free text at 2,000 characters: longer values are cut here, or the job would not parse. */
const TEXT_MAX = 2000;

function classifyRequest(session: Extract<CoMagicSession, { kind: "request" }>, rules: SessionRules): Classification {
  const { request } = session;
  // The report leaves technical requests out unless asked for them; one a source marks is nothing unless wanted.
  if (request.tech === true && !rules.includeTechRequests) return { status: "ignored", reason: "tech_request" };
  // A website form the worker itself uploaded to CoMagic (COMAGIC_FORMS, FACTS-loop §2): it has its lead already.
  if (request.formType === "DataAPI" && request.extId?.startsWith("form-")) return { status: "ignored", reason: "form_sent_by_worker" };
  const phone = session.phone ? normalizePhone(session.phone, rules.defaultRegion) : null;
  const email = normalizeEmail(session.email);
  if (!phone && !email) return { status: "ignored", reason: "no_contact" };
  return {
    status: "accepted",
    event: {
      ...sharedEventFields(session, rules.receivedAt),
      kind: "request",
      key: requestKey(session.id),
      phone,
      email,
      name: clip(session.name, TEXT_MAX),
      recordingUrl: null,
      call: null,
      request: {
        formName: clip(request.formName, 500),
        formType: clip(request.formType, 100),
        text: clip(request.text, TEXT_MAX),
        pageUrl: clip(request.pageUrl, TEXT_MAX),
        comment: clip(request.comment, TEXT_MAX),
      },
    },
  };
}
