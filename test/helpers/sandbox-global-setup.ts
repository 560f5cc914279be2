import type { TestProject } from "vitest/node";
import { createBitrixClient } from "../../worker/bitrix/client";
import { ensureCrmUserFields } from "../../worker/bitrix/user-fields";
import { startSandbox } from "../../sandbox/server";

/** A named sandbox portal as the workerd tests reach it: each at the root of a port of its own, as a real portal's domain. */
export interface ProvidedSandboxPortal {
  url: string;
  bitrixWebhookUrl: string;
  dataApiUrl: string;
  callApiUrl: string;
  memberId: string;
  comagic: { login: string; password: string };
}

declare module "vitest" {
  export interface ProvidedContext {
    sandboxUrl: string;
    bitrixWebhookUrl: string;
    dataApiUrl: string;
    callApiUrl: string;
    /**
     * More portals, each its own Bitrix24 portal and CoMagic account on its own origin: alpha and beta for the
     * many-portals tests (provisioned as setup:bitrix would), gamma a portal that has only just met the app, delta one
     * without leads that has only just met it.
     */
    sandboxPortals: Record<string, ProvidedSandboxPortal>;
  }
}

/** Starts the Bitrix24 sandbox in Node for the workerd tests, with the real rate limit on. */
export default async function setup(project: TestProject) {
  // Each named portal on a port of its own: the worker's app finds a portal's REST at its origin + /rest/.
  const sandbox = await startSandbox({ port: 0, portals: ["alpha", "beta", "gamma", "delta"], ownPorts: true });
  // Provision exactly as `npm run setup:bitrix` does, so the tests also cover it.
  await ensureCrmUserFields(createBitrixClient({ baseUrl: sandbox.bitrixWebhookUrl, timeoutMs: 5_000 }));
  project.provide("sandboxUrl", sandbox.url);
  project.provide("bitrixWebhookUrl", sandbox.bitrixWebhookUrl);
  project.provide("dataApiUrl", sandbox.dataApiUrl);
  project.provide("callApiUrl", sandbox.callApiUrl);
  const portals: Record<string, ProvidedSandboxPortal> = {};
  for (const [name, p] of Object.entries(sandbox.portals)) {
    // As `npm run setup:bitrix` provisions each portal; gamma is set up by the app's install alone.
    if (name === "alpha" || name === "beta") await ensureCrmUserFields(createBitrixClient({ baseUrl: p.bitrixWebhookUrl, timeoutMs: 5_000 }));
    portals[name] = { url: p.url, bitrixWebhookUrl: p.bitrixWebhookUrl, dataApiUrl: p.dataApiUrl, callApiUrl: p.callApiUrl, memberId: p.memberId, comagic: p.comagic };
  }
  project.provide("sandboxPortals", portals);
  return () => sandbox.close();
}
