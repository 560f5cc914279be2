import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, forgetPortalSettings } from "./support";

describe("GET /health", () => {
  it("is 200 with nothing missing when the worker is configured, and names the portal's CRM mode", async () => {
    // A telephony refusal another file's calls met would be a (true) warning: start from a clean slate.
    await forgetPortalSettings();
    const { exports } = await import("cloudflare:workers");
    const res = await exports.default.fetch(new Request("http://worker.test/health", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }));
    expect(res.status).toBe(200);
    const answer = (await res.json()) as Record<string, unknown>;
    // The CoMagic feed's state: empty until its first read (another file's cron run may have made one).
    expect(answer).toEqual({ status: "ok", portal: "default", crmMode: "classic", feed: expect.objectContaining({ lastError: null }), problems: [], warnings: [] });
    expect(JSON.stringify(answer)).not.toContain("test-token");
  });
});
