/**
 * A website form that reached Bitrix24, as the `upload.offline_messages` message that makes CoMagic count it as the
 * site's request (issue #25 §2; FACTS-loop §2; loop-docs/data_api__communication__upload_offline_messages.txt, "l.N").
 * CoMagic needs a phone (E.164) or an email (l.15) and a visitor session or a site (l.14); the session is the one the
 * snippet read from CoMagic's script at submit (`comagic_session_id`, Comagic.getSessionId(), l.31), the site the
 * portal's setting. Only the session is sent when there is one: with both, CoMagic wants them consistent (l.14), and
 * a wrong site setting would cost a form that the session alone places right.
 * Pure: the time of "now" and the account's time zone come in.
 */
import type { LeadEvent } from "./lead-event";
import { formatComagicDateTime } from "./comagic-time";
import { phoneCountryAndType } from "./phone";

/** One message as upload.offline_messages takes it (l.51-61); fields left out are absent, not null. */
export interface OfflineMessage {
  /** "YYYY-MM-DD hh:mm:ss" on the account's wall clock; not in the future, after the session's start (l.24-25). */
  date_time: string;
  name?: string;
  /** E.164 as CoMagic spells it: digits, no "+" (call_api__create_call__start_employee_call.txt:80 "79091234567"). */
  phone?: string;
  email?: string;
  message?: string;
  visitor_session_id?: number;
  site_id?: number;
  form_name?: string;
  /** Our ledger key: the report can be filtered by it (get_offline_messages_report.txt:164). */
  ext_id: string;
}

/** What the worker keeps of a website form (domain/form-submission.ts readFormSubmission). */
export type FormLead = Pick<LeadEvent, "key" | "receivedAt" | "phone" | "email" | "name" | "form">;

export type OfflineMessageOutcome = { ok: true; message: OfflineMessage } | { ok: false; reason: "no_contact" | "no_session_or_site" | "too_old" };

/**
 * No form older than this is sent. The docs bound only the session's age against date_time (l.31, 180 days), which a
 * form's own time always meets; but a form held back that long (a backfill, a long outage) would land in report
 * periods already read and paid for, so the worker keeps to the one age the method names.
 */
const MAX_FORM_AGE_MS = 180 * 86_400_000;
/** CoMagic's ids are integers (~10 digits, comagic/FACTS.md §2.7); anything else from the page is not a session. */
const SESSION_ID = /^[1-9]\d{0,15}$/;

function sessionIdOf(raw: string | null | undefined): number | null {
  if (!raw || !SESSION_ID.test(raw)) return null;
  const id = Number(raw);
  return Number.isSafeInteger(id) ? id : null;
}

/** The upload for a form, or why there is none. */
export function offlineMessageOf(form: FormLead, settings: { siteId: number | null; timeZone: string }, now: number): OfflineMessageOutcome {
  // The event's phone was normalised at the edge; checked again because a queue message may come from an older deploy.
  const phone = form.phone !== null && phoneCountryAndType(form.phone) !== null ? form.phone.replace(/^\+/, "") : null;
  const email = form.email;
  if (phone === null && email === null) return { ok: false, reason: "no_contact" };

  const sessionId = sessionIdOf(form.form?.comagicSessionId);
  if (sessionId === null && settings.siteId === null) return { ok: false, reason: "no_session_or_site" };

  const receivedAt = Date.parse(form.receivedAt);
  if (now - receivedAt > MAX_FORM_AGE_MS) return { ok: false, reason: "too_old" };

  const message: OfflineMessage = {
    // l.24 "Не может быть в будущем": receivedAt is the clock of the isolate that took the form, which may be ahead.
    date_time: formatComagicDateTime(new Date(Number.isFinite(receivedAt) ? Math.min(receivedAt, now) : now), settings.timeZone),
    ext_id: form.key,
  };
  if (form.name) message.name = form.name;
  if (phone !== null) message.phone = phone;
  if (email !== null) message.email = email;
  if (form.form?.message) message.message = form.form.message;
  if (form.form?.name) message.form_name = form.form.name;
  if (sessionId !== null) message.visitor_session_id = sessionId;
  else if (settings.siteId !== null) message.site_id = settings.siteId;
  return { ok: true, message };
}
