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

export const queueMessageSchema = leadJobSchema;
export type QueueMessageBody = z.infer<typeof queueMessageSchema>;

/** What the consumer sends to the dead-letter queue when it gives up on a job itself. */
export interface DeadLetter {
  type: "dead-letter";
  job: unknown;
  reason: string;
  code: string;
  attempts: number;
  failedAt: string;
}
