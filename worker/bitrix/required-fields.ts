import * as z from "zod";
import type { CrmMode } from "../domain/crm-entity";
import type { BitrixClient } from "./client";
import { batchBuilder } from "./batch-builder";

/*
 * A portal may make lead, deal or contact fields required (FACTS-portals §5). REST skips the check by default;
 * when an admin turns it on for applications, every add that leaves such a field empty fails. This names the
 * fields at risk for what the worker adds in the portal's mode (leads; or contacts and deals without leads),
 * so the admin can turn the check off or give them values in REQUIRED_FIELD_DEFAULTS.
 */

type AddedEntity = "lead" | "deal" | "contact";

/** What the worker adds in each CRM mode (existing contacts and deals are only read or commented). */
const ADDED_IN: Record<CrmMode, AddedEntity[]> = { classic: ["lead"], simple: ["contact", "deal"] };

/** Fields every new item gets from the worker, whatever the event. */
const ALWAYS_FILLED: Record<AddedEntity, Set<string>> = {
  lead: new Set(["TITLE", "SOURCE_ID", "STATUS_ID", "OPENED", "ORIGINATOR_ID", "ORIGIN_ID", "UF_CRM_COMAGIC_ID", "COMMENTS"]),
  deal: new Set(["TITLE", "SOURCE_ID", "OPENED", "ORIGINATOR_ID", "ORIGIN_ID", "UF_CRM_COMAGIC_ID", "COMMENTS", "CONTACT_ID", "CATEGORY_ID", "STAGE_ID"]),
  contact: new Set(["NAME", "SOURCE_ID", "OPENED", "ORIGINATOR_ID", "ORIGIN_ID"]),
};

const fieldDescriptions = z.record(z.string(), z.object({ isRequired: z.boolean().optional(), title: z.string().nullish(), formLabel: z.string().nullish() }).loose());

export interface UnfilledField {
  entity: AddedEntity;
  field: string;
  title: string;
}

/** Required fields of what the worker adds that it does not always fill and REQUIRED_FIELD_DEFAULTS does not cover. */
export async function unfilledRequiredFields(client: BitrixClient, mode: CrmMode, defaults: Readonly<Record<string, unknown>>): Promise<UnfilledField[]> {
  const entities = ADDED_IN[mode];
  const batch = batchBuilder();
  const described = entities.map((entity) => ({ entity, handle: batch.add("fields", { method: `crm.${entity}.fields`, params: {} }, fieldDescriptions) }));
  const answers = await batch.send(client, { readOnly: true });
  return described.flatMap(({ entity, handle }) =>
    Object.entries(answers.required(handle))
      .filter(([field, d]) => d.isRequired && !ALWAYS_FILLED[entity].has(field) && !(field in defaults))
      .map(([field, d]) => ({ entity, field, title: d.formLabel ?? d.title ?? field })),
  );
}
