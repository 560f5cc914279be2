import type { CountryCode } from "libphonenumber-js/core";
import * as z from "zod";
import { LEAD_FIELD } from "../domain/lead-plan";
import { normalizePhone } from "../domain/phone";
import { type BatchBuilder, type BatchHandle, batchBuilder } from "./batch-builder";
import type { BitrixClient } from "./client";

/*
 * The card a CoMagic tab sits on: a lead, a deal or a contact (FACTS-portals §10 placements). Each finds its
 * visitor and phone where that entity keeps them: a lead in its own fields; a deal in its own fields (portals
 * without leads, repeat clients), else in the lead it came from, with the phone of its contact; a contact in
 * its own phones, with the visitor of its latest deal or lead that has one.
 */

export const CARD_PLACEMENTS = ["CRM_LEAD_DETAIL_TAB", "CRM_DEAL_DETAIL_TAB", "CRM_CONTACT_DETAIL_TAB"] as const;
export type CardPlacement = (typeof CARD_PLACEMENTS)[number];
export type CardEntity = "lead" | "deal" | "contact";

export const CARD_ENTITY: Record<CardPlacement, CardEntity> = { CRM_LEAD_DETAIL_TAB: "lead", CRM_DEAL_DETAIL_TAB: "deal", CRM_CONTACT_DETAIL_TAB: "contact" };

/** What the tab shows and Call dials, whichever entity the card is. */
export interface Card {
  entity: CardEntity;
  id: string;
  title: string | null;
  dateCreate: string | null;
  /** E.164, in the order the card lists them. */
  phones: string[];
  visitorId: string | null;
  /** The lead or deal whose field holds `visitorId` (the tab checks the worker wrote it there). */
  visitorOwner: { type: "lead" | "deal"; id: string } | null;
  /** What Bitrix24 telephony binds a call from this card to (register takes LEAD, CONTACT or COMPANY): a deal's contact. */
  telephonyEntity: { type: "LEAD" | "CONTACT"; id: string } | null;
}

const idString = z.union([z.string(), z.number()]).transform(String);
const optionalId = z
  .union([z.string(), z.number()])
  .nullish()
  .transform((v) => (v === null || v === undefined || String(v) === "" || String(v) === "0" ? null : String(v)));
const phones = z.array(z.object({ VALUE: z.string() }).loose()).nullish();
const record = z
  .object({
    ID: idString,
    TITLE: z.string().nullish(),
    NAME: z.string().nullish(),
    LAST_NAME: z.string().nullish(),
    DATE_CREATE: z.string().nullish(),
    PHONE: phones,
    LEAD_ID: optionalId,
    CONTACT_ID: optionalId,
    [LEAD_FIELD.visitorId]: optionalId,
  })
  .loose();
export type CrmRecord = z.infer<typeof record>;
const records = z.array(record);

/** Adds the read of the card's own entity to a batch (sent with the user's identity check, or with the caller's user). */
export function addCardRead(batch: BatchBuilder, entity: CardEntity, id: string): BatchHandle<CrmRecord> {
  return batch.add("card", { method: `crm.${entity}.get`, params: { id } }, record);
}

const phonesOf = (r: CrmRecord | null, region: CountryCode) => (r?.PHONE ?? []).flatMap((p) => normalizePhone(p.VALUE, region) ?? []);
const visitorOf = (r: CrmRecord | null | undefined) => r?.[LEAD_FIELD.visitorId] ?? null;

/** Reads what a card needs beyond its own entity, with the same (user's) client, so Bitrix24's permissions apply. */
export async function readCard(entity: CardEntity, item: CrmRecord, client: BitrixClient, region: CountryCode): Promise<Card> {
  const base = { entity, id: item.ID, dateCreate: item.DATE_CREATE ?? null };
  if (entity === "lead") {
    const visitorId = visitorOf(item);
    return {
      ...base,
      title: item.TITLE ?? null,
      phones: phonesOf(item, region),
      visitorId,
      visitorOwner: visitorId ? { type: "lead", id: item.ID } : null,
      telephonyEntity: { type: "LEAD", id: item.ID },
    };
  }

  const more = batchBuilder();
  const linked = (type: "lead" | "contact", id: string | null) => (entity === "deal" && id ? more.add(type, { method: `crm.${type}.get`, params: { id } }, record) : null);
  const leadHandle = linked("lead", item.LEAD_ID);
  const contactHandle = linked("contact", item.CONTACT_ID);
  const recent = { order: { ID: "DESC" }, filter: { CONTACT_ID: item.ID }, select: ["ID", LEAD_FIELD.visitorId] };
  const recentHandles = entity === "contact" ? (["deal", "lead"] as const).map((type) => more.add(`${type}s`, { method: `crm.${type}.list`, params: recent }, records)) : [];
  const found = await more.send(client, { readOnly: true });
  // A linked record the user may not read, or one deleted since, only leaves its part of the card empty.
  const optional = (handle: BatchHandle<CrmRecord> | null) => (handle ? found.value(handle) : null);

  if (entity === "deal") {
    const lead = optional(leadHandle);
    const contact = optional(contactHandle);
    const own = visitorOf(item);
    const fromLead = own ? null : visitorOf(lead);
    return {
      ...base,
      title: item.TITLE ?? null,
      phones: [...phonesOf(contact, region), ...phonesOf(lead, region)],
      visitorId: own ?? fromLead,
      visitorOwner: own ? { type: "deal", id: item.ID } : fromLead && lead ? { type: "lead", id: lead.ID } : null,
      telephonyEntity: item.CONTACT_ID ? { type: "CONTACT", id: item.CONTACT_ID } : null,
    };
  }
  const latest = (["deal", "lead"] as const)
    .flatMap((type, i) => {
      const handle = recentHandles[i];
      return (handle ? (found.value(handle) ?? []) : []).map((r) => ({ type, record: r }));
    })
    .find(({ record: r }) => visitorOf(r) !== null);
  const visitorId = latest ? visitorOf(latest.record) : null;
  const visitorOwner = latest ? { type: latest.type, id: latest.record.ID } : null;
  return { ...base, title: [item.NAME, item.LAST_NAME].filter(Boolean).join(" ") || null, phones: phonesOf(item, region), visitorId, visitorOwner, telephonyEntity: { type: "CONTACT", id: item.ID } };
}
