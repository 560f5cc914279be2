import { app } from "./app";
import type { Env } from "./env";
import { consumeQueue } from "./jobs/queue-handler";
import { runScheduled } from "./jobs/scheduled";

export { PortalState } from "./portal-state";

export default {
  fetch: app.fetch,
  queue: (batch, env) => consumeQueue(batch, env),
  scheduled: (controller, env) => runScheduled(controller, env),
} satisfies ExportedHandler<Env>;
