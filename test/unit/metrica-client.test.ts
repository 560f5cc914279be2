import { describe, expect, it } from "vitest";
import { createMetricaSandbox, SANDBOX_METRICA } from "../../sandbox/metrica";
import { conversionFiles, planConversions } from "../../worker/domain/offline-conversions";
import { isFinalStatus, MetricaError, metricaClient } from "../../worker/metrica/client";

/*
 * The Metrica adapter against the Metrica sandbox, called in-process through a fetch stub (unit tests have no
 * network). FACTS-loop §3.1 (OAuth header, multipart `file`), §3.3 (status polling), §3.6 (errors and quotas).
 */

const NOW = Date.parse("2026-12-10T12:00:00Z");
const SECONDS = Math.floor(NOW / 1000);
const BASE = "https://api-metrika.sandbox";
const CSV = `ClientId,Target,DateTime,Price,Currency\n111,crm_won,${SECONDS - 60},99.9,RUB\n`;

function setUp(token: string = SANDBOX_METRICA.token) {
  const { app } = createMetricaSandbox({ now: () => NOW });
  const sent: Request[] = [];
  const fetchStub = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    sent.push(request.clone());
    return app.request(request);
  }) as typeof fetch;
  const client = metricaClient({ token, baseUrl: BASE, fetch: fetchStub, now: () => NOW });
  const control = (path: string, body: unknown) => app.request(`/_sandbox/metrica${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { client, sent, control };
}

async function caught(promise: Promise<unknown>): Promise<MetricaError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof MetricaError) return error;
    throw error;
  }
  throw new Error("expected a MetricaError");
}

describe("the Metrica client uploads conversions and reads their status (FACTS-loop §3.1, §3.3)", () => {
  it("sends the CSV as the multipart part 'file' with 'Authorization: OAuth <token>' and polls until PROCESSED", async () => {
    const { client, sent, control } = setUp();
    await control("/visits", { clientId: "111", daysAgo: 1 });
    const uploading = await client.uploadConversions(SANDBOX_METRICA.counterId, CSV, { comment: "crm" });
    expect(uploading).toMatchObject({ id: "1", status: "UPLOADED", sourceQuantity: 1, lineQuantity: 1 });
    expect(sent[0]?.url).toBe(`${BASE}/management/v1/counter/${SANDBOX_METRICA.counterId}/offline_conversions/upload?comment=crm`);
    expect(sent[0]?.headers.get("authorization")).toBe(`OAuth ${SANDBOX_METRICA.token}`);
    const file = (await sent[0]?.formData())?.get("file");
    expect(file instanceof Blob ? await file.text() : null).toBe(CSV);

    let status = uploading;
    const seen: string[] = [];
    while (!isFinalStatus(status.status)) {
      status = await client.uploadStatus(SANDBOX_METRICA.counterId, status.id);
      seen.push(status.status);
    }
    expect(seen).toEqual(["EXPORTED", "MATCHED", "PROCESSED"]);
    expect(status).toMatchObject({ linked: 1, goalNotFound: 0, userNotFound: 0 });
  });

  it("uploads the files the domain renders, and Metrica accepts every row", async () => {
    const { client } = setUp();
    const plan = planConversions({
      candidates: [
        { conversion: { goal: "won", entity: { type: "deal", id: "9" }, at: NOW - 1000, revenue: { amount: 10, currency: "RUB" } }, visitor: { column: "Yclid", value: "6234" }, lastVisitAt: null },
      ],
      goals: { qualified: "crm_qualified", won: "crm_won" },
      fixed: new Map(),
      now: NOW,
    });
    const [file] = conversionFiles(plan.rows);
    const uploading = await client.uploadConversions(SANDBOX_METRICA.counterId, file?.csv ?? "");
    expect(uploading).toMatchObject({ sourceQuantity: 1, lineQuantity: 1 });
  });
});

describe("the Metrica client's errors are typed transient or permanent (FACTS-loop §3.6, §6 Metrica 5)", () => {
  it("makes a refused token permanent, and never puts the token in the error", async () => {
    const { client } = setUp("secret-token-never-logged");
    const error = await caught(client.uploadConversions(SANDBOX_METRICA.counterId, CSV));
    expect(error).toMatchObject({ type: "invalid_token", status: 403, transient: false });
    expect(`${error.message} ${error.stack} ${JSON.stringify(error)}`).not.toContain("secret-token-never-logged");
  });

  it("makes an invalid file permanent (400 invalid_uploading)", async () => {
    const { client } = setUp();
    const error = await caught(client.uploadConversions(SANDBOX_METRICA.counterId, "Target,DateTime\ncrm_won,1\n"));
    expect(error).toMatchObject({ type: "invalid_uploading", status: 400, transient: false });
  });

  it("makes 503 backend_error transient with a wait, and a daily quota transient until 00:00 GMT", async () => {
    const { client, control } = setUp();
    await control("/fail", { times: 1 });
    expect(await caught(client.uploadConversions(SANDBOX_METRICA.counterId, CSV))).toMatchObject({ type: "backend_error", status: 503, transient: true, retryAfterSeconds: 60 });

    await control("/quota", { perDay: 0 });
    // 12:00 GMT: twelve hours to the reset.
    expect(await caught(client.uploadStatus(SANDBOX_METRICA.counterId, "1"))).toMatchObject({ type: "quota_requests_by_uid", status: 429, transient: true, retryAfterSeconds: 12 * 3600 });
  });

  it("makes a network failure transient and an unreadable 200 transient", async () => {
    const down = metricaClient({ token: "t", baseUrl: BASE, fetch: (async () => Promise.reject(new TypeError("fetch failed"))) as typeof fetch });
    expect(await caught(down.uploadStatus("1", "1"))).toMatchObject({ type: "network", transient: true });
    const odd = metricaClient({ token: "t", baseUrl: BASE, fetch: (async () => Response.json({ uploading: { id: 1 } })) as typeof fetch });
    expect(await caught(odd.uploadStatus("1", "1"))).toMatchObject({ type: "unexpected_answer", transient: true });
  });

  it("refuses a counter id or upload id that is not a number before sending anything", async () => {
    const { client, sent } = setUp();
    expect(await caught(client.uploadConversions("1/../../other", CSV))).toMatchObject({ type: "invalid_parameter", transient: false });
    expect(await caught(client.uploadStatus(SANDBOX_METRICA.counterId, "1?x=2"))).toMatchObject({ type: "invalid_parameter", transient: false });
    expect(sent).toEqual([]);
  });
});
