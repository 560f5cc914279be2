import { exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { sandbox, sandboxLeads, uniquePhone, waitFor, waitForQuiet, type SandboxLead } from "./support";

const SITE = "https://shop.example.ru";
let ipCounter = 0;
/** Each test posts from its own address, so the per-IP limit only bites where a test wants it to. */
const freshIp = () => `198.51.100.${++ipCounter}`;

function post(body: BodyInit, headers: Record<string, string> = {}, ip = freshIp()): Promise<Response> {
  return exports.default.fetch(new Request("http://worker.test/forms", { method: "POST", headers: { origin: SITE, "cf-connecting-ip": ip, ...headers }, body, redirect: "manual" }));
}

const json = (fields: Record<string, unknown>, headers: Record<string, string> = {}, ip?: string) => post(JSON.stringify(fields), { "content-type": "application/json", ...headers }, ip);

async function leadWithEmail(email: string): Promise<SandboxLead> {
  return waitFor(async () => (await sandboxLeads()).find((l) => l.EMAIL?.some((e) => e.VALUE === email)), `a lead with ${email}`);
}

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
});

describe("POST /forms makes a lead", () => {
  it("from a sendBeacon body (JSON as text/plain) with the visitor id, first-touch UTMs and every other field", async () => {
    const phone = uniquePhone();
    const email = `form${Date.now()}@example.ru`;
    const res = await json(
      {
        name: "Olga",
        phone: phone.local,
        email,
        message: "Call me after 6",
        form_name: "Callback",
        comagic_visitor_id: "9001",
        comagic_session_id: "77001",
        utm_source: "google",
        utm_medium: "cpc",
        first_utm_source: "yandex",
        first_utm_medium: "organic",
        page_url: "https://shop.example.ru/sofas?utm_source=google",
        referrer: "https://www.google.com/",
        gclid: "Cj0KCQ",
        city: "Kazan",
        submission_id: "pv1",
      },
      { "content-type": "text/plain;charset=UTF-8" },
    );
    expect(res.status).toBe(202);
    const answer = (await res.json()) as { status: string; id: string };
    expect(answer.status).toBe("accepted");
    expect(answer.id).toMatch(/^form-[0-9a-f]{32}$/);

    const lead = await leadWithEmail(email);
    expect(lead).toMatchObject({
      TITLE: "Website form: Callback",
      NAME: "Olga",
      SOURCE_ID: "WEB",
      SOURCE_DESCRIPTION: "https://shop.example.ru/sofas?utm_source=google",
      UTM_SOURCE: "yandex",
      UTM_MEDIUM: "organic",
      UF_CRM_CM_VISITOR_ID: "9001",
      UF_CRM_COMAGIC_ID: answer.id,
    });
    expect(lead.PHONE?.map((p) => p.VALUE)).toEqual([phone.e164]);
    for (const part of [
      "Message: Call me after 6",
      "Referrer: https://www.google.com/",
      "UTM (last touch): utm_source=google, utm_medium=cpc",
      "gclid=Cj0KCQ",
      "city: Kazan",
      "CoMagic session ID: 77001",
    ]) {
      expect(String(lead.COMMENTS)).toContain(part);
    }
  });

  it("from a plain urlencoded HTML form, redirecting back to the page it came from", async () => {
    const email = `plain${Date.now()}@example.ru`;
    const res = await post(new URLSearchParams({ email, name: "Petr" }).toString(), {
      "content-type": "application/x-www-form-urlencoded",
      accept: "text/html,application/xhtml+xml",
      referer: `${SITE}/contacts`,
    });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe(`${SITE}/contacts`);
    await leadWithEmail(email);
  });

  it("from multipart/form-data, redirecting to an allowed _redirect", async () => {
    const body = new FormData();
    const email = `multi${Date.now()}@example.ru`;
    body.set("email", email);
    body.set("_redirect", "https://blog.example.org/thanks");
    body.set("attachment", new File(["x"], "cv.pdf"));
    const res = await post(body, { accept: "text/html" });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("https://blog.example.org/thanks");
    const lead = await leadWithEmail(email);
    expect(String(lead.COMMENTS)).not.toContain("cv.pdf");
  });

  it("once for a double click: the same page view and content are one submission", async () => {
    const email = `double${Date.now()}@example.ru`;
    const fields = { email, submission_id: "pageview-42" };
    const [a, b] = await Promise.all([json(fields), json(fields)]);
    expect(((await a.json()) as { id: string }).id).toBe(((await b.json()) as { id: string }).id);
    await leadWithEmail(email);
    await waitForQuiet();
    const leads = (await sandboxLeads()).filter((l) => l.EMAIL?.some((e) => e.VALUE === email));
    expect(leads).toHaveLength(1);
    expect(leads[0]?.TIMELINE_COMMENTS).toEqual([]);
  });

  it("on the same open lead as an earlier call from that person, as a comment only (an anonymous form changes no field)", async () => {
    const phone = uniquePhone();
    await sandbox("/_sandbox/leads", { fields: { TITLE: "Call", PHONE: [{ VALUE: phone.e164, VALUE_TYPE: "WORK" }], UTM_SOURCE: "direct" } });
    await json({ phone: phone.local, name: "Ivan", utm_source: "vk" });
    const lead = await waitFor(async () => {
      const l = (await sandboxLeads()).find((x) => x.PHONE?.some((p) => p.VALUE === phone.e164));
      return l?.TIMELINE_COMMENTS.length ? l : null;
    }, "the form to update the call's lead");
    expect(lead).toMatchObject({ TITLE: "Call", UTM_SOURCE: "direct" });
    expect(lead.NAME ?? null).toBeNull();
    expect(lead.TIMELINE_COMMENTS[0]).toContain("the form also gave name Ivan");
    expect(lead.TIMELINE_COMMENTS[0]).toContain("Website form");
  });

  it("with the email when the phone is not a number, keeping what was typed", async () => {
    const email = `typo${Date.now()}@example.ru`;
    expect((await json({ email, phone: "call me" })).status).toBe(202);
    const lead = await leadWithEmail(email);
    expect(lead.PHONE).toBeUndefined();
    expect(String(lead.COMMENTS)).toContain("phone: call me");
  });
});

describe("POST /forms refuses", () => {
  it.each([
    ["no phone and no email", { name: "Anon" }, ["phone", "email"]],
    ["a phone that is not a number", { phone: "12" }, ["phone"]],
    ["an email that is not an address", { email: "nope@" }, ["email"]],
    ["both wrong", { phone: "12", email: "nope" }, ["phone", "email"]],
  ])("%s, with 400 naming the fields", async (_name, fields, paths) => {
    const res = await json(fields);
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { error: string; details: { path: string }[] };
    expect(answer.error).toBe("invalid_form");
    expect(answer.details.map((d) => d.path)).toEqual(paths);
  });

  it.each([
    ["JSON that is not an object", "[1,2]", "application/json"],
    ["text that is not JSON", "phone=1", "text/plain"],
  ])("%s, with 400", async (_name, body, type) => {
    const res = await post(body, { "content-type": type });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_body" });
  });

  it("a body above 64 KiB, with 413", async () => {
    const res = await json({ email: "a@b.ru", message: "x".repeat(65 * 1024) });
    expect(res.status).toBe(413);
  });

  it("a page on a site not in ALLOWED_ORIGINS, with 403 and no CORS grant", async () => {
    const res = await json({ email: "a@b.ru" }, { origin: "https://evil.example.com" });
    expect(res.status).toBe(403);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(await res.json()).toMatchObject({ error: "origin_not_allowed" });
  });

  it("the 21st form from one address within a minute, with 429 and Retry-After", async () => {
    const ip = freshIp();
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) statuses.push((await json({ name: "x" }, {}, ip)).status);
    expect(statuses.slice(0, 20).every((s) => s === 400)).toBe(true);
    const limited = await json({ email: "a@b.ru" }, {}, ip);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    // Another address is not affected.
    expect((await json({ name: "x" })).status).toBe(400);
  });
});

describe("POST /forms also", () => {
  it("drops a honeypot submission silently: the bot sees success, Bitrix24 sees nothing", async () => {
    const email = `bot${Date.now()}@example.ru`;
    const res = await json({ email, _hp: "http://spam.example" });
    expect(res.status).toBe(202);
    await waitForQuiet();
    expect((await sandboxLeads()).filter((l) => l.EMAIL?.some((e) => e.VALUE === email))).toEqual([]);
  });

  it("answers the CORS preflight of an allowed origin, including a wildcard subdomain", async () => {
    const res = await exports.default.fetch(
      new Request("http://worker.test/forms", {
        method: "OPTIONS",
        headers: { origin: "https://blog.example.org", "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
      }),
    );
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://blog.example.org");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
  });

  it("grants CORS to an allowed origin on the POST itself", async () => {
    const res = await json({ email: "cors@example.ru" });
    expect(res.headers.get("access-control-allow-origin")).toBe(SITE);
  });

  it("never redirects to a site outside ALLOWED_ORIGINS, showing a thank-you page instead", async () => {
    const res = await post(new URLSearchParams({ email: "r@example.ru", _redirect: "https://evil.example.com/" }).toString(), {
      "content-type": "application/x-www-form-urlencoded",
      accept: "text/html",
      referer: "https://evil.example.com/page",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("location")).toBeNull();
    expect(await res.text()).toContain("Thank you");
  });
});
