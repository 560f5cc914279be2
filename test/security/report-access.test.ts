import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBitrixClient } from "../../worker/bitrix/client";
import { syncReportData } from "../../worker/jobs/report-sync";
import { createLogger } from "../../worker/log";
import { d1AttributionStore } from "../../worker/storage/attribution";
import { install } from "../worker/app-support";
import { sandbox, sandboxStats, workerWithEnv } from "../worker/support";
import { aged, claimsOf, inFreshMinute, openedReport, postReport, refreshReport, tokenOf } from "./report-support";

/*
 * Issue #21, items 5 and 6: where the report token travels and how long a user keeps the report, and what a
 * user (or a script with a user's token) can make the report spend. Against the sandbox portal, whose
 * `profile` says at once when a user's admin rights are taken away.
 */

const db = () => env.DB as D1Database;
/** The report's sync state this file changes: cleared before and after, so other files start from where they expect. */
const clearSyncState = () => db().prepare("DELETE FROM sync_state WHERE name IN ('deals.resume', 'report_sync.lease')").run();
const setAdmin = (userId: number, admin: boolean) => sandbox("/_sandbox/bitrix/app/user", { userId, admin });
const FIVE_MINUTES = 5 * 60;

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  expect((await install(1)).status).toBe(200);
  await clearSyncState();
});

afterAll(async () => {
  await setAdmin(2, false);
  await clearSyncState();
});

describe("the report token never travels in a URL", () => {
  it("puts the token in the page only as a form field: no link, form action or script URL carries it", async () => {
    const { html, token } = await openedReport(1);
    expect(token.length).toBeGreaterThan(20);
    expect(html.split(token)).toHaveLength(2);
    expect(html).toContain(`<input type="hidden" name="token" value="${token}">`);
    expect(html).toMatch(/<form class="filters" id="filters" method="post"/);
    for (const [, url] of html.matchAll(/(?:href|action|src|data-url)="([^"]*)"/g)) expect(url).not.toContain("token");
  });

  it("refuses a report link with the token in its query (405, no figures), and a POST whose token is only in the query (401)", async () => {
    const { token } = await openedReport(1);
    const viaGet = await workerWithEnv({})(new Request(`http://worker.test/bitrix/report?token=${encodeURIComponent(token)}&LANG=en`));
    expect(viaGet.status).toBe(405);
    expect(await viaGet.text()).toContain("This page opens from the CoMagic app in Bitrix24");
    expect((await workerWithEnv({})(new Request(`http://worker.test/bitrix/report.csv?token=${encodeURIComponent(token)}`))).status).toBe(405);
    expect((await postReport("/bitrix/report", {}, undefined, `?LANG=en&token=${encodeURIComponent(token)}`)).status).toBe(401);
    expect((await postReport("/bitrix/report.csv", {}, undefined, `?token=${encodeURIComponent(token)}`)).status).toBe(401);
  });
});

describe("access is checked again with Bitrix24 once the token's check is five minutes old", () => {
  it("shuts out a user whose admin rights were taken away: the page, the CSV and the refresh", async () => {
    await setAdmin(2, true);
    const { token } = await openedReport(2);
    expect((await postReport("/bitrix/report", { token })).status).toBe(200);
    await setAdmin(2, false);
    const later = await aged(token, FIVE_MINUTES + 1);
    const page = await postReport("/bitrix/report", { token: later, grouping: "utm_source" });
    expect(page.status).toBe(403);
    const html = await page.text();
    expect(html).toContain("No access to the report");
    expect(html).toContain("add your user id (2) to REPORT_USER_IDS");
    expect(html).not.toContain('name="token"');
    // The worker forgot the user's Bitrix24 token with the refusal: the same page's CSV and refresh get nothing either.
    const csv = await postReport("/bitrix/report.csv", { token: later });
    expect(csv.status).toBe(401);
    expect(await csv.text()).not.toContain("Group,");
    expect((await refreshReport(later)).status).toBe(401);
  });

  it("refuses the CSV export (403) of a user who lost admin rights, with no figures", async () => {
    await setAdmin(2, true);
    const { token } = await openedReport(2);
    await setAdmin(2, false);
    const csv = await postReport("/bitrix/report.csv", { token: await aged(token, FIVE_MINUTES + 1) });
    expect(csv.status).toBe(403);
    expect(await csv.text()).not.toContain("Group,");
  });

  it("shuts out a user taken off REPORT_USER_IDS", async () => {
    const { token } = await openedReport(3, "en", workerWithEnv({ REPORT_USER_IDS: "3" }));
    const later = await aged(token, FIVE_MINUTES + 1);
    expect((await postReport("/bitrix/report", { token: later }, workerWithEnv({ REPORT_USER_IDS: "3" }))).status).toBe(200);
    const again = await aged(token, FIVE_MINUTES + 1);
    expect((await postReport("/bitrix/report.csv", { token: again }, workerWithEnv({ REPORT_USER_IDS: "" }))).status).toBe(403);
  });

  it("trusts a check for five minutes, then renews the token after a new one, never past the page's hour", async () => {
    const before = (await sandboxStats()).methods.profile ?? 0;
    const { token } = await openedReport(1);
    const fresh = await postReport("/bitrix/report", { token });
    expect(fresh.status).toBe(200);
    expect((await sandboxStats()).methods.profile).toBe(before + 1);

    const later = await aged(token, FIVE_MINUTES + 1);
    const rechecked = await postReport("/bitrix/report", { token: later });
    expect(rechecked.status).toBe(200);
    expect((await sandboxStats()).methods.profile).toBe(before + 2);
    const renewed = rechecked.headers.get("x-report-token") ?? "";
    expect(tokenOf(await rechecked.text())).toBe(renewed);
    expect(Number(claimsOf(renewed).checkedAt)).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) - 5);
    expect(claimsOf(renewed).expiresAt).toBe(claimsOf(token).expiresAt);
  });

  it("sends the user back to Bitrix24 (401) when Bitrix24 no longer accepts the token the page was opened with", async () => {
    const { token } = await openedReport(1);
    await sandbox("/_sandbox/bitrix/app/expire-tokens", {});
    const res = await postReport("/bitrix/report", { token: await aged(token, FIVE_MINUTES + 1) });
    expect(res.status).toBe(401);
    expect(await res.text()).toContain("open the app again from Bitrix24");
  });
});

describe("what one user can make the report spend", () => {
  it("refuses a user's 21st page or export in a minute (429, Retry-After), while other users and that user's refresh go on", async () => {
    const asPavel = workerWithEnv({ REPORT_USER_IDS: "4" });
    const { token } = await openedReport(4, "en", asPavel);
    await inFreshMinute();
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await postReport(i % 2 ? "/bitrix/report.csv" : "/bitrix/report", { token }, asPavel)).status);
    expect(statuses).toEqual(Array(20).fill(200));
    const limited = await postReport("/bitrix/report", { token }, asPavel);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    expect(await limited.text()).toContain("Too many report requests");
    expect((await postReport("/bitrix/report.csv", { token }, asPavel)).status).toBe(429);

    const { token: admins } = await openedReport(1);
    expect((await postReport("/bitrix/report", { token: admins })).status).toBe(200);
    expect((await refreshReport(token, asPavel)).status).toBe(200);
  });

  it("refuses a user's 21st refresh in a minute", async () => {
    const asOleg = workerWithEnv({ REPORT_USER_IDS: "3" });
    const { token } = await openedReport(3, "en", asOleg);
    await inFreshMinute();
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) statuses.push((await refreshReport(token, asOleg)).status);
    expect(statuses.slice(0, 20)).toEqual(Array(20).fill(200));
    expect(statuses[20]).toBe(429);
  });

  it("runs one sync at a time: refreshes while the cron's sync runs wait for it and read no deal themselves", async () => {
    await sandbox("/_sandbox/reset", {});
    const store = d1AttributionStore(db(), "default");
    const lease = await store.claimSync(new Date(), new Date(Date.now() + 60_000));
    expect(lease).not.toBeNull();
    const [{ token: first }, { token: second }] = [await openedReport(1), await openedReport(2, "en", workerWithEnv({ REPORT_USER_IDS: "2" }))];
    const waiting = [refreshReport(first), refreshReport(second, workerWithEnv({ REPORT_USER_IDS: "2" }))];
    await new Promise((r) => setTimeout(r, 1500));
    await store.releaseSync(lease ?? "");
    const answers = await Promise.all(waiting);
    expect(answers.map((r) => r.status)).toEqual([200, 200]);
    expect(await Promise.all(answers.map((r) => r.json()))).toEqual([{ status: "joined" }, { status: "joined" }]);
    expect((await sandboxStats()).methods["crm.deal.list"] ?? 0).toBe(0);
  });

  it("the cron's sync skips while a refresh holds the lease", async () => {
    const store = d1AttributionStore(db(), "default");
    const lease = await store.claimSync(new Date(), new Date(Date.now() + 60_000));
    try {
      const cron = await syncReportData({
        bitrix: createBitrixClient({ baseUrl: env.BITRIX_WEBHOOK_URL ?? "", timeoutMs: 1500 }),
        dataApi: null,
        store,
        siteIds: [],
        timeZone: "Europe/Moscow",
        now: () => new Date(),
        log: createLogger({ test: "report-access" }),
      });
      expect(cron).toMatchObject({ status: "busy", deals: null });
    } finally {
      await store.releaseSync(lease ?? "");
    }
  });

  it("reads at most REPORT_SYNC_MAX_PAGES pages of deals a refresh, says the rest is coming, and the next refresh goes on from there", async () => {
    await sandbox("/_sandbox/reset", {});
    for (let i = 0; i < 60; i++) await sandbox("/_sandbox/deals", { fields: { TITLE: `Deal ${i}`, STAGE_ID: "NEW", OPPORTUNITY: "100", CURRENCY_ID: "RUB" } });
    const onePage = workerWithEnv({ REPORT_SYNC_MAX_PAGES: "1" });
    const { token } = await openedReport(1, "en", onePage);
    const first = await refreshReport(token, onePage);
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ status: "refreshed", deals: { read: 50, complete: false } });
    expect(await (await postReport("/bitrix/report", { token }, onePage)).text()).toContain("Not every changed deal is read from Bitrix24 yet");
    const second = await refreshReport(token, onePage);
    expect(await second.json()).toMatchObject({ deals: { read: 10, complete: true } });
    expect((await sandboxStats()).methods["crm.deal.list"]).toBe(2);
    expect(await (await postReport("/bitrix/report", { token }, onePage)).text()).not.toContain("Not every changed deal is read from Bitrix24 yet");
  });
});
