import type { WorkerSettings } from "../../worker/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerSettings {
      /** The Node sandbox started by test/helpers/sandbox-global-setup.ts. */
      SANDBOX_URL: string;
      /** JSON: the sandbox's named portals (alpha, beta) with their URLs and CoMagic logins. */
      SANDBOX_PORTALS: string;
      /** "full" under `npm run soak`: the long runs at full size. */
      TEST_SIZE: "full" | "proof";
    }
  }
}
export {};
