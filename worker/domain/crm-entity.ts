/** The CRM entities an event can land on, and how the ledger names them. */
export type CrmEntityType = "lead" | "deal" | "contact" | "company";

export interface CrmEntityRef {
  type: CrmEntityType;
  id: string;
}

/** Bitrix24's owner type ids (crm.activity.todo.add `ownerTypeId`, FACTS-portals §6). */
export const OWNER_TYPE_ID: Record<CrmEntityType, 1 | 2 | 3 | 4> = { lead: 1, deal: 2, contact: 3, company: 4 };

/**
 * The portal's CRM mode (crm.settings.mode.get, FACTS-portals §1): classic has leads; simple has none, and
 * a lead added there is converted into a deal at once, so the worker writes contacts and deals instead.
 */
export type CrmMode = "classic" | "simple";

/** Ledger text for an entity: a bare id for a lead (rows written before deals existed), `deal:7` otherwise. */
export function ledgerRef(ref: CrmEntityRef): string {
  return ref.type === "lead" ? ref.id : `${ref.type}:${ref.id}`;
}

export function parseLedgerRef(text: string): CrmEntityRef | null {
  if (/^\d+$/.test(text)) return { type: "lead", id: text };
  const match = /^(lead|deal|contact|company):(\d+)$/.exec(text);
  return match ? { type: match[1] as CrmEntityType, id: match[2] as string } : null;
}
