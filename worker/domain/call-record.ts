import type { CoMagicSession } from "./comagic-session";
import { UTM_KEYS } from "./lead-event";
import { LEAD_FIELD, type LeadFields } from "./lead-plan";
import type { Utm } from "./lead-event";

/** A call as CoMagic's own call record (get.calls_report) has it: what a notification carries, and more. */
export type CallRecord = Extract<CoMagicSession, { kind: "call" }> & {
  /** CoMagic's detailed source (`source_name`). */
  source: string | null;
  siteDomain: string | null;
  campaignId: string | null;
  startTime: string | null;
  /** The call's communication id, not its session id (FACTS-loop §1.5 "Which id"): what a deal is linked by. */
  communicationId?: string | null;
};

export interface CallRecordUpdate {
  /** Lead fields the record fills; only those still empty, so nothing a person or an earlier contact set changes. */
  fields: LeadFields;
  /** The timeline entry with the recording and the call's source; null when there is no new recording to show. */
  comment: string | null;
}

/**
 * What the call record adds to the lead a call was written to. A minimal notification template carries no
 * UTMs, visitor or recording (FACTS-calls §3.2); the record does, a few minutes later. The call itself is on
 * the lead already (its comment), so the timeline gets a second entry only for a recording it does not show.
 */
export function callRecordUpdate(record: CallRecord, lead: { utm: Utm; visitorId: string | null }, recordingShown: string | null): CallRecordUpdate {
  const fields: LeadFields = {};
  for (const key of UTM_KEYS) {
    const value = record.utm[key];
    if (value && !lead.utm[key]) fields[`UTM_${key.toUpperCase()}`] = value;
  }
  if (record.visitorId && !lead.visitorId) fields[LEAD_FIELD.visitorId] = record.visitorId;

  if (!record.recordingUrl || record.recordingUrl === recordingShown) return { fields, comment: null };
  const lines = [
    `CoMagic call record, session ID: ${record.id}`,
    `Recording: ${record.recordingUrl}`,
    record.employee ? `Answered by: ${record.employee}` : null,
    record.source || record.trafficType ? `Source: ${[record.source, record.trafficType].filter(Boolean).join(", ")}` : null,
    record.siteDomain ? `Site: ${record.siteDomain}` : null,
  ].filter((line): line is string => line !== null);
  return { fields, comment: lines.join("\n") };
}
