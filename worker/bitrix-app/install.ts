/*
 * The app's install on a Bitrix24 portal: an administrator's token checked against the portal the worker serves there,
 * the tokens stored (storage/app-installs.ts), the CRM fields made, the card tab and the report's menu item bound, and
 * ONAPPUNINSTALL bound so the app's removal reaches the worker.
 */
import { messagesFor, type Language } from "../i18n";
import { en } from "../i18n/en";
import { ru } from "../i18n/ru";
import * as z from "zod";
import { type AccessRefusal, verifiedUser } from "../bitrix/app-auth";
import { batchBuilder } from "../bitrix/batch-builder";
import type { BitrixClient } from "../bitrix/client";
import { CARD_PLACEMENTS } from "../bitrix/crm-card";
import type { AppInstall, InstallStore } from "../bitrix/app-client";
import { ensureCrmUserFields } from "../bitrix/user-fields";

const placementRows = z.union([
  z.array(z.object({ placement: z.string().optional(), PLACEMENT: z.string().optional(), handler: z.string().optional(), HANDLER: z.string().optional() }).loose()),
  z.array(z.never()),
]);

/** event.get: the app's bound handlers (`[]` when none, as PHP sends an empty array). */
const eventRows = z.array(z.object({ event: z.string(), handler: z.string() }).loose());

export interface InstallRequest {
  memberId: string;
  authId: string;
  refreshId: string;
  expiresInSeconds: number;
  applicationToken: string | undefined;
  /** From the install's `server_endpoint`, when it is a Bitrix24 OAuth server; else BITRIX_OAUTH_URL is used. */
  oauthTokenUrl: string | null;
}

export type InstallOutcome = { ok: true; install: AppInstall; boundPlacements: string[]; createdFields: string[] } | { ok: false; refusal: AccessRefusal | "not_admin" };

/**
 * Installs (or reinstalls) the app: checks the token against the configured portal and our application,
 * stores the portal with its tokens, creates the lead fields, and binds the CoMagic tab to lead and deal
 * cards. Idempotent. Another application's token never reaches the stored record.
 */
export async function installApp(
  request: InstallRequest,
  deps: {
    origin: string;
    handlerUrl: string;
    reportUrl: string;
    /** Where Bitrix24 posts ONAPPUNINSTALL (routes/bitrix-install.ts). */
    uninstallUrl: string;
    appCode: string;
    language: Language;
    userClient: BitrixClient;
    appClient: (install: AppInstall) => BitrixClient;
    installs: InstallStore;
    now: () => Date;
  },
): Promise<InstallOutcome> {
  const user = await verifiedUser(deps.userClient, deps.appCode);
  if (!user.ok) return user;
  const { profile } = user;
  if (profile.ADMIN !== true) return { ok: false, refusal: "not_admin" };
  const previous = await deps.installs.get(request.memberId);
  const applicationToken = request.applicationToken ?? previous?.applicationToken;
  const oauthTokenUrl = request.oauthTokenUrl ?? previous?.oauthTokenUrl;
  const install: AppInstall = {
    memberId: request.memberId,
    origin: deps.origin,
    accessToken: request.authId,
    refreshToken: request.refreshId,
    expiresAt: Math.floor(deps.now().getTime() / 1000) + request.expiresInSeconds,
    installedAt: deps.now().toISOString(),
    installedByUserId: profile.ID,
    ...(applicationToken ? { applicationToken } : {}),
    ...(oauthTokenUrl ? { oauthTokenUrl } : {}),
  };
  await deps.installs.put(install);
  const client = deps.appClient(install);
  const fields = await ensureCrmUserFields(client);
  const placements = batchBuilder();
  const boundHandle = placements.add("bound", { method: "placement.get", params: {} }, placementRows);
  const eventsHandle = placements.add("events", { method: "event.get", params: {} }, eventRows);
  const answers = await placements.send(client, { readOnly: true });
  const bound = answers.required(boundHandle);
  // The app's removal deletes the portal's tokens (and, when asked to clean, its data): Bitrix24 tells us by ONAPPUNINSTALL.
  const unbound = !answers.required(eventsHandle).some((e) => e.event.toUpperCase() === "ONAPPUNINSTALL" && e.handler === deps.uninstallUrl);
  if (unbound) await client.call("event.bind", { event: "ONAPPUNINSTALL", handler: deps.uninstallUrl });
  const texts = (key: "tabPlacement" | "reportPlacement") => ({ ...messagesFor(deps.language).install[key], LANG_ALL: { ru: ru.install[key], en: en.install[key] } });
  const wanted = [
    ...CARD_PLACEMENTS.map((placement) => ({ placement, handler: deps.handlerUrl, texts: texts("tabPlacement") })),
    // FACTS-portals §10: an item under CRM Analytics' Applications, opening the attribution report.
    { placement: "CRM_ANALYTICS_MENU", handler: deps.reportUrl, texts: texts("reportPlacement") },
  ];
  const already = new Set(bound.map((b) => `${b.placement ?? b.PLACEMENT}|${b.handler ?? b.HANDLER}`));
  const missing = wanted.filter((w) => !already.has(`${w.placement}|${w.handler}`));
  for (const w of missing) {
    // FACTS.md §1.3: TITLE is the default, LANG_ALL what each interface language shows.
    await client.call("placement.bind", { PLACEMENT: w.placement, HANDLER: w.handler, ...w.texts });
  }
  return { ok: true, install, boundPlacements: missing.map((w) => w.placement), createdFields: fields.created };
}
