import { env, exports } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, workerWithEnv } from "../worker/support";
import type { Env } from "../../worker/env";

/*
 * Issue #21 item 4: guessing ADMIN_TOKEN through /health. A wrong bearer there must cost what it costs on
 * /admin (ADMIN_RATE_LIMITER, then a minute's block for the address); a token short enough to guess is refused;
 * and the operator is told when the lockout cannot work.
 */

const GUESSER = "198.51.100.240";
const kv = () => (env as unknown as Env).COMAGIC_CACHE;

function health(token: string | null, ip: string, fetcher = (r: Request) => exports.default.fetch(r)): Promise<Response> {
  const headers: Record<string, string> = { "cf-connecting-ip": ip };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return fetcher(new Request("http://worker.test/health", { headers }));
}

afterAll(async () => {
  await kv()?.delete(`admin-blocked:${GUESSER}`);
});

describe("guessing the admin token on /health", () => {
  it("locks out an address after a burst of wrong bearers, and then turns away even the right token from it", async () => {
    const answers: { status: number; body: unknown }[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await health(`guess-${i}-0123456789abcdef0123456789`, GUESSER);
      answers.push({ status: res.status, body: await res.json() });
    }
    // A wrong bearer learns what a stranger learns, nothing more.
    expect(answers).toEqual(Array(10).fill({ status: 200, body: { status: "ok" } }));
    // The limiter counts in wall-clock minutes: a burst that straddles one needs a few more tries, never more than 21.
    let locked: Response | null = null;
    for (let i = 10; i < 25 && !locked; i++) {
      const res = await health(`guess-${i}-0123456789abcdef0123456789`, GUESSER);
      if (res.status === 429) locked = res;
      else await res.body?.cancel();
    }
    expect(locked?.status).toBe(429);

    const right = await health(ADMIN_TOKEN, GUESSER);
    expect(right.status).toBe(429);
    expect(right.headers.get("retry-after")).toBe("60");
    const body = await right.text();
    expect(JSON.parse(body)).toMatchObject({ error: "too_many_failures" });
    expect(body).not.toContain("warnings");

    // One lockout for both doors: /admin turns the address away too.
    const adminDoor = await exports.default.fetch(new Request("http://worker.test/admin/dead-letters", { headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "cf-connecting-ip": GUESSER } }));
    expect(adminDoor.status).toBe(429);

    // Another address with the right token still gets the detailed answer.
    const other = await health(ADMIN_TOKEN, "198.51.100.241");
    expect(other.status).toBe(200);
    expect(await other.json()).toHaveProperty("warnings");
  });

  it("still answers a probe without a bearer from a locked-out address (an uptime check guesses nothing)", async () => {
    // Left blocked by the test above, or blocked here.
    await kv()?.put(`admin-blocked:${GUESSER}`, "1", { expirationTtl: 60 });
    const res = await health(null, GUESSER);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });
});

describe("an ADMIN_TOKEN short enough to guess", () => {
  const SHORT = "short-admin-token";

  it.each([
    ["a short token", SHORT],
    ["a rotation list with one short token", `${ADMIN_TOKEN},${SHORT}`],
  ])("is refused with a reason on /health and /admin, even when the bearer matches it (%s)", async (_name, setting) => {
    const worker = workerWithEnv({ ADMIN_TOKEN: setting });
    const res = await health(SHORT, "198.51.100.242", worker);
    expect(res.status).toBe(403);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ error: "admin_disabled" });
    expect(body.message).toContain("shorter than 32 characters");
    expect(body).not.toHaveProperty("warnings");

    const admin = await worker(new Request("http://worker.test/admin/dead-letters", { headers: { authorization: `Bearer ${SHORT}`, "cf-connecting-ip": "198.51.100.242" } }));
    expect(admin.status).toBe(403);
    expect(((await admin.json()) as { message: string }).message).toContain("shorter than 32 characters");
  });

  it("leaves the worker itself running: the public /health and its status are unchanged", async () => {
    const res = await health(null, "198.51.100.242", workerWithEnv({ ADMIN_TOKEN: SHORT }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });
});

describe("the admin's /health", () => {
  it.each([
    ["ADMIN_RATE_LIMITER", { ADMIN_RATE_LIMITER: undefined }, "nothing stops a stranger guessing ADMIN_TOKEN"],
    ["COMAGIC_CACHE", { COMAGIC_CACHE: undefined }, "the lockout of addresses that guess ADMIN_TOKEN"],
  ] as const)("warns when the lockout cannot work: no %s", async (setting, overrides, problem) => {
    const res = await health(ADMIN_TOKEN, "198.51.100.243", workerWithEnv(overrides));
    const answer = (await res.json()) as { warnings: { setting: string; problem: string }[] };
    expect(answer.warnings.find((w) => w.setting === setting)?.problem).toContain(problem);
  });
});
