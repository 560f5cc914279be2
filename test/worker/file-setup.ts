import { beforeAll } from "vitest";
import { forgetPortalSettings } from "./support";

/*
 * The files of the shared shard (isolate: false in test/vitest.config.ts) share one Miniflare: its KV outlives
 * a file. Each file starts as if the worker had not yet looked at the portal, whatever the file before changed.
 */
beforeAll(forgetPortalSettings);
