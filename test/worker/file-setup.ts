import { afterAll, beforeAll } from "vitest";
import { forgetPortalSettings, waitForQuiet } from "./support";

/*
 * The files of the shared shard (isolate: false in test/vitest.config.ts) share one Miniflare: its KV outlives
 * a file. Each file starts as if the worker had not yet looked at the portal, whatever the file before changed.
 */
beforeAll(forgetPortalSettings);

/*
 * A file's last calls still have follow-ups running (telephony, enrichment): they log, and a log line that
 * reaches Vitest while an isolated file's environment closes fails the run. Let them settle first; a retry
 * still waiting in the queue (seconds to minutes away) is dropped quietly with the file's Miniflare.
 */
afterAll(() => waitForQuiet(1_500, 30_000).catch(() => undefined));
