/*
 * Every queue message the worker sends, with its schema and the one function that builds it. A message may come
 * from an older deploy (a queue keeps it for days), so each schema reads those too: a job without `portal` was sent
 * before portals and is the default portal's.
 */
import * as z from "zod";
import { leadEventSchema } from "../domain/lead-event";
import { jobPortal } from "../domain/portal-key";

/** The envelope's version: every builder below stamps it, and only they do. */
const V = 1 as const;

/** What a builder takes: the job's own fields, the portal and request id, never the envelope. */
type Fields<S extends z.ZodType> = Omit<z.input<S>, "type" | "v" | "portal"> & { portal: string };

/** A lead to write. */
export const leadJobSchema = z.object({
  type: z.literal("lead.ingest"),
  v: z.literal(V),
  portal: jobPortal,
  requestId: z.string().max(200),
  event: leadEventSchema,
});
export type LeadJob = z.infer<typeof leadJobSchema>;

/** The one way to put an event on the lead queue. */
export const leadJob = (portal: string, event: LeadJob["event"], requestId: string): LeadJob => ({ type: "lead.ingest", v: V, portal, requestId, event });

/** Which entity a follow-up job writes to: a lead, or (portals without leads, repeat clients) a deal. Older messages name none: a lead. */
const writtenEntity = z.enum(["lead", "deal"]).default("lead");

/**
 * The id of the entity (`entity`: a lead or a deal) a follow-up writes to. Messages sent before the rename call it
 * `leadId`, whatever the entity: read either, and keep `entityId`.
 */
const entityIdFields = { entityId: z.string().regex(/^\d+$/).optional(), leadId: z.string().regex(/^\d+$/).optional() };
type WithEntityId = { entityId?: string | undefined; leadId?: string | undefined };
const hasEntityId = (job: WithEntityId) => (job.entityId ?? job.leadId) !== undefined;
const keepEntityId = <T extends WithEntityId>({ leadId, ...job }: T) => ({ ...job, entityId: (job.entityId ?? leadId) as string });
const NO_ENTITY_ID = { error: "has no entityId", path: ["entityId"] };
/** A follow-up builder's fields: the entity's id as `entityId`, never the old name. */
type EntityFields<S extends z.ZodType> = Omit<Fields<S>, "leadId" | "entityId"> & { entityId: string };

/** Fill a lead's (or deal's) CoMagic fields and cache its visitor's touchpoints. */
const enrichJobObject = z.object({
  type: z.literal("lead.enrich"),
  v: z.literal(V),
  portal: jobPortal,
  requestId: z.string().max(200),
  ...entityIdFields,
  entity: writtenEntity,
  visitorId: z.string().min(1).max(100),
  /** The deal came with a contact the worker made for it; older messages say nothing: none. */
  newContact: z.boolean().default(false),
  /**
   * When CoMagic recorded the call, chat or request that created the lead or deal (a feed read may come hours
   * later): the report dates the conversion by it. Absent (older messages, updates): the item's DATE_CREATE.
   */
  convertedAt: z.iso.datetime().optional(),
});
export const enrichJobSchema = enrichJobObject.refine(hasEntityId, NO_ENTITY_ID).transform(keepEntityId);
export type EnrichJob = z.infer<typeof enrichJobSchema>;

/**
 * Show a written call in Bitrix24 telephony (telephony.externalCall.register, finish, attachRecord): a call
 * activity with a player on the timeline, counted in the telephony reports (FACTS.md §2.9, FACTS-portals §7).
 */
export const callTelephonyJobSchema = z.object({
  type: z.literal("call.telephony"),
  v: z.literal(V),
  portal: jobPortal,
  requestId: z.string().max(200),
  /** The event key: EXTERNAL_CALL_ID, so a re-register after a lost answer returns the same call. */
  key: z.string().min(1).max(120),
  /** What the call binds to: CRM_ENTITY_TYPE takes LEAD, CONTACT or COMPANY (a deal's call goes to its contact). */
  crmEntity: z.object({ type: z.enum(["LEAD", "CONTACT", "COMPANY"]), id: z.string().regex(/^\d+$/) }),
  /** The responsible (the answering manager's user); null: DEFAULT_RESPONSIBLE_ID, else the webhook's user. */
  userId: z.string().regex(/^\d+$/).nullable(),
  phone: z.string().regex(/^\+\d{6,15}$/),
  startedAt: z.iso.datetime(),
  talkSeconds: z.number().nonnegative(),
  lost: z.boolean(),
  recordingUrl: z.string().max(2000).nullable(),
  /** A click-to-call (TYPE 1, outbound); otherwise an inbound client call (TYPE 2). */
  outbound: z.boolean().default(false),
});
export type CallTelephonyJob = z.infer<typeof callTelephonyJobSchema>;

/**
 * Read a call's record from CoMagic (get.calls_report) once its report has it, and fill the lead from it:
 * UTMs, visitor and recording that the notification template could not carry.
 */
const callRecordJobObject = z.object({
  type: z.literal("call.record"),
  v: z.literal(V),
  portal: jobPortal,
  requestId: z.string().max(200),
  ...entityIdFields,
  sessionId: z.string().min(1).max(100),
  /** When the notification arrived: the call started before it, so the report is searched around it. */
  calledAt: z.iso.datetime(),
  /** The visitor the notification named, if any: it is enriched already, so the record's is enriched only when new. */
  visitorId: z.string().min(1).max(100).nullable(),
  /** The recording the notification already put on the lead (`file_link`), so the record does not repeat it. */
  recordingUrl: z.string().max(2000).nullable(),
  entity: writtenEntity,
  /** Whether this call created the lead or deal: only then may the record's answering employee become its responsible. */
  created: z.boolean().default(false),
  /** The deal came with a contact the worker made: passed on to the enrichment the record starts. */
  newContact: z.boolean().default(false),
  /** Whether the notification named who answered (then the record does not reassign). */
  employeeKnown: z.boolean().default(false),
  /** The call's Bitrix24 telephony job, sent again with the record's recording when the notification had none. */
  telephony: callTelephonyJobSchema.nullable().default(null),
  /**
   * A click-to-call from a card: its record (duration, recording) only becomes a Bitrix24 outbound call; nothing
   * on the card is filled from it. Carries what that call binds to and who made it.
   */
  outbound: z
    .object({ crmEntity: callTelephonyJobSchema.shape.crmEntity, userId: z.string().regex(/^\d+$/), phone: z.string().regex(/^\+\d{6,15}$/) })
    .nullable()
    .default(null),
});
export const callRecordJobSchema = callRecordJobObject.refine(hasEntityId, NO_ENTITY_ID).transform(keepEntityId);
export type CallRecordJob = z.infer<typeof callRecordJobSchema>;

/** Work that follows a lead's write, on the enrichment queue (it calls CoMagic's Data API or Bitrix24 telephony). */
export type FollowUpJob = z.input<typeof followUpJobSchema>;

export interface FollowUpSender {
  /** Whether CoMagic's Data API is configured: without it, enrichment and call records are not queued. */
  readonly enrichment: boolean;
  send(jobs: FollowUpJob[]): Promise<void>;
}

/**
 * Read a chat or request a CoMagic notification named, at once rather than at the next feed read: by its own `id`
 * or by `communication_id` (both filterable in get.chats_report and get.offline_messages_report).
 */
export const comagicFetchJobSchema = z.object({
  type: z.literal("comagic.fetch"),
  v: z.literal(V),
  portal: jobPortal,
  requestId: z.string().max(200),
  kind: z.enum(["chat", "request"]),
  field: z.enum(["id", "communication_id"]),
  id: z.string().regex(/^\d{1,20}$/),
  /** When the notification came: the chat or request started before it, so the report is searched back from here. */
  notifiedAt: z.iso.datetime(),
});
export type ComagicFetchJob = z.infer<typeof comagicFetchJobSchema>;

/** The one way to ask for a notified chat or request to be read. */
export const comagicFetchJob = (portal: string, ask: Pick<ComagicFetchJob, "kind" | "field" | "id">, requestId: string, notifiedAt: Date): ComagicFetchJob => ({
  type: "comagic.fetch",
  v: V,
  portal,
  requestId,
  kind: ask.kind,
  field: ask.field,
  id: ask.id,
  notifiedAt: notifiedAt.toISOString(),
});

/**
 * One portal's share of a Cron Trigger run (the CoMagic feed when due, the report's sync): the cron sends one per
 * portal, so each runs within its own points, Bitrix24 budget and retries, and a slow portal holds up no other.
 */
export const portalTickJobSchema = z.object({
  type: z.literal("portal.tick"),
  v: z.literal(V),
  portal: jobPortal,
  requestId: z.string().max(200),
  /** The cron run's scheduled time: the feed reads up to it. */
  scheduledAt: z.iso.datetime(),
});
export type PortalTickJob = z.infer<typeof portalTickJobSchema>;
export const portalTickJob = (portal: string, scheduledAt: Date): PortalTickJob => ({
  type: "portal.tick",
  v: V,
  portal,
  requestId: `cron-${scheduledAt.toISOString()}`,
  scheduledAt: scheduledAt.toISOString(),
});

/**
 * A deal to send to CoMagic again (issue #25): what a dead letter of the deal loop holds, so its replay puts the deal
 * back in the journal's waiting list; the next tick re-reads and sends it (jobs/deal-loop.ts).
 */
export const dealUploadJobSchema = z.object({
  type: z.literal("deal.upload"),
  v: z.literal(V),
  portal: jobPortal,
  dealId: z.string().regex(/^\d+$/),
});
export type DealUploadJob = z.infer<typeof dealUploadJobSchema>;
export const dealUploadJob = (portal: string, dealId: string): DealUploadJob => ({ type: "deal.upload", v: V, portal, dealId });

export const enrichJob = (fields: EntityFields<typeof enrichJobObject>): z.input<typeof enrichJobSchema> => ({ type: "lead.enrich", v: V, ...fields });
export const callRecordJob = (fields: EntityFields<typeof callRecordJobObject>): z.input<typeof callRecordJobSchema> => ({ type: "call.record", v: V, ...fields });
export const callTelephonyJob = (fields: Fields<typeof callTelephonyJobSchema>): CallTelephonyJob => ({ type: "call.telephony", v: V, outbound: false, ...fields });

export const followUpJobSchema = z.discriminatedUnion("type", [enrichJobSchema, callRecordJobSchema, callTelephonyJobSchema]);
export const jobSchema = z.discriminatedUnion("type", [leadJobSchema, enrichJobSchema, callRecordJobSchema, callTelephonyJobSchema, comagicFetchJobSchema, portalTickJobSchema, dealUploadJobSchema]);
export type Job = z.infer<typeof jobSchema>;
export type QueueMessageBody = Job;

/** What a consumer sends to the dead-letter queue when it gives up on a job itself. */
export interface DeadLetter {
  type: "dead-letter";
  queue: string;
  job: unknown;
  reason: string;
  code: string;
  attempts: number;
  failedAt: string;
}

export interface DeadLetterSender {
  send(letter: DeadLetter, options?: QueueSendOptions): Promise<unknown>;
}
