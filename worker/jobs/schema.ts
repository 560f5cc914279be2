import * as z from "zod";
import { leadEventSchema } from "../domain/lead-event";

/** A lead to write. Versioned: a message may have been sent by an older deploy. */
export const leadJobSchema = z.object({
  type: z.literal("lead.ingest"),
  v: z.literal(1),
  requestId: z.string().max(200),
  event: leadEventSchema,
});
export type LeadJob = z.infer<typeof leadJobSchema>;

/** Fill a lead's CoMagic fields and cache its visitor's touchpoints. */
export const enrichJobSchema = z.object({
  type: z.literal("lead.enrich"),
  v: z.literal(1),
  requestId: z.string().max(200),
  leadId: z.string().regex(/^\d+$/),
  visitorId: z.string().min(1).max(100),
});
export type EnrichJob = z.infer<typeof enrichJobSchema>;

/**
 * Read a call's record from CoMagic (get.calls_report) once its report has it, and fill the lead from it:
 * UTMs, visitor and recording that the notification template could not carry.
 */
export const callRecordJobSchema = z.object({
  type: z.literal("call.record"),
  v: z.literal(1),
  requestId: z.string().max(200),
  leadId: z.string().regex(/^\d+$/),
  sessionId: z.string().min(1).max(100),
  /** When the notification arrived: the call started before it, so the report is searched around it. */
  calledAt: z.iso.datetime(),
  /** The visitor the notification named, if any: it is enriched already, so the record's is enriched only when new. */
  visitorId: z.string().min(1).max(100).nullable(),
  /** The recording the notification already put on the lead (`file_link`), so the record does not repeat it. */
  recordingUrl: z.string().max(2000).nullable(),
});
export type CallRecordJob = z.infer<typeof callRecordJobSchema>;

/** Work that follows a lead's write, on the enrichment queue (it calls CoMagic's Data API, not Bitrix24 first). */
export type FollowUpJob = EnrichJob | CallRecordJob;

export interface FollowUpSender {
  send(jobs: FollowUpJob[]): Promise<void>;
}

export const jobSchema = z.discriminatedUnion("type", [leadJobSchema, enrichJobSchema, callRecordJobSchema]);
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
