import type { WorkerSettings } from "../../worker/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerSettings {
      /** The Node sandbox started by test/helpers/sandbox-global-setup.ts. */
      SANDBOX_URL: string;
    }
  }
}
export {};
