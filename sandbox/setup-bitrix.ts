/** `npm run setup:bitrix`: creates the custom lead and deal fields on the portal in BITRIX_WEBHOOK_URL and checks its settings. */
import { createBitrixClient } from "../worker/bitrix/client";
import { crmModeOf } from "../worker/bitrix/crm-mode";
import { unfilledRequiredFields } from "../worker/bitrix/required-fields";
import { messagesFor } from "../worker/i18n";
import { ensureCrmUserFields } from "../worker/bitrix/user-fields";
import { readDevVars } from "./dev-vars";

const url = process.env.BITRIX_WEBHOOK_URL || readDevVars().BITRIX_WEBHOOK_URL;
if (!url) {
  console.error("BITRIX_WEBHOOK_URL is not set (neither in the environment nor in .dev.vars).");
  process.exit(1);
}
const baseUrl = url.endsWith("/") ? url : `${url}/`;
try {
  const client = createBitrixClient({ baseUrl, timeoutMs: 30_000 });
  const { created, existing } = await ensureCrmUserFields(client);
  for (const name of created) console.log(`created   ${name}`);
  for (const name of existing) console.log(`existing  ${name}`);
  console.log(`${created.length} created, ${existing.length} already there on ${new URL(baseUrl).host}.`);
  const defaults = JSON.parse(process.env.REQUIRED_FIELD_DEFAULTS || readDevVars().REQUIRED_FIELD_DEFAULTS || "{}") as Record<string, unknown>;
  const mode = await crmModeOf(client, null);
  console.log(`CRM mode: ${mode === "classic" ? "classic (leads)" : "simple (no leads: the worker writes contacts and deals)"}.`);
  const unfilled = await unfilledRequiredFields(client, mode, defaults);
  if (unfilled.length) console.log(`\nWarning: ${messagesFor("en").install.requiredFields(unfilled)}`);
} catch (error) {
  console.error(`Setup failed: ${error instanceof Error ? error.message : String(error)}`);
  console.error("The webhook needs the `crm` scope and a user allowed to change CRM settings.");
  process.exit(1);
}
