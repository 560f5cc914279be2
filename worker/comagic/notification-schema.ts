import * as z from "zod";
import type { CoMagicSession, SessionBase } from "../domain/comagic-session";

/*
 * CoMagic notification bodies are templates an admin writes, with values substituted as JSON literals:
 * numbers may arrive as strings, lists as comma-separated strings, and any field may be null or absent.
 */

const scalar = z.union([z.string(), z.number(), z.boolean()]);

const optionalText = scalar
  .nullish()
  .transform((v) => (v === null || v === undefined ? null : String(v).trim() || null));

const optionalNumber = z
  .union([z.number(), z.string()])
  .nullish()
  .transform((v, ctx) => {
    if (v === null || v === undefined || (typeof v === "string" && v.trim() === "")) return null;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) {
      ctx.addIssue({ code: "custom", message: "must be a non-negative number" });
      return z.NEVER;
    }
    return n;
  });

const TRUE_WORDS = new Set(["true", "1", "yes", "y"]);
const FALSE_WORDS = new Set(["false", "0", "no", "n", ""]);
const optionalBoolean = z
  .union([z.boolean(), z.number(), z.string()])
  .nullish()
  .transform((v, ctx) => {
    if (v === null || v === undefined) return null;
    if (typeof v === "boolean") return v;
    const word = String(v).trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    ctx.addIssue({ code: "custom", message: "must be true or false" });
    return z.NEVER;
  });

const requiredId = z
  .union([z.string().trim().min(1).max(100), z.number().int().nonnegative()])
  .transform(String);

const requiredText = z.union([z.string().trim().min(1), z.number()]).transform(String);

const tagList = z
  .union([
    z.array(z.union([z.string(), z.number(), z.object({ tag_name: z.string() }).loose()])),
    z.string(),
  ])
  .nullish()
  .transform((v) => {
    if (v === null || v === undefined) return [];
    const items = typeof v === "string" ? v.split(",") : v.map((t) => (typeof t === "object" ? t.tag_name : String(t)));
    return items.map((t) => t.trim()).filter(Boolean).slice(0, 100);
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
    duration_total: optionalNumber,
    total_duration: optionalNumber,
    talk_duration: optionalNumber,
    wait_duration: optionalNumber,
    file_link: optionalText,
  })
  .loose()
  .refine((s) => s.visitor_phone_number ?? s.contact_phone_number, {
    error: "is required (visitor_phone_number or contact_phone_number)",
    path: ["visitor_phone_number"],
  })
  .transform(
    (s): CoMagicSession => ({
      ...seedSessionBase(s),
      kind: "call",
      lost: s.is_lost_call ?? s.is_lost,
      totalSeconds: s.duration_total ?? s.total_duration,
      talkSeconds: s.talk_duration,
      waitSeconds: s.wait_duration,
      recordingUrl: s.file_link,
    }),
  );

const seedChatSession = z
  .object({ ...seedSessionFields, visitor_name: optionalText, visitor_email: optionalText })
  .loose()
  .transform((s): CoMagicSession => ({ ...seedSessionBase(s), kind: "chat", name: s.visitor_name, email: s.visitor_email }));

/** A flat body made of CoMagic's own notification variables (the template in docs/). */
const flatCall = z
  .object({
    call_session_id: requiredId,
    contact_phone_number: requiredText,
    talk_time_duration: optionalNumber,
    total_time_duration: optionalNumber,
    wait_time_duration: optionalNumber,
    is_lost: optionalBoolean,
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
    const total = s.total_time_duration ?? (parts.length ? parts.reduce((a, b) => a + b, 0) : null);
    return {
      kind: "call",
      id: s.call_session_id,
      // "A call with no talk time is a lost call."
      lost: s.is_lost ?? !(s.talk_time_duration && s.talk_time_duration > 0),
      totalSeconds: total,
      talkSeconds: s.talk_time_duration,
      waitSeconds: s.wait_time_duration,
      phone: s.contact_phone_number,
      visitorId: s.visitor_id,
      utm: toUtm(s),
      employee: s.employee_full_name,
      trafficType: s.channel,
      entryPage: s.site_domain_name,
      tags: s.tag_names,
      recordingUrl: s.file_link,
    };
  });

export const CALL_EVENT = "call_session_completed";
export const CHAT_EVENT = "chat_session_completed";

const envelope = z
  .object({ event_type: z.string().nullish(), call_session: z.unknown().optional(), chat_session: z.unknown().optional(), call_session_id: z.unknown().optional() })
  .loose();

export type Notification = { type: "session"; session: CoMagicSession } | { type: "unknown_event"; eventType: string };

/**
 * Reads a parsed JSON body. Throws ZodError (with the failing field paths) when it is not a session.
 * An `event_type` we do not handle is reported, not rejected, so CoMagic does not retry it.
 */
export function parseNotification(body: unknown): Notification {
  const head = envelope.parse(body);
  const eventType = head.event_type ?? null;
  if (eventType !== null && eventType !== CALL_EVENT && eventType !== CHAT_EVENT) {
    return { type: "unknown_event", eventType };
  }
  if (eventType === CHAT_EVENT || (eventType === null && head.chat_session !== undefined)) {
    return { type: "session", session: z.object({ chat_session: seedChatSession }).parse(body).chat_session };
  }
  if (head.call_session !== undefined || head.call_session_id === undefined) {
    return { type: "session", session: z.object({ call_session: seedCallSession }).parse(body).call_session };
  }
  return { type: "session", session: flatCall.parse(body) };
}
