import * as z from "zod";
import { AppError } from "../errors";
import { pageError } from "../i18n";
import { matchesAnySecret } from "../security";
import type { BitrixClient, BitrixCommand } from "./client";
import { outcome } from "./command-outcome";
import { isCredentialError } from "./errors";

/*
 * Who is asking, for the Bitrix24 app's routes. Placement and install requests are posted by the user's
 * browser (FACTS.md §1.3), so nothing in them counts until the portal this worker serves accepts their token
 * for *our* application (app.info's CODE; any app on the portal passes app.info) and for a signed-in user.
 */

const idString = z.union([z.string(), z.number()]).transform(String);
const profileSchema = z.object({ ID: idString, ADMIN: z.boolean().optional(), NAME: z.string().nullish(), LAST_NAME: z.string().nullish() }).loose();
const appInfoSchema = z.object({ CODE: z.string().nullish() }).loose();

export type Profile = z.infer<typeof profileSchema>;

const refused = (code: "not_verified" | "foreign_app", message: string) => new AppError(401, code, message);

/**
 * The request's token must work on our portal, for our application, as a signed-in user. `extra` commands
 * run in the same `batch`, with the user's own rights.
 */
export async function verifiedUser(userClient: BitrixClient, appCode: string, extra: Record<string, BitrixCommand> = {}) {
  const results = await userClient.batch({ app: { method: "app.info", params: {} }, me: { method: "profile", params: {} }, ...extra }, { readOnly: true });
  if (!results.app?.ok || !results.me?.ok) {
    const error = [results.app, results.me].find((r) => r?.ok === false)?.error;
    // A busy portal (its request limit, a 5xx inside the batch) is not a forged token: say so, and let the user reopen.
    if (error?.transient && !isCredentialError(error)) throw pageError(503, "bitrix_unavailable");
    throw refused("not_verified", "Bitrix24 did not accept this request's token for this portal");
  }
  // FACTS-portals: a local app's CODE is its client id ([UNCERTAIN]; BITRIX_APP_CODE covers other apps).
  const app = appInfoSchema.safeParse(results.app.result);
  if (!app.success || app.data.CODE !== appCode) throw refused("foreign_app", "This request's token belongs to another Bitrix24 application");
  return { profile: outcome(results.me, profileSchema, "profile"), results };
}

/**
 * FACTS.md §1.4: compare APPLICATION_TOKEN with the one kept from the install. It may be absent (older portals
 * do not send it); when both sides have one, they must match.
 */
export async function checkApplicationToken(sent: string | undefined, stored: string | undefined): Promise<void> {
  if (!sent || !stored) return;
  if (!(await matchesAnySecret(sent, [stored]))) throw refused("foreign_app", "This request did not come from the application installed on this portal");
}
