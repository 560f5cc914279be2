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

export const jobSchema = z.discriminatedUnion("type", [leadJobSchema, enrichJobSchema]);
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
