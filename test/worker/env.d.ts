import type { Env as WorkerEnv } from "../../worker/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      /** The Node sandbox started by test/helpers/sandbox-global-setup.ts. */
      SANDBOX_URL: string;
    }
    interface GlobalProps {
      mainModule: typeof import("../../worker/index");
    }
  }
}
export {};
