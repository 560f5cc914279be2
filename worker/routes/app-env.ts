import type { Env } from "../env";
import type { Logger } from "../log";

/** What every Hono handler sees: the bindings, and the request id and logger app.ts's middleware sets. */
export type AppEnv = { Bindings: Env; Variables: { requestId: string; log: Logger } };
