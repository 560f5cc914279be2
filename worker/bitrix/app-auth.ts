import * as z from "zod";
import { matchesAnySecret } from "../security";
import { type BatchAnswers, type BatchBuilder, batchBuilder } from "./batch-builder";
import type { BitrixClient } from "./client";
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

/**
 * Why a request was not let in: a token the portal refused, another application's token, or a portal too busy
 * to say. Routes map each to a status and a page.
 */
export type AccessRefusal = "not_verified" | "foreign_app" | "bitrix_unavailable";

export type VerifiedUser = { ok: true; profile: Profile; answers: BatchAnswers } | { ok: false; refusal: AccessRefusal };

/**
 * The request's token must work on our portal, for our application, as a signed-in user. Commands already in
 * `batch` run in the same request, with the user's own rights; read them through `answers`.
 */
export async function verifiedUser(userClient: BitrixClient, appCode: string, batch: BatchBuilder = batchBuilder()): Promise<VerifiedUser> {
  const app = batch.add("app", { method: "app.info", params: {} }, appInfoSchema);
  const me = batch.add("me", { method: "profile", params: {} }, profileSchema);
  const answers = await batch.send(userClient, { readOnly: true });
  const [appInfo, profile] = [answers.outcome(app), answers.outcome(me)];
  if (!appInfo?.ok || !profile?.ok) {
    const error = [appInfo, profile].find((r) => r?.ok === false)?.error;
    // A busy portal (its request limit, a 5xx inside the batch) is not a forged token: say so, and let the user reopen.
    return { ok: false, refusal: error?.transient && !isCredentialError(error) ? "bitrix_unavailable" : "not_verified" };
  }
  // FACTS-portals: a local app's CODE is its client id ([UNCERTAIN]; BITRIX_APP_CODE covers other apps).
  if (answers.value(app)?.CODE !== appCode) return { ok: false, refusal: "foreign_app" };
  return { ok: true, profile: answers.required(me), answers };
}

/**
 * FACTS.md §1.4: compare APPLICATION_TOKEN with the one kept from the install. It may be absent (older portals
 * do not send it); when both sides have one, they must match.
 */
export async function applicationTokenMatches(sent: string | undefined, stored: string | undefined): Promise<boolean> {
  if (!sent || !stored) return true;
  return matchesAnySecret(sent, [stored]);
}
