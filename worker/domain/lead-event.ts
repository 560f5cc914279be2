import * as z from "zod";

const text = z.string().max(2000).nullable();

export const utmSchema = z.object({
  source: text,
  medium: text,
  campaign: text,
  content: text,
  term: text,
});
export type Utm = z.infer<typeof utmSchema>;
export const UTM_KEYS = ["source", "medium", "campaign", "content", "term"] as const;

export const EMPTY_UTM: Utm = { source: null, medium: null, campaign: null, content: null, term: null };

/** One line of a chat's transcript: who (the client, an employee, a bot or CoMagic itself), when (CoMagic's local time), what. */
export const chatLineSchema = z.object({
  at: z.string().max(40).nullable(),
  from: z.enum(["client", "employee", "bot", "system"]),
  name: text,
  text: z.string().max(2000),
  file: z.object({ name: text, url: text }).nullable(),
});
export type ChatLine = z.infer<typeof chatLineSchema>;

/**
 * One contact a lead is made from, normalised at the edge (phone in E.164, email lower-cased).
 * It is the body of a queue message, so older deploys' messages must keep parsing: add fields as optional.
 */
export const leadEventSchema = z.object({
  /** `request`: a CoMagic request ("заявка", get.offline_messages_report); `form`: a website form through our snippet. */
  kind: z.enum(["call", "chat", "form", "request"]),
  /** Idempotency key: written to ORIGIN_ID on create and to UF_CRM_COMAGIC_ID on every write. */
  key: z.string().min(1).max(120),
  sessionId: z.string().min(1).max(100),
  receivedAt: z.iso.datetime(),
  /** When it happened by CoMagic's own clock (a report row's start_time); optional: older messages and notifications lack it. */
  occurredAt: z.iso.datetime().optional(),
  /** Read from CoMagic's own report (the feed), which is the call's record already: no record to read afterwards. */
  fromReport: z.boolean().optional(),
  phone: z
    .string()
    .regex(/^\+\d{6,15}$/)
    .nullable(),
  email: z.string().max(254).nullable(),
  name: text,
  visitorId: text,
  utm: utmSchema,
  employee: text,
  /** CoMagic's id of the employee who answered; optional so messages from older deploys still parse. */
  employeeId: text.optional(),
  trafficType: text,
  entryPage: text,
  tags: z.array(z.string().max(200)).max(100),
  recordingUrl: text,
  call: z
    .object({
      lost: z.boolean(),
      totalSeconds: z.number().nonnegative().nullable(),
      talkSeconds: z.number().nonnegative().nullable(),
      waitSeconds: z.number().nonnegative().nullable(),
    })
    .nullable(),
  /** Website forms only; optional so that messages queued before forms existed still parse. */
  form: z
    .object({
      name: text,
      pageUrl: text,
      referrer: text,
      message: text,
      /** The visitor's first tagged visit (the snippet keeps it 90 days); `utm` is the last one. */
      firstUtm: utmSchema,
      comagicSessionId: text,
      clickIds: z.record(z.string().max(40), z.string().max(300)),
      /** Fields the form had that we do not map, kept for the comment so nothing is lost. */
      extra: z.record(z.string().max(100), z.string().max(2000)),
    })
    .nullable()
    .optional(),
  /**
   * A CoMagic chat's channel and what was said (cut by domain/comagic-chat.ts); optional: older messages and
   * the legacy chat_session body have none. The channel decides which contacts are verified (verified-source.ts).
   */
  chat: z
    .object({
      /** get.chats_report `chat_channel_type` (`comagic` is the website chat, `whatsapp`, `telegram`, …). */
      channelType: text,
      channelName: text,
      status: text,
      pageUrl: text,
      /** null when the messages were not read. */
      messages: z.array(chatLineSchema).max(100).nullable(),
      /** Messages left out of `messages` to keep the comment short. */
      omitted: z.number().int().nonnegative(),
    })
    .nullable()
    .optional(),
  /** A CoMagic request's form and text; optional, as for `chat`. */
  request: z
    .object({
      formName: text,
      formType: text,
      text: text,
      pageUrl: text,
      /** `properties`: the comment a callback form may carry. */
      comment: text,
    })
    .nullable()
    .optional(),
});
export type LeadEvent = z.infer<typeof leadEventSchema>;

/** The person's normalised contacts, as the ledger records which lead each was written to. */
export function contactKeys(event: Pick<LeadEvent, "phone" | "email">): string[] {
  const keys: string[] = [];
  if (event.phone) keys.push(`phone:${event.phone}`);
  if (event.email) keys.push(`email:${event.email}`);
  return keys;
}

/** The keys two events share when they concern the same person or the same session. */
export function identityKeys(event: LeadEvent): string[] {
  return [`key:${event.key}`, ...contactKeys(event)];
}
