import { afterAll, beforeAll, expect, it } from "vitest";
import { leadsWithPhone, makeCallSession, postWebhook, sandbox, sandboxLeads, sandboxStats, uniquePhone, waitFor, waitForQuiet } from "./support";

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
});
afterAll(async () => {
  await sandbox("/_sandbox/faults", { rate: 0 });
});

it("makes exactly one lead per call when 30% of Bitrix24 requests fail (503, 500, answers past the timeout)", async () => {
  // The worker's client gives up after 1.5 s (BITRIX_TIMEOUT_MS in the test config); late answers come after 2 s.
  await sandbox("/_sandbox/faults", { rate: 0.3, kinds: ["503", "500", "timeout"], delayMs: 2_000, seed: 7 });
  const phones = Array.from({ length: 200 }, () => uniquePhone());
  for (const [i, phone] of phones.entries()) {
    const res = await postWebhook(makeCallSession({ visitor_phone_number: i % 2 ? phone.local : phone.e164 }));
    expect(res.status).toBe(202);
  }

  await waitFor(
    async () => {
      const leads = await sandboxLeads();
      return phones.every((p) => leadsWithPhone(leads, p.e164).length > 0);
    },
    "a lead for each of the 200 calls",
    240_000,
  );
  await waitForQuiet(5_000, 120_000);

  const leads = await sandboxLeads();
  const duplicated = phones.filter((p) => leadsWithPhone(leads, p.e164).length !== 1);
  expect(duplicated).toEqual([]);
  expect(leads).toHaveLength(200);
  const stats = await sandboxStats();
  const injected = (await (await sandbox("/_sandbox/stats")).json()) as { faultsInjected: Record<string, number> };
  // The faults really happened, and the rate limit stayed on throughout.
  expect(Object.values(injected.faultsInjected).reduce((a, b) => a + b, 0)).toBeGreaterThan(5);
  expect(stats.httpRequests).toBeGreaterThan(0);
}, 400_000);
