import * as z from "zod";
import type { BitrixClient } from "./client";
import { BitrixError } from "./errors";

/*
 * A portal may make lead fields required (FACTS-portals §5). REST skips the check by default; when an admin
 * turns it on for applications, every crm.lead.add that leaves such a field empty fails. This names the
 * fields at risk, so the admin can turn the check off or give them values in REQUIRED_FIELD_DEFAULTS.
 */

/** Fields every new lead gets from the worker, whatever the event. */
const ALWAYS_FILLED = new Set(["TITLE", "SOURCE_ID", "STATUS_ID", "OPENED", "ORIGINATOR_ID", "ORIGIN_ID", "UF_CRM_COMAGIC_ID", "COMMENTS"]);

const fieldDescriptions = z.record(z.string(), z.object({ isRequired: z.boolean().optional(), title: z.string().nullish(), formLabel: z.string().nullish() }).loose());

export interface UnfilledField {
  field: string;
  title: string;
}

/** Required lead fields the worker does not always fill and REQUIRED_FIELD_DEFAULTS does not cover. */
export async function unfilledRequiredLeadFields(client: BitrixClient, defaults: Readonly<Record<string, unknown>>): Promise<UnfilledField[]> {
  const parsed = fieldDescriptions.safeParse(await client.call("crm.lead.fields", {}));
  if (!parsed.success) throw new BitrixError("ERROR_UNEXPECTED_ANSWER", "crm.lead.fields: unexpected answer", true, "no");
  return Object.entries(parsed.data)
    .filter(([field, d]) => d.isRequired && !ALWAYS_FILLED.has(field) && !(field in defaults))
    .map(([field, d]) => ({ field, title: d.formLabel ?? d.title ?? field }));
}

/** The admin's two fixes, in words, for /health, the install log and setup. */
export function requiredFieldsAdvice(fields: readonly UnfilledField[]): string {
  const names = fields.map((f) => `${f.field} ("${f.title}")`).join(", ");
  return `required on this portal and not always filled by the worker: ${names}. If required-field checks are on for applications, new leads fail: turn them off (CRM → Settings → Other → Other settings → Applications) or give values in REQUIRED_FIELD_DEFAULTS`;
}
