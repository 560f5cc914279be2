import * as z from "zod";
import { AppError } from "../errors";
import { outcome, verifiedUser } from "./app-auth";
import type { BitrixClient } from "./client";
import { CARD_PLACEMENTS } from "./crm-card";
import type { Portal, PortalStore } from "./portal";
import { ensureCrmUserFields } from "./user-fields";

const TAB_TITLE = "CoMagic";

const placementRows = z.union([z.array(z.object({ placement: z.string().optional(), PLACEMENT: z.string().optional(), handler: z.string().optional(), HANDLER: z.string().optional() }).loose()), z.array(z.never())]);

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
  deps: { origin: string; handlerUrl: string; appCode: string; userClient: BitrixClient; appClient: (portal: Portal) => BitrixClient; portals: PortalStore; now: () => Date },
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
  const already = new Set(bound.filter((b) => (b.handler ?? b.HANDLER) === deps.handlerUrl).map((b) => b.placement ?? b.PLACEMENT));
  const missing = CARD_PLACEMENTS.filter((p) => !already.has(p));
  for (const placement of missing) {
    await client.call("placement.bind", { PLACEMENT: placement, HANDLER: deps.handlerUrl, TITLE: TAB_TITLE, DESCRIPTION: "Touchpoints, attribution and click-to-call from CoMagic" });
  }
  return { portal, boundPlacements: missing, createdFields: fields.created };
}
