import { crmTexts, type CrmTexts } from "../i18n/crm-texts";
import type { CountryCode } from "libphonenumber-js/core";
import { buildLeadComment, buildLeadTitle } from "./lead-comment";
import { UTM_KEYS, type LeadEvent, type Utm } from "./lead-event";
import { normalizePhone } from "./phone";
import { responsibleUserId, type ResponsibleRules } from "./responsible";
import { contactTrust, isAnchored } from "./verified-source";

export const ORIGINATOR_ID = "comagic";

/** Custom lead fields this product writes; codes stay within Bitrix's 13 characters after UF_CRM_. */
export const LEAD_FIELD = {
  comagicId: "UF_CRM_COMAGIC_ID",
  visitorId: "UF_CRM_CM_VISITOR_ID",
  sessions: "UF_CRM_CM_SESSIONS",
  firstSource: "UF_CRM_CM_FIRST_SRC",
  lastSource: "UF_CRM_CM_LAST_SRC",
} as const;

/*
 * SOURCE_ID: standard Bitrix24 sources only (B/FACTS.md §2.1), since a portal's own list differs. Bitrix24 has
 * no chat source: a website chat (and the legacy body, which names no channel) is WEB, an email chat EMAIL, a
 * messenger or marketplace chat OTHER (its channel is in the title); a CoMagic request is a website form, WEBFORM.
 */
export const SOURCE_BY_KIND: Record<LeadEvent["kind"], string> = {
  call: "CALL",
  chat: "WEB",
  form: "WEB",
  request: "WEBFORM",
};

export function leadSourceId(event: Pick<LeadEvent, "kind" | "chat">): string {
  const channel = event.kind === "chat" ? event.chat?.channelType : null;
  if (!channel || channel === "comagic") return SOURCE_BY_KIND[event.kind];
  return channel === "email" ? "EMAIL" : "OTHER";
}

/** What the lead store knows about an existing lead, values as Bitrix returns them (strings). */
export interface LeadSnapshot {
  id: string;
  statusSemantic: string | null;
  dateCreate: string | null;
  name: string | null;
  phones: string[];
  emails: string[];
  utm: Utm;
  visitorId: string | null;
}

export type LeadFields = Record<string, unknown>;

export interface PlanRules {
  now: Date;
  dedupDays: number;
  defaultRegion: CountryCode;
  /** REQUIRED_FIELD_DEFAULTS: values for fields a portal requires and the worker does not fill itself. */
  requiredFieldDefaults?: Readonly<Record<string, string | number>>;
  /** Who a new lead is assigned to; without it Bitrix24 assigns the webhook's user. */
  responsible?: ResponsibleRules;
  /** LOST_CALL_TODO_MINUTES: when the call-back to-do of a lost call is due. */
  callBackMinutes?: number;
  /** CRM_LANGUAGE: the language of what the worker writes into Bitrix24 (English when unset). */
  language?: "ru" | "en";
  /** DEAL_CATEGORY_ID / DEAL_STAGE_ID: where a new deal of a portal without leads goes (else the general funnel's first stage). */
  dealPipeline?: { categoryId: number; stageId: string | null } | null;
}

const DAY_MS = 86_400_000;

/**
 * The most recently created item still in progress (stage semantic P) inside the dedup window, if any: the
 * rule for leads and for deals alike.
 */
export function pickOpen<T extends { id: string; dateCreate: string | null }>(items: readonly T[], semanticOf: (item: T) => string | null, rules: Pick<PlanRules, "now" | "dedupDays">): T | null {
  const since = rules.now.getTime() - rules.dedupDays * DAY_MS;
  const open = items
    .map((item) => ({ item, created: item.dateCreate ? Date.parse(item.dateCreate) : Number.NaN }))
    .filter(({ item, created }) => semanticOf(item) === "P" && created >= since)
    .sort((a, b) => b.created - a.created || Number(b.item.id) - Number(a.item.id));
  return open[0]?.item ?? null;
}

/** The most recent open lead (status semantic P) created inside the dedup window, if any. */
export function pickOpenLead(candidates: readonly LeadSnapshot[], rules: Pick<PlanRules, "now" | "dedupDays">): LeadSnapshot | null {
  return pickOpen(candidates, (lead) => lead.statusSemantic, rules);
}

function utmFields(utm: Utm, keep: (key: (typeof UTM_KEYS)[number]) => boolean): LeadFields {
  const fields: LeadFields = {};
  for (const key of UTM_KEYS) {
    const value = utm[key];
    if (value && keep(key)) fields[`UTM_${key.toUpperCase()}`] = value;
  }
  return fields;
}

/** The UTMs a lead is credited to: a form's first touch when the visitor had one, else the contact's own. */
export function creationUtm(event: LeadEvent): Utm {
  const first = event.form?.firstUtm;
  return first && UTM_KEYS.some((k) => first[k]) ? first : event.utm;
}

export function newLeadFields(
  event: LeadEvent,
  requiredFieldDefaults: Readonly<Record<string, string | number>> = {},
  responsible: ResponsibleRules | null = null,
  texts: CrmTexts = crmTexts("en"),
): LeadFields {
  const assignee = responsible ? responsibleUserId(event, responsible) : null;
  const description = sourceDescription(event);
  return {
    // First, so that what the event itself says always wins.
    ...requiredFieldDefaults,
    ...(assignee ? { ASSIGNED_BY_ID: assignee } : {}),
    TITLE: buildLeadTitle(event, texts),
    ...(event.name ? { NAME: event.name } : {}),
    ...(event.phone ? { PHONE: [{ VALUE: event.phone, VALUE_TYPE: "WORK" }] } : {}),
    ...(event.email ? { EMAIL: [{ VALUE: event.email, VALUE_TYPE: "WORK" }] } : {}),
    SOURCE_ID: leadSourceId(event),
    ...(description ? { SOURCE_DESCRIPTION: description } : {}),
    STATUS_ID: "NEW",
    OPENED: "Y",
    ORIGINATOR_ID,
    ORIGIN_ID: event.key,
    [LEAD_FIELD.comagicId]: event.key,
    ...(event.visitorId ? { [LEAD_FIELD.visitorId]: event.visitorId } : {}),
    ...utmFields(creationUtm(event), () => true),
    COMMENTS: buildLeadComment(event, texts),
  };
}

/** The page a form or request was sent from, which SOURCE_DESCRIPTION shows beside the source. */
export function sourceDescription(event: LeadEvent): string | null {
  return event.form?.pageUrl ?? event.request?.pageUrl ?? null;
}

/**
 * The event's contact keys (lead-event.ts contactKeys) that a lead, contact or company already holds: its phones
 * compared as E.164, its emails lower-cased.
 */
export function heldContactKeys(event: Pick<LeadEvent, "phone" | "email">, holder: { phones: readonly string[]; emails: readonly string[] }, region: CountryCode): string[] {
  const keys: string[] = [];
  if (event.phone && holder.phones.some((p) => normalizePhone(p, region) === event.phone)) keys.push(`phone:${event.phone}`);
  if (event.email && holder.emails.some((e) => e.trim().toLowerCase() === event.email)) keys.push(`email:${event.email}`);
  return keys;
}

/**
 * Fields for an existing lead: never the status, never a phone or email it already has (a multi-field
 * entry without ID *adds* a value in Bitrix), first-touch UTMs kept, the latest session recorded. An event that
 * does not speak for the lead (a website form, a site chat, a request: verified-source.ts) changes nothing but
 * the event key, and one that does adds only the contacts its channel vouches for: the rest goes on the timeline.
 */
export function updateLeadFields(event: LeadEvent, lead: LeadSnapshot, region: CountryCode): LeadFields {
  const fields: LeadFields = { [LEAD_FIELD.comagicId]: event.key };
  const held = heldContactKeys(event, lead, region);
  if (!isAnchored(event, held)) return fields;
  const trust = contactTrust(event);
  if (trust.phone && event.phone && !held.includes(`phone:${event.phone}`)) fields.PHONE = [{ VALUE: event.phone, VALUE_TYPE: "WORK" }];
  if (trust.email && event.email && !held.includes(`email:${event.email}`)) fields.EMAIL = [{ VALUE: event.email, VALUE_TYPE: "WORK" }];
  if (event.name && !lead.name) fields.NAME = event.name;
  if (event.visitorId && !lead.visitorId) fields[LEAD_FIELD.visitorId] = event.visitorId;
  Object.assign(
    fields,
    utmFields(creationUtm(event), (key) => !lead.utm[key]),
  );
  return fields;
}
