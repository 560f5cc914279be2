import * as z from "zod";
import { LEAD_FIELD } from "../domain/lead-plan";
import { batchBuilder } from "./batch-builder";
import type { BitrixClient } from "./client";

export interface UserFieldDefinition {
  FIELD_NAME: string;
  USER_TYPE_ID: "string" | "integer";
  LABEL: string;
}

/** The lead fields this product writes. Bitrix adds the UF_CRM_ prefix itself; we pass full names. */
export const LEAD_USER_FIELDS: UserFieldDefinition[] = [
  { FIELD_NAME: LEAD_FIELD.comagicId, USER_TYPE_ID: "string", LABEL: "CoMagic session ID" },
  { FIELD_NAME: LEAD_FIELD.visitorId, USER_TYPE_ID: "string", LABEL: "CoMagic visitor ID" },
  { FIELD_NAME: LEAD_FIELD.sessions, USER_TYPE_ID: "integer", LABEL: "CoMagic sessions" },
  { FIELD_NAME: LEAD_FIELD.firstSource, USER_TYPE_ID: "string", LABEL: "CoMagic first source" },
  { FIELD_NAME: LEAD_FIELD.lastSource, USER_TYPE_ID: "string", LABEL: "CoMagic last source" },
];

const userFieldRows = z.array(z.object({ FIELD_NAME: z.string() }).loose());

/**
 * Creates the missing CoMagic fields on leads, then on deals (list first, then add: a repeated add is an error
 * in Bitrix). Deals get them too: a lead converted to a deal keeps its values only in fields both entities
 * have, and on portals without leads the deal is what the worker writes to. Deal fields are named `deal:…`.
 */
export async function ensureCrmUserFields(client: BitrixClient): Promise<{ created: string[]; existing: string[] }> {
  const lead = await ensureEntityUserFields(client, "lead");
  const deal = await ensureEntityUserFields(client, "deal");
  const named = (names: string[]) => names.map((n) => `deal:${n}`);
  return { created: [...lead.created, ...named(deal.created)], existing: [...lead.existing, ...named(deal.existing)] };
}

async function ensureEntityUserFields(client: BitrixClient, entity: "lead" | "deal"): Promise<{ created: string[]; existing: string[] }> {
  const batch = batchBuilder();
  const lists = LEAD_USER_FIELDS.map((field) => ({
    field,
    handle: batch.add("field", { method: `crm.${entity}.userfield.list`, params: { order: { SORT: "ASC" }, filter: { FIELD_NAME: field.FIELD_NAME } } }, userFieldRows),
  }));
  const answers = await batch.send(client, { readOnly: true });
  const created: string[] = [];
  const existing: string[] = [];
  for (const { field, handle } of lists) {
    const rows = answers.required(handle);
    if (rows.some((r) => r.FIELD_NAME === field.FIELD_NAME)) {
      existing.push(field.FIELD_NAME);
      continue;
    }
    await client.call(`crm.${entity}.userfield.add`, {
      fields: { ...field, EDIT_FORM_LABEL: field.LABEL, LIST_COLUMN_LABEL: field.LABEL, LIST_FILTER_LABEL: field.LABEL, SHOW_IN_LIST: "Y", MULTIPLE: "N", MANDATORY: "N" },
    });
    created.push(field.FIELD_NAME);
  }
  return { created, existing };
}
