import * as z from "zod";
import type { CoMagicSession, SessionBase } from "../domain/comagic-session";

/*
 * CoMagic notification bodies are templates an admin writes, with values substituted as JSON literals:
 * numbers may arrive as strings, lists as comma-separated strings, and any field may be null, empty, absent,
 * or a placeholder CoMagic left as it was ("{{visitor_id}}") because the event has no such variable.
 * The schemas report facts only (null when the body does not say); every rule lives in domain/.
 */

const PLACEHOLDER = /^\{\{\s*[\w.]+\s*\}\}$/;

/** A value the template could not fill reads as absent: null, "", whitespace, or the placeholder itself. */
function unfilled(v: unknown): boolean {
  return v === null || v === undefined || (typeof v === "string" && (v.trim() === "" || PLACEHOLDER.test(v.trim())));
}

const scalar = z.union([z.string(), z.number(), z.boolean()]);

const optionalText = scalar.nullish().transform((v) => (unfilled(v) ? null : String(v).trim()));

const optionalNumber = z
  .union([z.number(), z.string()])
  .nullish()
  .transform((v, ctx) => {
    if (unfilled(v)) return null;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) {
      ctx.addIssue({ code: "custom", message: "must be a non-negative number" });
      return z.NEVER;
    }
    return n;
  });

const TRUE_WORDS = new Set(["true", "1", "yes", "y"]);
const FALSE_WORDS = new Set(["false", "0", "no", "n"]);
const optionalBoolean = z
  .union([z.boolean(), z.number(), z.string()])
  .nullish()
  .transform((v, ctx) => {
    if (unfilled(v)) return null;
    if (typeof v === "boolean") return v;
    const word = String(v).trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    ctx.addIssue({ code: "custom", message: "must be true or false" });
    return z.NEVER;
  });

/** CoMagic documents `in` and `out` only (FACTS-calls §3.3); anything else is unknown. */
const direction = scalar.nullish().transform((v): "in" | "out" | null => {
  const word = unfilled(v) ? "" : String(v).trim().toLowerCase();
  return word === "in" || word === "out" ? word : null;
});

const requiredId = z
  .union([
    z
      .string()
      .trim()
      .min(1)
      .max(100)
      .refine((s) => !PLACEHOLDER.test(s), { error: "was not filled in by CoMagic" }),
    z.number().int().nonnegative(),
  ])
  .transform(String);

const tagList = z
  .union([z.array(z.union([z.string(), z.number(), z.object({ tag_name: z.string() }).loose()])), z.string()])
  .nullish()
  .transform((v) => {
    if (v === null || v === undefined || unfilled(v)) return [];
    const items = typeof v === "string" ? v.split(",") : v.map((t) => (typeof t === "object" ? t.tag_name : String(t)));
    return items
      .map((t) => t.trim())
      .filter(Boolean)
      .slice(0, 100);
  });

const utmFields = {
  utm_source: optionalText,
  utm_medium: optionalText,
  utm_campaign: optionalText,
  utm_content: optionalText,
  utm_term: optionalText,
};

type UtmInput = { [K in keyof typeof utmFields]: string | null };
const toUtm = (s: UtmInput) => ({
  source: s.utm_source,
  medium: s.utm_medium,
  campaign: s.utm_campaign,
  content: s.utm_content,
  term: s.utm_term,
});

/** Fields the seed's call and chat objects share; CoMagic's own report names are accepted as aliases. */
const seedSessionFields = {
  id: requiredId,
  visitor_phone_number: optionalText,
  contact_phone_number: optionalText,
  visitor_id: optionalText,
  employee_full_name: optionalText,
  employee_id: optionalText,
  traffic_type: optionalText,
  channel: optionalText,
  site_domain_url: optionalText,
  site_domain_name: optionalText,
  tags: tagList,
  ...utmFields,
};
type SeedSession = { [K in keyof typeof seedSessionFields]: z.output<(typeof seedSessionFields)[K]> };

function seedSessionBase(s: SeedSession): SessionBase {
  return {
    id: s.id,
    phone: s.visitor_phone_number ?? s.contact_phone_number,
    visitorId: s.visitor_id,
    utm: toUtm(s),
    employee: s.employee_full_name,
    employeeId: s.employee_id,
    trafficType: s.traffic_type ?? s.channel,
    entryPage: s.site_domain_url ?? s.site_domain_name,
    tags: s.tags,
  };
}

/** The seed article's `call_session` object. */
const seedCallSession = z
  .object({
    ...seedSessionFields,
    is_lost_call: optionalBoolean,
    is_lost: optionalBoolean,
    direction,
    is_internal: optionalBoolean,
    duration_total: optionalNumber,
    total_duration: optionalNumber,
    talk_duration: optionalNumber,
    wait_duration: optionalNumber,
    file_link: optionalText,
  })
  .loose()
  .transform(
    (s): CoMagicSession => ({
      ...seedSessionBase(s),
      kind: "call",
      direction: s.direction,
      internal: s.is_internal,
      lost: s.is_lost_call ?? s.is_lost,
      totalSeconds: s.duration_total ?? s.total_duration,
      talkSeconds: s.talk_duration,
      waitSeconds: s.wait_duration,
      recordingUrl: s.file_link,
      startedByWorker: false,
    }),
  );

const seedChatSession = z
  .object({ ...seedSessionFields, visitor_name: optionalText, visitor_email: optionalText })
  .loose()
  .transform((s): CoMagicSession => ({ ...seedSessionBase(s), kind: "chat", name: s.visitor_name, email: s.visitor_email }));

/**
 * A flat body of CoMagic's own notification variables: the "Завершение звонка" / "Call finished" template
 * in docs/, or any real call template (FACTS-calls §3.2). Only `call_session_id` is required; variables seen
 * only in third-party consumers (visitor_id, site_domain_name, is_lost, …) and the utm_* and file_link variables are read when present.
 */
const flatCall = z
  .object({
    call_session_id: requiredId,
    contact_phone_number: optionalText,
    direction,
    is_internal: optionalBoolean,
    talk_time_duration: optionalNumber,
    total_time_duration: optionalNumber,
    wait_time_duration: optionalNumber,
    is_lost: optionalBoolean,
    employee_id: optionalText,
    employee_full_name: optionalText,
    tag_names: tagList,
    visitor_id: optionalText,
    channel: optionalText,
    site_domain_name: optionalText,
    file_link: optionalText,
    ...utmFields,
  })
  .loose()
  .transform((s): CoMagicSession => {
    const parts = [s.wait_time_duration, s.talk_time_duration].filter((n): n is number => n !== null);
    return {
      kind: "call",
      id: s.call_session_id,
      direction: s.direction,
      internal: s.is_internal,
      lost: s.is_lost,
      totalSeconds: s.total_time_duration ?? (parts.length ? parts.reduce((a, b) => a + b, 0) : null),
      talkSeconds: s.talk_time_duration,
      waitSeconds: s.wait_time_duration,
      phone: s.contact_phone_number,
      visitorId: s.visitor_id,
      utm: toUtm(s),
      employee: s.employee_full_name,
      employeeId: s.employee_id,
      trafficType: s.channel,
      entryPage: s.site_domain_name,
      tags: s.tag_names,
      recordingUrl: s.file_link,
      startedByWorker: false,
    };
  });

export const CALL_EVENT = "call_session_completed";
export const CHAT_EVENT = "chat_session_completed";

const envelope = z.object({ event_type: optionalText, call_session: z.unknown().optional(), chat_session: z.unknown().optional(), call_session_id: z.unknown().optional() }).loose();
type Envelope = z.infer<typeof envelope>;

/** Each body shape the worker reads: the first whose `detect` holds is parsed with its schema. */
const SHAPES: { name: string; detect: (head: Envelope) => boolean; schema: z.ZodType<CoMagicSession> }[] = [
  {
    name: "seed chat_session",
    detect: (h) => h.event_type === CHAT_EVENT || (h.event_type === null && h.chat_session !== undefined),
    schema: z.object({ chat_session: seedChatSession }).transform((b) => b.chat_session),
  },
  {
    name: "seed call_session",
    detect: (h) => h.call_session !== undefined || h.call_session_id === undefined,
    schema: z.object({ call_session: seedCallSession }).transform((b) => b.call_session),
  },
  { name: "flat call template", detect: () => true, schema: flatCall },
];

/**
 * A notification that only names a chat or request (no source documents the variables of chat or request
 * notifications: FACTS-calls §3.2). The minimal template docs/comagic-notification.md gives sends
 * `communication_type` + `communication_id`, variables CoMagic's call notifications are known to carry
 * (FACTS.md §4) and both reports filter by; `chat_id` / `offline_message_id` are read too.
 */
const communicationIds = z
  .object({
    communication_type: optionalText,
    communication_id: optionalText,
    chat_id: optionalText,
    offline_message_id: optionalText,
  })
  .loose();
type FetchAsk = { kind: "chat" | "request"; field: "id" | "communication_id"; id: string };
const idOnly = (v: string | null) => (v !== null && /^\d{1,20}$/.test(v) ? v : null);
function fetchAsk(body: unknown): FetchAsk | null {
  const b = communicationIds.safeParse(body);
  if (!b.success) return null;
  const { communication_type: type, communication_id: commId, chat_id: chatId, offline_message_id: requestId } = b.data;
  if (idOnly(chatId)) return { kind: "chat", field: "id", id: idOnly(chatId) as string };
  if (idOnly(requestId)) return { kind: "request", field: "id", id: idOnly(requestId) as string };
  if (idOnly(commId) && (type === "chat" || type === "offline_message")) return { kind: type === "chat" ? "chat" : "request", field: "communication_id", id: idOnly(commId) as string };
  return null;
}

export type Notification = { type: "session"; session: CoMagicSession } | { type: "unknown_event"; eventType: string } | ({ type: "fetch" } & FetchAsk);

/**
 * Reads a parsed JSON body. Throws ZodError (with the failing field paths) when it is not a session.
 * An `event_type` we do not handle is reported, not rejected, so CoMagic does not retry it.
 */
export function parseNotification(body: unknown): Notification {
  const head = envelope.parse(body);
  // A body naming a chat or request id (and no call) asks for that record to be read: the worker reads it itself.
  const ask = head.call_session === undefined && head.call_session_id === undefined && head.chat_session === undefined ? fetchAsk(body) : null;
  if (ask) return { type: "fetch", ...ask };
  const eventType = head.event_type;
  if (eventType !== null && eventType !== CALL_EVENT && eventType !== CHAT_EVENT) {
    return { type: "unknown_event", eventType };
  }
  const shape = SHAPES.find((s) => s.detect(head)) as (typeof SHAPES)[number];
  return { type: "session", session: shape.schema.parse(body) };
}
