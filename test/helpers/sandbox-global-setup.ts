import type { TestProject } from "vitest/node";
import { createBitrixClient } from "../../worker/bitrix/client";
import { ensureCrmUserFields } from "../../worker/bitrix/user-fields";
import { startSandbox } from "../../sandbox/server";

declare module "vitest" {
  export interface ProvidedContext {
    sandboxUrl: string;
    bitrixWebhookUrl: string;
    dataApiUrl: string;
    callApiUrl: string;
    /** Two more portals (`/p/alpha`, `/p/beta`), each its own Bitrix24 portal and CoMagic account, for the many-portals tests. */
    sandboxPortals: Record<string, { bitrixWebhookUrl: string; dataApiUrl: string; callApiUrl: string; url: string; comagic: { login: string; password: string } }>;
  }
}

/** Starts the Bitrix24 sandbox in Node for the workerd tests, with the real rate limit on. */
export default async function setup(project: TestProject) {
  const sandbox = await startSandbox({ port: 0, portals: ["alpha", "beta"] });
  // Provision exactly as `npm run setup:bitrix` does, so the tests also cover it.
  await ensureCrmUserFields(createBitrixClient({ baseUrl: sandbox.bitrixWebhookUrl, timeoutMs: 5_000 }));
  project.provide("sandboxUrl", sandbox.url);
  project.provide("bitrixWebhookUrl", sandbox.bitrixWebhookUrl);
  project.provide("dataApiUrl", sandbox.dataApiUrl);
  project.provide("callApiUrl", sandbox.callApiUrl);
  const portals: Record<string, { bitrixWebhookUrl: string; dataApiUrl: string; callApiUrl: string; url: string; comagic: { login: string; password: string } }> = {};
  for (const [name, p] of Object.entries(sandbox.portals)) {
    // As `npm run setup:bitrix` provisions each portal.
    await ensureCrmUserFields(createBitrixClient({ baseUrl: p.bitrixWebhookUrl, timeoutMs: 5_000 }));
    portals[name] = { bitrixWebhookUrl: p.bitrixWebhookUrl, dataApiUrl: p.dataApiUrl, callApiUrl: p.callApiUrl, url: p.url, comagic: p.comagic };
  }
  project.provide("sandboxPortals", portals);
  return () => sandbox.close();
}
