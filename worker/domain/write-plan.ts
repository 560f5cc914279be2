import { crmTexts, type CrmTexts } from "../i18n/crm-texts";
import type { CountryCode } from "libphonenumber-js/core";
import type { CrmEntityRef, CrmMode } from "./crm-entity";
import { buildLeadComment, buildLeadTitle } from "./lead-comment";
import { contactKeys, UTM_KEYS, type LeadEvent, type Utm } from "./lead-event";
import {
  creationUtm,
  heldContactKeys,
  LEAD_FIELD,
  leadSourceId,
  newLeadFields,
  ORIGINATOR_ID,
  pickOpen,
  pickOpenLead,
  sourceDescription,
  updateLeadFields,
  type LeadFields,
  type LeadSnapshot,
  type PlanRules,
} from "./lead-plan";
import { responsibleUserId } from "./responsible";
import { contactTrust, isAnchored, isVerifiedSource, verifiedContactKeys } from "./verified-source";

/*
 * Where an event lands: the decision table the README shows.
 *
 * | portal  | what Bitrix24 already has                                   | the event becomes                                   |
 * |---------|-------------------------------------------------------------|-----------------------------------------------------|
 * | any     | an entity carrying the event's key                          | nothing (written before)                            |
 * | classic | an open lead of the person (inside LEAD_DEDUP_DAYS)         | a comment and empty fields on that lead             |
 * | classic | a client (contact/company) with an open deal (same window)  | a comment and empty fields on that deal             |
 * | classic | a client without an open deal                               | a new lead linked to the client (a repeat lead)     |
 * | classic | nobody                                                      | a new lead                                          |
 * | simple  | a client with an open deal (same window)                    | a comment and empty fields on that deal             |
 * | simple  | a client without an open deal                               | a new deal of that contact (or company)             |
 * | simple  | nobody                                                      | a new contact and a new deal                        |
 *
 * "Open": a lead's or deal's stage semantic is P (in progress). Existing contacts and companies are never
 * changed: the worker only reads them and links new leads and deals to them. What an event whose contacts are
 * unverified (a website form, a site chat, a CoMagic request) may change on what exists is in verified-source.ts.
 *
 * Every plan names the contact keys (`ties`) the ledger may tie to what it writes: only those the lead or client
 * holds once the write is done, so that a phone a form merely mentioned never leads a later call to a client;
 * and whether the event's visitor may be enriched onto and credited to what it wrote (`credit`).
 */

/** A deal as the store reads it: enough to tell whether it is open, whose it is, and which fields are empty. */
export interface DealSnapshot {
  id: string;
  stageSemantic: string | null;
  dateCreate: string | null;
  contactId: string | null;
  companyId: string | null;
  utm: Utm;
  visitorId: string | null;
}

/** A contact or company sharing a phone or email with the event. */
export interface ClientSnapshot {
  type: "contact" | "company";
  id: string;
  /** A contact's company, if it has one. */
  companyId: string | null;
  phones: string[];
  emails: string[];
}

export interface CrmLookup {
  /**
   * An entity that already carries this event's key (ORIGIN_ID of what it created, or UF_CRM_COMAGIC_ID); a deal
   * with its client; `created` when the event made it (its ORIGIN_ID).
   */
  applied: (CrmEntityRef & { client?: CrmEntityRef | null; created?: boolean }) | null;
  /** Leads sharing a phone or email with the event (classic portals). */
  leads: LeadSnapshot[];
  /** Contacts and companies sharing a phone or email, or made by this very event before (simple portals). */
  clients: ClientSnapshot[];
  /** Deals of those clients. */
  deals: DealSnapshot[];
  /**
   * Leads and clients above that only our ledger (contact_leads) named, not Bitrix24's duplicate search: a hint,
   * kept only when the record read back really holds the event's phone or email (confirmHints).
   */
  hinted?: readonly CrmEntityRef[];
}

/**
 * `ties`: the event's contact keys the lead (or a deal's client) holds after the write; the ledger records only
 * these. `credit`: the event's visitor may be enriched onto the lead or deal (what it created, or what it speaks for).
 */
export type WritePlan = { ties: string[]; credit: boolean } & (
  | { action: "skip"; target: CrmEntityRef; client?: CrmEntityRef | null; created: boolean }
  | { action: "create-lead"; fields: LeadFields }
  | { action: "update"; target: { type: "lead" | "deal"; id: string }; fields: LeadFields; comment: string; client: CrmEntityRef | null }
  | { action: "create-deal"; contact: { id: string } | { fields: LeadFields }; fields: LeadFields; client: CrmEntityRef | null }
);

export interface WriteRules extends PlanRules {
  mode: CrmMode;
}

/** The most recently created open deal (stage semantic P) inside the dedup window, if any. */
export function pickOpenDeal(deals: readonly DealSnapshot[], rules: Pick<PlanRules, "now" | "dedupDays">): DealSnapshot | null {
  return pickOpen(deals, (deal) => deal.stageSemantic, rules);
}

/** The client a new lead or deal is linked to: the newest contact, else the newest company. */
function pickClient(clients: readonly ClientSnapshot[]): { contact: ClientSnapshot | null; companyId: string | null } {
  const newest = (type: ClientSnapshot["type"]) => clients.filter((c) => c.type === type).sort((a, b) => Number(b.id) - Number(a.id))[0] ?? null;
  const contact = newest("contact");
  return { contact, companyId: contact?.companyId ?? newest("company")?.id ?? null };
}

function emptyUtmFields(event: LeadEvent, current: Utm): LeadFields {
  const fields: LeadFields = {};
  const utm = creationUtm(event);
  for (const key of UTM_KEYS) if (utm[key] && !current[key]) fields[`UTM_${key.toUpperCase()}`] = utm[key];
  return fields;
}

/**
 * A website form, a site chat or a CoMagic request is typed by anyone: naming a client's email, one may give
 * their own phone. What such an event gave that the lead or client does not get goes into the comment as
 * unverified, never into the record (verified-source.ts).
 */
export function unverifiedContactLine(
  event: LeadEvent,
  known: { phones: string[]; emails: string[]; visitorId: string | null; name?: string | null },
  region: CountryCode,
  entity: "lead" | "deal",
  t: CrmTexts = crmTexts("en"),
): string | null {
  if (isVerifiedSource(event)) return null;
  const held = heldContactKeys(event, known, region);
  const anchored = isAnchored(event, held);
  const trust = contactTrust(event);
  // A lead gets the vouched-for contacts of an event that speaks for it; a client (never changed) only keeps its own.
  const kept = (key: string, vouched: boolean) => held.includes(key) || (entity === "lead" && anchored && vouched);
  const given = [
    event.phone && !kept(`phone:${event.phone}`, trust.phone) ? t.phoneValue(event.phone) : null,
    event.email && !kept(`email:${event.email}`, trust.email) ? t.emailValue(event.email) : null,
    !anchored && event.name && event.name !== known.name ? t.nameValue(event.name) : null,
    !anchored && event.visitorId && event.visitorId !== known.visitorId ? t.visitorIdValue(event.visitorId) : null,
  ].filter((part): part is string => part !== null);
  const source = event.kind === "chat" || event.kind === "request" ? event.kind : "form";
  return given.length ? t.unverified(entity, given.join(", "), source) : null;
}

function withUnverified(line: string | null, event: LeadEvent, t: CrmTexts): string {
  return line ? `${line}\n${buildLeadComment(event, t)}` : buildLeadComment(event, t);
}

/** Fields of a new deal (simple portals), as a new lead would have them minus what deals do not carry. */
export function newDealFields(event: LeadEvent, rules: PlanRules, client: { contactId: string | null; companyId: string | null }): LeadFields {
  const assignee = rules.responsible ? responsibleUserId(event, rules.responsible) : null;
  const description = sourceDescription(event);
  return {
    ...(rules.requiredFieldDefaults ?? {}),
    ...(assignee ? { ASSIGNED_BY_ID: assignee } : {}),
    TITLE: buildLeadTitle(event, crmTexts(rules.language)),
    SOURCE_ID: leadSourceId(event),
    ...(description ? { SOURCE_DESCRIPTION: description } : {}),
    OPENED: "Y",
    ORIGINATOR_ID,
    ORIGIN_ID: event.key,
    // CATEGORY_ID is set once, on add (FACTS-portals §2: immutable).
    ...(rules.dealPipeline ? { CATEGORY_ID: rules.dealPipeline.categoryId, ...(rules.dealPipeline.stageId ? { STAGE_ID: rules.dealPipeline.stageId } : {}) } : {}),
    ...(client.contactId ? { CONTACT_ID: client.contactId } : {}),
    ...(client.companyId ? { COMPANY_ID: client.companyId } : {}),
    [LEAD_FIELD.comagicId]: event.key,
    ...(event.visitorId ? { [LEAD_FIELD.visitorId]: event.visitorId } : {}),
    ...emptyUtmFields(event, { source: null, medium: null, campaign: null, content: null, term: null }),
    COMMENTS: buildLeadComment(event, crmTexts(rules.language)),
  };
}

/** A new contact: Bitrix24 needs a NAME (FACTS-portals §3), so a nameless caller is named by their phone. */
export function newContactFields(event: LeadEvent, rules: PlanRules): LeadFields {
  const assignee = rules.responsible ? responsibleUserId(event, rules.responsible) : null;
  return {
    ...(rules.requiredFieldDefaults ?? {}),
    ...(assignee ? { ASSIGNED_BY_ID: assignee } : {}),
    NAME: event.name ?? event.phone ?? event.email ?? "CoMagic",
    ...(event.phone ? { PHONE: [{ VALUE: event.phone, VALUE_TYPE: "WORK" }] } : {}),
    ...(event.email ? { EMAIL: [{ VALUE: event.email, VALUE_TYPE: "WORK" }] } : {}),
    SOURCE_ID: leadSourceId(event),
    OPENED: "Y",
    ORIGINATOR_ID,
    ORIGIN_ID: event.key,
    ...emptyUtmFields(event, { source: null, medium: null, campaign: null, content: null, term: null }),
  };
}

function updateDeal(event: LeadEvent, deal: DealSnapshot, clients: readonly ClientSnapshot[], rules: WriteRules): WritePlan {
  const client: CrmEntityRef | null = deal.contactId ? { type: "contact", id: deal.contactId } : deal.companyId ? { type: "company", id: deal.companyId } : null;
  const owner = clients.find((c) => client && c.type === client.type && c.id === client.id);
  const known = { phones: owner?.phones ?? [], emails: owner?.emails ?? [], visitorId: deal.visitorId };
  // The deal's client holds what makes the deal the person's: the event speaks for it only through a vouched-for contact.
  const anchored = isAnchored(event, heldContactKeys(event, known, rules.defaultRegion));
  const fields: LeadFields = { [LEAD_FIELD.comagicId]: event.key, ...(anchored ? emptyUtmFields(event, deal.utm) : {}) };
  if (anchored && event.visitorId && !deal.visitorId) fields[LEAD_FIELD.visitorId] = event.visitorId;
  return {
    action: "update",
    target: { type: "deal", id: deal.id },
    fields,
    comment: withUnverified(unverifiedContactLine(event, known, rules.defaultRegion, "deal", crmTexts(rules.language)), event, crmTexts(rules.language)),
    client,
    // Existing contacts are never changed, so the ledger ties to the deal's client only what that client holds.
    ties: heldContactKeys(event, known, rules.defaultRegion),
    credit: anchored,
  };
}

/** The deals of the clients the event matched (a deal names its first contact and its company). */
function clientDeals(lookup: CrmLookup): DealSnapshot[] {
  const ids = new Set(lookup.clients.map((c) => `${c.type}:${c.id}`));
  return lookup.deals.filter((d) => (d.contactId && ids.has(`contact:${d.contactId}`)) || (d.companyId && ids.has(`company:${d.companyId}`)));
}

/**
 * The lookup without the ledger's hints that the records read back do not confirm: our ledger says which lead a
 * phone was last written to, but only the lead's own phones and emails say that it still is (and ever was) that
 * person's.
 */
export function confirmHints(event: LeadEvent, lookup: CrmLookup, region: CountryCode): CrmLookup {
  const hinted = lookup.hinted ?? [];
  if (hinted.length === 0) return lookup;
  const unconfirmed = (type: CrmEntityRef["type"], holder: { id: string; phones: readonly string[]; emails: readonly string[] }) =>
    hinted.some((h) => h.type === type && h.id === holder.id) && heldContactKeys(event, holder, region).length === 0;
  const leads = lookup.leads.filter((lead) => !unconfirmed("lead", lead));
  const clients = lookup.clients.filter((client) => !unconfirmed(client.type, client));
  return { ...lookup, leads, clients, hinted: [] };
}

export function planWrite(event: LeadEvent, found: CrmLookup, rules: WriteRules): WritePlan {
  if (found.applied) {
    const { client, created, ...target } = found.applied;
    // Unverified contacts are on the record only when the event made it (verified-source.ts).
    const verified = isVerifiedSource(event);
    const ties = verified || created ? contactKeys(event) : [];
    return { action: "skip", target, ...(client ? { client } : {}), created: created === true, ties, credit: verified || created === true };
  }
  const lookup = confirmHints(event, found, rules.defaultRegion);
  if (rules.mode === "classic") {
    const lead = pickOpenLead(lookup.leads, rules);
    if (lead) {
      const held = heldContactKeys(event, lead, rules.defaultRegion);
      const anchored = isAnchored(event, held);
      const vouched = verifiedContactKeys(event);
      return {
        action: "update",
        target: { type: "lead", id: lead.id },
        fields: updateLeadFields(event, lead, rules.defaultRegion),
        comment: withUnverified(unverifiedContactLine(event, lead, rules.defaultRegion, "lead", crmTexts(rules.language)), event, crmTexts(rules.language)),
        client: null,
        // What the lead holds, and the vouched-for contacts updateLeadFields adds to a lead the event speaks for.
        ties: contactKeys(event).filter((key) => held.includes(key) || (anchored && vouched.includes(key))),
        credit: anchored,
      };
    }
  }
  const deal = pickOpenDeal(clientDeals(lookup), rules);
  if (deal) return updateDeal(event, deal, lookup.clients, rules);
  const { contact, companyId } = pickClient(lookup.clients);
  const clientRef: CrmEntityRef | null = contact ? { type: "contact", id: contact.id } : companyId ? { type: "company", id: companyId } : null;
  if (rules.mode === "classic") {
    // Bitrix24 marks a lead naming a client a repeat lead itself (when the portal's mode is on): never IS_RETURN_CUSTOMER.
    const link = { ...(contact ? { CONTACT_ID: contact.id } : {}), ...(companyId ? { COMPANY_ID: companyId } : {}) };
    const fields = { ...newLeadFields(event, rules.requiredFieldDefaults, rules.responsible ?? null, crmTexts(rules.language)), ...link };
    return { action: "create-lead", fields, ties: contactKeys(event), credit: true };
  }
  return {
    action: "create-deal",
    contact: contact ? { id: contact.id } : { fields: newContactFields(event, rules) },
    fields: newDealFields(event, rules, { contactId: contact?.id ?? null, companyId }),
    client: clientRef,
    // A new contact has every contact of the event; an existing one (never changed) only what it held.
    ties: contact ? heldContactKeys(event, contact, rules.defaultRegion) : contactKeys(event),
    // The deal is the event's own, whoever its contact is.
    credit: true,
  };
}
