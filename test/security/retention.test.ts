import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index";
import { deadLetterStore } from "../../worker/storage/d1";

/* Dead letters hold names, phones and emails: the cron removes them after DEAD_LETTER_RETENTION_DAYS (30). */

const letter = (id: string, daysAgo: number) => ({
  id,
  queue: "comagic-lead-jobs",
  jobType: "lead.ingest",
  portal: "default",
  letter: {
    queue: "comagic-lead-jobs",
    job: { event: { phone: "+79123456789", name: "Anna" } },
    reason: "x",
    code: "ERROR",
    attempts: 20,
    failedAt: new Date(Date.now() - daysAgo * 86_400_000).toISOString(),
  },
});

describe("retention", () => {
  it("purges dead letters older than DEAD_LETTER_RETENTION_DAYS, replayed or not, and keeps recent ones", async () => {
    const db = env.DB as D1Database;
    const store = deadLetterStore(db);
    const tag = crypto.randomUUID();
    await store.record([letter(`${tag}-old`, 31), letter(`${tag}-replayed`, 40), letter(`${tag}-recent`, 2)]);
    await store.markReplayed(`${tag}-replayed`, new Date(Date.now() - 39 * 86_400_000));
    await worker.scheduled?.(createScheduledController({ scheduledTime: Date.now(), cron: "*/10 * * * *" }), env);
    expect(await store.get(`${tag}-old`)).toBeNull();
    expect(await store.get(`${tag}-replayed`)).toBeNull();
    expect(await store.get(`${tag}-recent`)).not.toBeNull();
  });
});
