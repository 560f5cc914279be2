import { describe, expect, it } from "vitest";
import type { CoMagicRpcClient } from "../../worker/comagic/data-api";
import { CALL_RECORD_TRIES, type CallRecordDeps, handleCallRecordJobs } from "../../worker/jobs/call-record";
import { createLogger } from "../../worker/log";

/*
 * Which reads of get.calls_report a batch of call.record jobs makes. The Data API costs a point per read
 * (data_api.txt:129, 150), and a report window may not pass 3 months / 90 days (FACTS-calls §2).
 */
const NOW = new Date("2026-11-24T12:00:00Z");
const DAY_MS = 86_400_000;

type Sent = { filter: unknown; date_from: unknown; date_till: unknown };

/** A Data API whose calls report has none of the calls yet: every job waits, and every read is seen. */
function emptyReport() {
  const sent: Sent[] = [];
  const dataApi: CoMagicRpcClient = {
    loginCount: 0,
    call: async (_method, params = {}) => {
      sent.push({ filter: params.filter, date_from: params.date_from, date_till: params.date_till });
      return { data: [], metadata: { total_items: 0 } };
    },
  };
  return { dataApi, sent };
}

function message(body: unknown, attempts = 1) {
  const seen = { acked: false, retried: false };
  const ack = () => {
    seen.acked = true;
  };
  const retry = () => {
    seen.retried = true;
  };
  const msg = { id: String(Math.random()), timestamp: NOW, attempts, body, ack, retry };
  return { msg: msg as unknown as Message<unknown>, seen };
}

const job = (sessionId: number, calledAt: Date) => ({
  type: "call.record",
  v: 1,
  requestId: "t",
  leadId: "7",
  entity: "lead",
  sessionId: String(sessionId),
  calledAt: calledAt.toISOString(),
  visitorId: null,
  recordingUrl: null,
});

function deps(dataApi: CoMagicRpcClient): CallRecordDeps {
  const unused = () => {
    throw new Error("not used when no record is found");
  };
  return {
    dataApi,
    store: { entityFields: unused },
    userOfEmployee: unused,
    bitrix: {} as CallRecordDeps["bitrix"],
    ledger: null,
    followUps: null,
    queue: "comagic-enrich-jobs",
    timeZone: "Europe/Moscow",
    retrySeconds: 60,
    deadLetters: { send: unused },
    log: createLogger({}, () => {}),
    now: () => NOW,
    random: () => 0.5,
  };
}

describe("call records read per batch", () => {
  it("asks for every call of a batch in one read (id in […]) from a day before the earliest call to now", async () => {
    const { dataApi, sent } = emptyReport();
    const messages = [101, 102, 103].map((id, i) => message(job(id, new Date(NOW.getTime() - (i + 1) * 3_600_000))));
    await handleCallRecordJobs(
      messages.map((m) => m.msg),
      deps(dataApi),
    );
    expect(sent).toEqual([{ filter: { field: "id", operator: "in", value: [103, 102, 101] }, date_from: "2026-11-23 12:00:00", date_till: "2026-11-24 15:00:00" }]);
    // Not in the report yet: each waits on its own, as before.
    expect(messages.map((m) => m.seen)).toEqual(messages.map(() => ({ acked: false, retried: true })));
  });

  it("gives a call too old to share the window (a replayed dead letter) a read of its own, so CoMagic refuses neither", async () => {
    const { dataApi, sent } = emptyReport();
    const old = new Date(NOW.getTime() - 120 * DAY_MS);
    await handleCallRecordJobs([message(job(201, NOW)).msg, message(job(202, old)).msg], deps(dataApi));
    expect(sent.map((s) => s.filter)).toEqual([
      { field: "id", operator: "=", value: 202 },
      { field: "id", operator: "=", value: 201 },
    ]);
    for (const s of sent) expect(Date.parse(`${String(s.date_till).replace(" ", "T")}Z`) - Date.parse(`${String(s.date_from).replace(" ", "T")}Z`)).toBeLessThanOrEqual(85 * DAY_MS);
  });

  it("gives a call up after its last try without another job's read deciding for it", async () => {
    const { dataApi } = emptyReport();
    const last = message(job(301, NOW), CALL_RECORD_TRIES);
    const first = message(job(302, NOW));
    await handleCallRecordJobs([last.msg, first.msg], deps(dataApi));
    expect([last.seen, first.seen]).toEqual([
      { acked: true, retried: false },
      { acked: false, retried: true },
    ]);
  });
});
