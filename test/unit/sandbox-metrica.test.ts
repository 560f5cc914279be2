import { describe, expect, it } from "vitest";
import { createMetricaSandbox, SANDBOX_METRICA } from "../../sandbox/metrica";
import { createSandbox } from "../../sandbox/server";

/*
 * The Metrica stand-in imitates the offline-conversions API and its unkind parts: `../shared/reference/FACTS-loop.md`
 * §3.1–3.6 and §6 "Yandex Metrica" items 1–5 (named "§6.M<n>" in the test names).
 */

const DAY = 86_400_000;
const NOW = Date.parse("2026-12-10T12:00:00Z");
const SECONDS = Math.floor(NOW / 1000);
const UPLOAD = `/management/v1/counter/${SANDBOX_METRICA.counterId}/offline_conversions/upload`;
const STATUS = (id: unknown) => `/management/v1/counter/${SANDBOX_METRICA.counterId}/offline_conversions/uploading/${id}`;
const AUTH = { authorization: `OAuth ${SANDBOX_METRICA.token}` };

/** The answers these tests read: Metrica's uploading and error shapes, and the control API's state. */
interface Answer {
  uploading: { id: number; status: string } & Record<string, unknown>;
  uploadings: unknown[];
  errors: { error_type: string; message: string }[];
  counters: { linked: { dateTime: number; price: number | null }[] }[];
  uploads: unknown[];
}

function metrica() {
  const clock = { now: NOW };
  const { app } = createMetricaSandbox({ now: () => clock.now });
  const json = async (path: string, init: RequestInit = {}) => {
    const res = await app.request(path, init);
    return { status: res.status, body: (await res.json().catch(() => null)) as Answer };
  };
  const upload = (csv: string, headers: Record<string, string> = AUTH, query = "") => {
    const form = new FormData();
    form.append("file", new Blob([csv], { type: "text/csv" }), "data.csv");
    return json(`${UPLOAD}${query}`, { method: "POST", headers, body: form });
  };
  const control = (path: string, body: unknown) => json(`/_sandbox/metrica${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const status = (id: unknown) => json(STATUS(id), { headers: AUTH });
  const state = async () => (await json("/_sandbox/metrica")).body;
  return { app, clock, json, upload, control, status, state };
}

const csv = (...rows: string[]) => `ClientId,Target,DateTime,Price,Currency\n${rows.join("\n")}\n`;

describe("the Metrica sandbox's upload (FACTS-loop §3.1–3.3)", () => {
  it("answers 200 with an UPLOADED uploading that has linked nothing yet: 200 means only 'file received' (§6.M1)", async () => {
    const m = metrica();
    await m.control("/visits", { clientId: "111", daysAgo: 1 });
    const res = await m.upload(csv(`111,crm_won,${SECONDS - 60},100.50,RUB`), AUTH, "?comment=crm");
    expect(res.status).toBe(200);
    expect(res.body.uploading).toMatchObject({ id: 1, status: "UPLOADED", source_quantity: 1, line_quantity: 1, comment: "crm", client_id_type: "CLIENT_ID", linked_quantity: 0 });
    expect((await m.state()).counters[0]?.linked).toEqual([]);
  });

  it("moves the status one step per read and links only at the end: UPLOADED → EXPORTED → MATCHED → PROCESSED (§6.M1)", async () => {
    const m = metrica();
    await m.control("/visits", { clientId: "111", daysAgo: 1 });
    const id = (await m.upload(csv(`111,crm_won,${SECONDS - 60},100.50,RUB`))).body.uploading.id;
    const seen = [];
    for (let i = 0; i < 4; i++) seen.push((await m.status(id)).body.uploading.status);
    expect(seen).toEqual(["EXPORTED", "MATCHED", "PROCESSED", "PROCESSED"]);
    expect((await m.status(id)).body.uploading).toMatchObject({ linked_quantity: 1, goal_not_found_quantity: 0, user_not_found_quantity: 0 });
    expect((await m.state()).counters[0]?.linked).toEqual([{ idType: "CLIENT_ID", id: "111", target: "crm_won", dateTime: SECONDS - 60, price: 100.5, currency: "RUB", uploadId: id }]);
  });

  it("silently leaves unlinked a visitor last seen more than 21 days before processing: no error, LINKAGE_FAILURE (§3.4, §6.M2)", async () => {
    const m = metrica();
    await m.control("/visits", { clientId: "222", daysAgo: 15 });
    const { body } = await m.upload(csv(`222,crm_won,${SECONDS - 60},10,RUB`));
    expect(body.uploading.status).toBe("UPLOADED");
    // Processing comes a week later: the last visit is now 22 days old.
    m.clock.now = NOW + 7 * DAY;
    await m.control("/process", {});
    expect((await m.status(body.uploading.id)).body.uploading).toMatchObject({ status: "LINKAGE_FAILURE", linked_quantity: 0, user_not_found_quantity: 0, goal_not_found_quantity: 0 });
    expect((await m.state()).counters[0]?.linked).toEqual([]);
  });

  it("counts an unknown goal identifier and an unknown visitor as not found, and links the rest (§3.2 Target, §6.M2)", async () => {
    const m = metrica();
    await m.control("/visits", { clientId: "111", daysAgo: 2 });
    const { body } = await m.upload(csv(`111,crm_won,${SECONDS - 60},,`, `111,4021,${SECONDS - 60},,`, `999,crm_won,${SECONDS - 60},,`));
    await m.control("/process", {});
    expect((await m.status(body.uploading.id)).body.uploading).toMatchObject({ status: "PROCESSED", linked_quantity: 1, goal_not_found_quantity: 1, user_not_found_quantity: 1 });
  });

  it("overwrites the price of a re-sent (ClientId, Target, DateTime) instead of adding a second conversion (§3.5, §6.M4)", async () => {
    const m = metrica();
    await m.control("/visits", { clientId: "111", daysAgo: 1 });
    await m.upload(csv(`111,crm_won,${SECONDS - 60},100,RUB`));
    await m.upload(csv(`111,crm_won,${SECONDS - 60},250,RUB`));
    await m.upload(csv(`111,crm_won,${SECONDS - 30},5,RUB`));
    await m.control("/process", {});
    const linked = (await m.state()).counters[0]?.linked ?? [];
    expect(linked.map((l) => [l.dateTime, l.price])).toEqual([
      [SECONDS - 60, 250],
      [SECONDS - 30, 5],
    ]);
  });

  it("drops invalid rows while accepting the file: line_quantity below source_quantity (§3.3, §6.M3)", async () => {
    const m = metrica();
    const { status, body } = await m.upload(
      csv(`111,crm_won,${SECONDS - 60},1.5,RUB`, `111,crm_won,yesterday,,`, `111,crm_won,${SECONDS - 60},"1,5",RUB`, `,crm_won,${SECONDS},,`, `111,crm_won,${SECONDS - 60},1,rubles`),
    );
    expect(status).toBe(200);
    expect(body.uploading).toMatchObject({ source_quantity: 5, line_quantity: 1 });
  });

  it.each([
    ["a DateTime in the future (§3.2)", () => csv(`111,crm_won,${SECONDS + 3600},,`), /in the future/],
    ["no identifier column (§3.2)", () => "Target,DateTime\ncrm_won,1\n", /identifier column/],
    ["no Target column (§3.2)", () => "ClientId,DateTime\n111,1\n", /Target and DateTime/],
    ["an empty file", () => "", /empty/],
  ])("refuses a file with %s as 400 invalid_uploading (§3.6, §6.M3)", async (_, file, reason) => {
    const m = metrica();
    const res = await m.upload(file());
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 400, errors: [{ error_type: "invalid_uploading" }] });
    expect(res.body.errors[0]?.message).toMatch(reason);
    expect((await m.state()).uploads).toEqual([]);
  });

  it("refuses a body without a multipart part named file as 400 invalid_uploading (§3.1)", async () => {
    const m = metrica();
    const res = await m.json(UPLOAD, { method: "POST", headers: { ...AUTH, "content-type": "text/csv" }, body: csv(`111,crm_won,${SECONDS - 60},,`) });
    expect(res.status).toBe(400);
    expect(res.body.errors[0]?.error_type).toBe("invalid_uploading");
  });

  it("refuses a client_id_type the file has no column for (older API, §3.1 [CONFLICT])", async () => {
    const m = metrica();
    const res = await m.upload(csv(`111,crm_won,${SECONDS - 60},,`), AUTH, "?client_id_type=YCLID");
    expect(res.status).toBe(400);
    expect(res.body.errors[0]?.error_type).toBe("invalid_uploading");
    expect((await m.upload(csv(`111,crm_won,${SECONDS - 60},,`), AUTH, "?client_id_type=client_id")).status).toBe(200);
  });
});

describe("the Metrica sandbox's refusals (FACTS-loop §3.1, §3.6, §6.M5)", () => {
  it.each([
    ["no Authorization header", 401, "unauthorized", {}],
    ["a Bearer token instead of 'OAuth <token>'", 401, "unauthorized", { authorization: `Bearer ${SANDBOX_METRICA.token}` }],
    ["an unknown token", 403, "invalid_token", { authorization: "OAuth nope" }],
  ])("answers %s with %i %s in Metrica's error shape", async (_, code, errorType, headers) => {
    const m = metrica();
    const res = await m.upload(csv(`111,crm_won,${SECONDS - 60},,`), headers as Record<string, string>);
    expect(res).toEqual({ status: code, body: { errors: [{ error_type: errorType, message: expect.any(String) }], code, message: expect.any(String) } });
  });

  it.each([
    ["a client_id_type it does not know", "?client_id_type=EMAIL"],
    ["a type other than BASIC, CALLS, CHATS (§3.1)", "?type=ORDERS"],
    ["a comment with other characters than digits and letters (§3.1)", "?comment=%3Cscript%3E"],
  ])("answers %s with 400 invalid_parameter", async (_, query) => {
    const m = metrica();
    const res = await m.upload(csv(`111,crm_won,${SECONDS - 60},,`), AUTH, query);
    expect([res.status, res.body.errors[0]?.error_type]).toEqual([400, "invalid_parameter"]);
  });

  it("answers 403 access_denied for a counter the token's owner cannot reach", async () => {
    const m = metrica();
    await m.control("/counters", { counterId: "777", token: "other-token", goals: ["x"] });
    const res = await m.json("/management/v1/counter/777/offline_conversions/uploadings", { headers: AUTH });
    expect(res.status).toBe(403);
    expect(res.body.errors[0]?.error_type).toBe("access_denied");
  });

  it("answers 429 quota_requests_by_uid past the daily request quota, and 503 backend_error when told to fail", async () => {
    const m = metrica();
    await m.control("/quota", { perDay: 1 });
    expect((await m.json(`/management/v1/counter/${SANDBOX_METRICA.counterId}/offline_conversions/uploadings`, { headers: AUTH })).status).toBe(200);
    const over = await m.json(`/management/v1/counter/${SANDBOX_METRICA.counterId}/offline_conversions/uploadings`, { headers: AUTH });
    expect([over.status, over.body.errors[0]?.error_type]).toEqual([429, "quota_requests_by_uid"]);

    await m.json("/_sandbox/metrica", { method: "DELETE" });
    await m.control("/fail", { times: 1 });
    const failed = await m.upload(csv(`111,crm_won,${SECONDS - 60},,`));
    expect([failed.status, failed.body.errors[0]?.error_type]).toEqual([503, "backend_error"]);
    expect((await m.upload(csv(`111,crm_won,${SECONDS - 60},,`))).status).toBe(200);
  });

  it("answers 404 not_found for an upload id it never gave", async () => {
    const m = metrica();
    const res = await m.status(42);
    expect([res.status, res.body.errors[0]?.error_type]).toEqual([404, "not_found"]);
  });
});

describe("the Metrica sandbox in the sandbox server", () => {
  it("is served at the server's root next to the other stand-ins", async () => {
    const { app } = createSandbox();
    const res = await app.request(`/management/v1/counter/${SANDBOX_METRICA.counterId}/offline_conversions/uploadings`, { headers: AUTH });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ uploadings: [] });
  });
});
