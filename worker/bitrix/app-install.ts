import { messagesFor, type Language } from "../i18n";
import { en } from "../i18n/en";
import { ru } from "../i18n/ru";
import * as z from "zod";
import { AppError } from "../errors";
import { verifiedUser } from "./app-auth";
import { outcome } from "./command-outcome";
import type { BitrixClient } from "./client";
import { CARD_PLACEMENTS } from "./crm-card";
import type { Portal, PortalStore } from "./portal";
import { ensureCrmUserFields } from "./user-fields";

const placementRows = z.union([
  z.array(z.object({ placement: z.string().optional(), PLACEMENT: z.string().optional(), handler: z.string().optional(), HANDLER: z.string().optional() }).loose()),
  z.array(z.never()),
]);

export interface InstallRequest {
  memberId: string;
  authId: string;
  refreshId: string;
  expiresInSeconds: number;
  applicationToken: string | undefined;
  /** From the install's `server_endpoint`, when it is a Bitrix24 OAuth server; else BITRIX_OAUTH_URL is used. */
  oauthTokenUrl: string | null;
}

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
    appCode: string;
    language: Language;
    userClient: BitrixClient;
    appClient: (portal: Portal) => BitrixClient;
    portals: PortalStore;
    now: () => Date;
  },
): Promise<{ portal: Portal; boundPlacements: string[]; createdFields: string[] }> {
  const { profile } = await verifiedUser(deps.userClient, deps.appCode);
  if (profile.ADMIN !== true) throw new AppError(403, "not_admin", "Only a Bitrix24 administrator can install the app");
  const previous = await deps.portals.get(request.memberId);
  const applicationToken = request.applicationToken ?? previous?.applicationToken;
  const oauthTokenUrl = request.oauthTokenUrl ?? previous?.oauthTokenUrl;
  const portal: Portal = {
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
  await deps.portals.put(portal);
  const client = deps.appClient(portal);
  const fields = await ensureCrmUserFields(client);
  const bound = outcome((await client.batch({ bound: { method: "placement.get", params: {} } }, { readOnly: true })).bound, placementRows, "placement.get");
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
  return { portal, boundPlacements: missing.map((w) => w.placement), createdFields: fields.created };
}
