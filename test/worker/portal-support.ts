import { env } from "cloudflare:workers";

/** The sandbox's two named portals (test/helpers/sandbox-global-setup.ts): each a Bitrix24 portal on its own origin with a CoMagic account. */
export type PortalName = "alpha" | "beta" | "gamma" | "delta";
export type SandboxPortal = { url: string; bitrixWebhookUrl: string; dataApiUrl: string; callApiUrl: string; memberId: string; comagic: { login: string; password: string } };
export const PORTALS = JSON.parse(env.SANDBOX_PORTALS) as Record<PortalName, SandboxPortal>;

/** Each portal's own CoMagic webhook token. */
export const webhookTokenOf = (portal: string) => `${portal}-webhook-token-0123456789`;

/** A stored portal's settings for `PUT /admin/portals/<name>`: that sandbox portal's Bitrix24 and CoMagic, and `extra`. */
export function portalSettingsOf(name: PortalName, extra: Record<string, string | number> = {}) {
  const p = PORTALS[name];
  return {
    BITRIX_WEBHOOK_URL: p.bitrixWebhookUrl,
    COMAGIC_DATA_API_URL: p.dataApiUrl,
    COMAGIC_CALL_API_URL: p.callApiUrl,
    COMAGIC_LOGIN: p.comagic.login,
    COMAGIC_PASSWORD: p.comagic.password,
    COMAGIC_WEBHOOK_TOKEN: webhookTokenOf(name),
    CRM_LANGUAGE: "en",
    ENRICH_DELAY_SECONDS: "1",
    ENRICH_SLOT_SECONDS: "0",
    ...extra,
  };
}
