import type { CountryCode } from "libphonenumber-js/core";
import { normalizeEmail } from "./comagic-session";
import { UTM_KEYS, type LeadEvent, type Utm } from "./lead-event";
import { normalizePhone } from "./phone";

/** A website form as posted, every value a string. */
export type FormFields = Record<string, string>;

/** Fields with a meaning of their own; every other field goes into the lead's comment. */
const MAPPED = new Set([
  "name",
  "phone",
  "email",
  "comment",
  "message",
  "form_name",
  "comagic_visitor_id",
  "comagic_session_id",
  "page_url",
  "referrer",
  "submission_id",
  "_hp",
  "_redirect",
  ...UTM_KEYS.flatMap((k) => [`utm_${k}`, `first_utm_${k}`]),
  // The snippet keeps the first touch's click ids too; the last touch's are the ones a lead carries.
  "first_gclid",
  "first_yclid",
]);
const CLICK_IDS = ["gclid", "yclid", "ga_client_id", "ym_uid"];

/** Query parameters a page or referrer URL keeps: attribution, never a session id or a reset link's token. */
const KEPT_URL_PARAMS = /^(utm_[a-z]+|gclid|yclid|ymclid|_openstat)$/;

/** The URL with only attribution parameters left in its query, and no fragment; null when it is not a URL. */
export function attributionUrl(raw: string | null): string | null {
  if (!raw) return null;
  try {
    const url = new URL(raw);
    for (const key of [...url.searchParams.keys()]) if (!KEPT_URL_PARAMS.test(key)) url.searchParams.delete(key);
    url.hash = "";
    return url.toString();
  } catch {
    return null;
  }
}

/** The snippet sends Google Analytics' `_ga` cookie as it is (GA1.2.<client id>); the lead shows the client id. */
function clickId(key: string, raw: string): string {
  const gaClientId = key === "ga_client_id" ? /^GA\d+\.\d+\.(.+)$/.exec(raw)?.[1] : undefined;
  return (gaClientId ?? raw).slice(0, 300);
}

/** CoMagic visitor ids are numbers; anything else in the field is dropped, never stored or sent on to CoMagic. */
const VISITOR_ID = /^\d{1,20}$/;
// Enough for any real form; a flood of fields is abuse, not a lead.
const MAX_EXTRA_FIELDS = 50;
const MAX_VALUE_LENGTH = 2000;

export type FormValidation = { ok: true; event: LeadEvent } | { ok: false; issues: { path: string; message: string }[] };

const value = (fields: FormFields, key: string): string | null => {
  const v = fields[key]?.trim();
  return v ? v.slice(0, MAX_VALUE_LENGTH) : null;
};

function utm(fields: FormFields, prefix: string): Utm {
  return Object.fromEntries(UTM_KEYS.map((k) => [k, value(fields, `${prefix}utm_${k}`)])) as Utm;
}

/**
 * Turns a posted form into a lead event. A phone or an email is required; a phone that cannot be read
 * does not fail the form when a valid email is there (the raw number is kept in the comment). The fields
 * come without secrets: the route drops them (withoutSecretFields) before anything reads the form.
 */
export function readFormSubmission(fields: FormFields, options: { key: string; receivedAt: Date; defaultRegion: CountryCode }): FormValidation {
  const rawPhone = value(fields, "phone");
  const rawEmail = value(fields, "email");
  const phone = rawPhone ? normalizePhone(rawPhone, options.defaultRegion) : null;
  const email = normalizeEmail(rawEmail);
  if (!phone && !email) {
    const issues = [];
    if (rawPhone) issues.push({ path: "phone", message: "is not a valid phone number" });
    if (rawEmail) issues.push({ path: "email", message: "is not a valid email address" });
    if (!rawPhone && !rawEmail) issues.push({ path: "phone", message: "a phone or an email is required" }, { path: "email", message: "a phone or an email is required" });
    return { ok: false, issues };
  }

  const extra: Record<string, string> = {};
  if (rawPhone && !phone) extra.phone = rawPhone;
  if (rawEmail && !email) extra.email = rawEmail;
  for (const key of Object.keys(fields)) {
    if (MAPPED.has(key) || CLICK_IDS.includes(key) || Object.keys(extra).length >= MAX_EXTRA_FIELDS) continue;
    const v = value(fields, key);
    if (v) extra[key.slice(0, 100)] = v;
  }
  const clickIds = Object.fromEntries(CLICK_IDS.flatMap((k) => (value(fields, k) ? [[k, clickId(k, value(fields, k) as string)]] : [])));

  const visitorId = value(fields, "comagic_visitor_id");
  const pageUrl = attributionUrl(value(fields, "page_url"));
  return {
    ok: true,
    event: {
      kind: "form",
      key: options.key,
      sessionId: options.key,
      receivedAt: options.receivedAt.toISOString(),
      phone,
      email,
      name: value(fields, "name"),
      visitorId: visitorId && VISITOR_ID.test(visitorId) ? visitorId : null,
      utm: utm(fields, ""),
      employee: null,
      trafficType: null,
      entryPage: pageUrl,
      tags: [],
      recordingUrl: null,
      call: null,
      form: {
        name: value(fields, "form_name"),
        pageUrl,
        referrer: attributionUrl(value(fields, "referrer")),
        message: value(fields, "message") ?? value(fields, "comment"),
        firstUtm: utm(fields, "first_"),
        comagicSessionId: value(fields, "comagic_session_id"),
        clickIds,
        extra,
      },
    },
  };
}

/**
 * The form's idempotency key input: the snippet's page-view id (or, for a plain HTML form, a 10-minute
 * window) plus the content, so a double click or a resubmission of the same form is one lead.
 */
export function formFingerprint(fields: FormFields, now: Date): string {
  const window = fields.submission_id?.trim() || `t${Math.floor(now.getTime() / 600_000)}`;
  const content = Object.entries(fields)
    .filter(([k]) => k !== "submission_id" && k !== "_redirect")
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify([window, content]);
}
