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
  }
}

/** Starts the Bitrix24 sandbox in Node for the workerd tests, with the real rate limit on. */
export default async function setup(project: TestProject) {
  const sandbox = await startSandbox({ port: 0 });
  // Provision exactly as `npm run setup:bitrix` does, so the tests also cover it.
  await ensureCrmUserFields(createBitrixClient({ baseUrl: sandbox.bitrixWebhookUrl, timeoutMs: 5_000 }));
  project.provide("sandboxUrl", sandbox.url);
  project.provide("bitrixWebhookUrl", sandbox.bitrixWebhookUrl);
  project.provide("dataApiUrl", sandbox.dataApiUrl);
  project.provide("callApiUrl", sandbox.callApiUrl);
  return () => sandbox.close();
}
