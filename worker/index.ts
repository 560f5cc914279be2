import { app } from "./app";
import type { Env } from "./env";
import { consumeLeadJobs } from "./jobs/queue-handler";

export default {
  fetch: app.fetch,
  queue: (batch, env) => consumeLeadJobs(batch, env),
} satisfies ExportedHandler<Env>;
