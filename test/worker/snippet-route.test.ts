import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("GET /snippet.js", () => {
  it("serves JavaScript with a short cache lifetime and an ETag, and 304 when unchanged", async () => {
    const res = await exports.default.fetch("http://worker.test/snippet.js");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/javascript; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("public, max-age=300");
    const body = await res.text();
    expect(body).toContain("comagic_visitor");
    const etag = res.headers.get("etag") ?? "";
    expect(etag).toMatch(/^"[0-9a-f]{16}"$/);
    const again = await exports.default.fetch(new Request("http://worker.test/snippet.js", { headers: { "if-none-match": etag } }));
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");
  });
});
