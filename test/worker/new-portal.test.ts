import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { d1PortalSettings } from "../../worker/storage/portal-settings";
import { installFields, type PortalTokens, postForm } from "./app-support";
import { PORTALS, portalSettingsOf } from "./portal-support";
import { admin, leadsWithPhone, makeCallSession, type SandboxLead, uniquePhone, uniqueSessionId, waitFor } from "./support";

/*
 * A Bitrix24 portal the deployment does not serve yet installs the app (issue #24): it gets a portal of its own,
 * reached through the app's OAuth tokens (no webhook, no env var). Its address and member_id are the OAuth server's
 * (FACTS-portals §9: the token answer's `client_endpoint`, `member_id`), never the install form's. gamma is a sandbox
 * portal nothing has set up: not even its CRM fields.
 */

const gamma = PORTALS.gamma;
const at = (path: string, body?: unknown) => fetch(`${gamma.url}${path}`, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const tokensOnGamma = async (userId = 1): Promise<PortalTokens> => (await at("/_sandbox/bitrix/app/tokens", { userId })).json();
const leadsOnGamma = async (): Promise<SandboxLead[]> => (await at("/_sandbox/leads")).json();
const storedFor = (memberId: string) => d1PortalSettings(env.DB as D1Database).byMember(memberId);

async function installOnGamma(overrides: Record<string, string> = {}): Promise<Response> {
  const t = await tokensOnGamma();
  return postForm("/bitrix/install", installFields(t, overrides), `?DOMAIN=${t.DOMAIN}&PROTOCOL=0&LANG=en`);
}

describe("the app installed on a portal the deployment does not serve", () => {
  it("refuses an install whose refresh token Bitrix24's OAuth server never issued, and opens no portal", async () => {
    const response = await installOnGamma({ REFRESH_ID: "forged-refresh-token-0000000000" });
    expect(response.status).toBe(401);
    expect(await storedFor(gamma.memberId)).toBeNull();
  });

  it("refuses an install naming another member_id than the one the OAuth server gives its tokens, and opens no portal", async () => {
    const response = await installOnGamma({ member_id: "someone-elses-member-id" });
    expect(response.status).toBe(401);
    expect(await storedFor("someone-elses-member-id")).toBeNull();
    expect(await storedFor(gamma.memberId)).toBeNull();
  });

  it("opens nothing when the one installing (or first opening the app) is not an administrator of the portal", async () => {
    const t = await tokensOnGamma(2);
    const response = await postForm("/bitrix/install", installFields(t), `?DOMAIN=${t.DOMAIN}&PROTOCOL=0&LANG=en`);
    expect(response.status).toBe(403);
    expect(await storedFor(gamma.memberId)).toBeNull();
  });

  it("links a portal the operator set up with a webhook on that Bitrix24 portal, instead of opening a second one", async () => {
    const alpha = PORTALS.alpha;
    const put = await admin("/portals/alpha-shop", { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ settings: portalSettingsOf("alpha") }) });
    expect(put.status).toBe(201);
    const t = (await (
      await fetch(`${alpha.url}/_sandbox/bitrix/app/tokens`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ userId: 1 }) })
    ).json()) as PortalTokens;
    expect((await postForm("/bitrix/install", installFields(t), `?DOMAIN=${t.DOMAIN}&PROTOCOL=0&LANG=en`)).status).toBe(200);
    expect((await storedFor(alpha.memberId))?.portal).toBe("alpha-shop");
    const all = await d1PortalSettings(env.DB as D1Database).list();
    expect(all.filter((p) => p.settings.BITRIX_PORTAL_URL === new URL(alpha.url).origin)).toEqual([]);
  });

  it("opens a portal of its own at the OAuth server's address, and a call notification to its URL becomes a lead there through the app's token", async () => {
    const response = await installOnGamma();
    expect(response.status).toBe(200);
    const stored = await storedFor(gamma.memberId);
    expect(stored).not.toBeNull();
    const portal = stored?.portal ?? "";
    expect(portal).toMatch(/^127-0-0-1-\d+$/);
    expect(stored?.settings).toMatchObject({ BITRIX_PORTAL_URL: new URL(gamma.url).origin, CRM_LANGUAGE: "en" });
    // Its notification token is made at install and sealed, as every secret.
    expect(Object.keys(stored?.secrets ?? {})).toEqual(["COMAGIC_WEBHOOK_TOKEN"]);
    const listed = (await (await admin("/portals")).json()) as { portals: { portal: string; secretsSet: string[] }[] };
    expect(listed.portals.find((p) => p.portal === portal)?.secretsSet).toEqual(["COMAGIC_WEBHOOK_TOKEN"]);

    const token = "gamma-token-set-by-the-operator-0123456789";
    expect((await admin(`/portals/${portal}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ settings: { COMAGIC_WEBHOOK_TOKEN: token } }) })).status).toBe(
      200,
    );
    const phone = uniquePhone();
    const sessionId = uniqueSessionId();
    const notification = makeCallSession({ id: sessionId, visitor_phone_number: phone.local, file_link: null });
    const posted = await exports.default.fetch(
      new Request(`http://worker.test/webhooks/comagic/${portal}?token=${token}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(notification) }),
    );
    expect(posted.status).toBe(202);
    const leads = await waitFor(async () => {
      const found = leadsWithPhone(await leadsOnGamma(), phone.e164);
      return found.length ? found : null;
    }, "the lead on gamma");
    expect(leads).toHaveLength(1);
    expect(leads[0]?.UF_CRM_COMAGIC_ID).toBe(String(sessionId));
  });

  it("keeps one portal when the app is installed again on the same Bitrix24 portal", async () => {
    expect((await installOnGamma()).status).toBe(200);
    const all = await d1PortalSettings(env.DB as D1Database).list();
    expect(all.filter((p) => p.memberId === gamma.memberId)).toHaveLength(1);
  });
});
