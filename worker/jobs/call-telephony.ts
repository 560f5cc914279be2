import * as z from "zod";
import { type BatchAnswers, type BatchBuilder, batchBuilder } from "../bitrix/batch-builder";
import type { BitrixClient } from "../bitrix/client";
import { BitrixError } from "../bitrix/errors";
import { checkRecordingLink, type RecordingCheck } from "../comagic/recording-link";
import { errorMessage } from "../log";
import { findInLedger, recordInLedger, type AppliedEvents } from "../storage/d1";
import type { TelephonyStatus } from "../storage/telephony-status";
import { callTelephonyJobSchema, type CallTelephonyJob } from "./schema";
import { asFailure, readJobs, retryOrDeadLetter, type Failure, type SettleDeps } from "./settle";

/*
 * Each written call also becomes a Bitrix24 telephony call: register (SHOW 0, CRM_CREATE 0, bound to the lead
 * or the deal's contact), finish (duration, 200 or 304 for a lost call: Bitrix24 then adds the call activity to
 * the timeline and counts the call in its reports), attachRecord (after finish; the player). FACTS.md §2.9,
 * FACTS-portals §7. Register and finish go in one `batch` each for the whole queue batch; attachRecord makes
 * Bitrix24 download the file inside the request, so each recording is checked (comagic/recording-link.ts) and
 * attached in a request of its own. Each step is recorded in the ledger, so a redelivered job repeats none:
 *   call-reg:<key>  the CALL_ID register gave (kept in the ledger's id column)
 *   call:<key>      finished
 *   call-rec:<key>  the recording attached
 * EXTERNAL_CALL_ID is the event key: a re-register after a lost answer returns the same call.
 */

/** Errors that mean "this authorization may not use telephony" (docs: application context only; or no scope). */
const REFUSALS = new Set(["WRONG_AUTH_TYPE", "insufficient_scope", "ACCESS_DENIED", "ERROR_METHOD_NOT_FOUND"]);
export const isTelephonyRefusal = (error: BitrixError) => REFUSALS.has(error.code);

export interface TelephonyDeps extends SettleDeps {
  /** The app's OAuth client when the app is installed on the webhook's portal, then the webhook's: tried in order. */
  clients: { name: "app" | "webhook"; client: BitrixClient }[];
  ledger: AppliedEvents | null;
  status: TelephonyStatus | null;
  /** USER_ID when the job names no responsible: DEFAULT_RESPONSIBLE_ID, else the webhook's user. */
  fallbackUserId: string;
  queue: string;
  /** Whether a recording link answers with audio; checkRecordingLink unless a test stands in. */
  checkRecording?: (url: string) => Promise<RecordingCheck>;
}

/**
 * How many attach requests run at once: each may last a download (up to Bitrix24's 60 s), so a queue batch of 20
 * recordings takes five rounds, well inside a consumer's 15 minutes, and stays under a Worker's six open connections.
 */
const ATTACH_LANES = 4;

type Item = { message: Message<unknown>; job: CallTelephonyJob };

const keys = (key: string) => ({ registered: `call-reg:${key}`, finished: `call:${key}`, recorded: `call-rec:${key}` });

/** FACTS-portals §7: a lost call is finished with 304 ("missed"), an answered one with 200. */
function finishParams(job: CallTelephonyJob, callId: string, userId: string): Record<string, unknown> {
  return { CALL_ID: callId, USER_ID: Number(userId), DURATION: Math.round(job.talkSeconds), STATUS_CODE: job.lost ? "304" : "200", ADD_TO_CHAT: 0 };
}

/**
 * A dismissed or unknown USER_ID (FACTS.md §2.9): no retry helps, so the dead letter says which user, where it came
 * from, and what a person changes. The job keeps the user it was planned with: a replay helps once that user is
 * active again, or (for the fallback user) once DEFAULT_RESPONSIBLE_ID names an active one.
 */
function inactiveUser(job: CallTelephonyJob, userId: string, error: BitrixError): Failure {
  const fix = job.userId
    ? `Map another, active user in COMAGIC_EMPLOYEES (or LOST_CALL_RESPONSIBLE_ID, DEFAULT_RESPONSIBLE_ID) for the next calls; to put this one in telephony, make user ${userId} active again and replay this dead letter.`
    : "Set DEFAULT_RESPONSIBLE_ID to an active user, then replay this dead letter.";
  const source = job.userId ? "the call's responsible" : "DEFAULT_RESPONSIBLE_ID, else the webhook's user";
  return {
    code: error.code,
    message: `Bitrix24 telephony refused USER_ID ${userId} (${source}): the user is dismissed or unknown. ${fix} The call stays on the timeline as a comment meanwhile.`,
    transient: false,
    retryAfterSeconds: 0,
  };
}

class Refused extends Error {
  constructor(readonly reason: BitrixError) {
    super(reason.message);
  }
}

/** One batch of writes; a refusal of the authorization itself stops this client (the next one is tried). */
async function run(client: BitrixClient, batch: BatchBuilder): Promise<BatchAnswers> {
  const answers = await batch.send(client, { readOnly: false });
  const refusal = answers.errors().find(isTelephonyRefusal);
  if (refusal) throw new Refused(refusal);
  return answers;
}

const registeredCall = z.object({ CALL_ID: z.string().min(1) }).loose();
const anything = z.unknown();

async function process(items: Item[], client: BitrixClient, deps: TelephonyDeps): Promise<void> {
  const ledgerKeys = items.flatMap(({ job }) => Object.values(keys(job.key)));
  const done = await findInLedger(deps.ledger, ledgerKeys, deps.log);
  const userOf = (job: CallTelephonyJob) => job.userId ?? deps.fallbackUserId;
  const settled = new Set<Item>();
  const fail = async (item: Item, error: unknown) => {
    settled.add(item);
    const failure = error instanceof BitrixError && error.code === "USER_NOT_ACTIVE" ? inactiveUser(item.job, userOf(item.job), error) : asFailure(error);
    await retryOrDeadLetter(item.message, deps.queue, failure, { key: item.job.key }, deps);
  };
  const failWith = async (item: Item, failure: Failure) => {
    settled.add(item);
    await retryOrDeadLetter(item.message, deps.queue, failure, { key: item.job.key }, deps);
  };

  const callIds = new Map<Item, string>();
  const registering = batchBuilder();
  const registers = items.flatMap((item) => {
    const { job } = item;
    const registered = done.get(keys(job.key).registered);
    if (registered) callIds.set(item, registered);
    if (registered || done.has(keys(job.key).finished)) return [];
    const params = {
      USER_ID: Number(userOf(job)),
      PHONE_NUMBER: job.phone,
      TYPE: job.outbound ? 1 : 2,
      CALL_START_DATE: job.startedAt,
      CRM_CREATE: 0,
      CRM_ENTITY_TYPE: job.crmEntity.type,
      CRM_ENTITY_ID: Number(job.crmEntity.id),
      SHOW: 0,
      EXTERNAL_CALL_ID: job.key,
    };
    return [{ item, handle: registering.add("register", { method: "telephony.externalCall.register", params }, registeredCall) }];
  });
  const registered = await run(client, registering);
  for (const { item, handle } of registers) {
    const callId = registered.value(handle)?.CALL_ID;
    if (callId) callIds.set(item, callId);
    else await fail(item, registered.failure(handle));
  }
  await recordInLedger(
    deps.ledger,
    [...callIds].filter(([item]) => !done.has(keys(item.job.key).registered)).map(([item, id]) => ({ key: keys(item.job.key).registered, ref: id })),
    deps.now(),
    deps.log,
  );

  const finishing = batchBuilder();
  const finishes = items.flatMap((item) => {
    const callId = callIds.get(item);
    if (!callId || settled.has(item) || done.has(keys(item.job.key).finished)) return [];
    return [{ item, handle: finishing.add("finish", { method: "telephony.externalCall.finish", params: finishParams(item.job, callId, userOf(item.job)) }, anything) }];
  });
  const finished = await run(client, finishing);
  const nowFinished: Item[] = [];
  for (const { item, handle } of finishes) {
    const error = finished.failure(handle);
    // A finish whose answer was lost is finished: a second one finds no active call. Only a redelivery can tell.
    // ("User is not found or is not active" is USER_NOT_ACTIVE by now, not this.)
    const finishedBefore = error?.code === "ERROR_CORE" && /not found/i.test(error.message) && item.message.attempts > 1;
    if (!error || finishedBefore) nowFinished.push(item);
    else await fail(item, error);
  }
  await recordInLedger(
    deps.ledger,
    nowFinished.map((item) => ({ key: keys(item.job.key).finished, ref: callIds.get(item) ?? "" })),
    deps.now(),
    deps.log,
  );

  const attaching = items.filter((item) => {
    const callId = callIds.get(item) ?? done.get(keys(item.job.key).finished);
    const isFinished = nowFinished.includes(item) || done.has(keys(item.job.key).finished);
    return callId && item.job.recordingUrl && isFinished && !settled.has(item) && !done.has(keys(item.job.key).recorded);
  });
  const attached = new Map<Item, AttachOutcome>();
  await inLanes(attaching, ATTACH_LANES, async (item) => {
    attached.set(item, await attach(item, callIds.get(item) ?? done.get(keys(item.job.key).finished) ?? "", client, deps));
  });
  const recorded = attaching.filter((item) => attached.get(item)?.kind === "attached");
  await recordInLedger(
    deps.ledger,
    recorded.map((item) => ({ key: keys(item.job.key).recorded, ref: callIds.get(item) ?? "" })),
    deps.now(),
    deps.log,
  );
  for (const item of items) {
    if (settled.has(item)) continue;
    const outcome = attached.get(item);
    if (outcome?.kind === "retry") {
      await failWith(item, outcome.failure);
      continue;
    }
    // A link that is no recording, or one Bitrix24 could not download, stays a link: the timeline comment has it.
    if (outcome?.kind === "refused") deps.log.warn("telephony.record_refused", { key: item.job.key, host: hostOf(item.job.recordingUrl), reason: outcome.reason });
    if (outcome?.kind === "failed") deps.log.warn("telephony.record_failed", { key: item.job.key, host: hostOf(item.job.recordingUrl), error: outcome.reason });
    deps.log.info("telephony.call_written", { key: item.job.key, entity: item.job.crmEntity.type, lost: item.job.lost, recording: recorded.includes(item) });
    item.message.ack();
  }
}

type AttachOutcome = { kind: "attached" } | { kind: "refused" | "failed"; reason: string } | { kind: "retry"; failure: Failure };

/**
 * One recording, checked, then attached in a request of its own: Bitrix24 downloads it inside the request
 * (60 s at most, FACTS.md §4.1), so a slow download fails no other call's. Calling again replaces the record
 * (FACTS-portals §7), so a retry after a timeout is harmless.
 */
async function attach(item: Item, callId: string, client: BitrixClient, deps: TelephonyDeps): Promise<AttachOutcome> {
  const url = item.job.recordingUrl ?? "";
  const check = await (deps.checkRecording ?? checkRecordingLink)(url);
  if (check.verdict === "not-audio") return { kind: "refused", reason: check.reason };
  if (check.verdict === "retry") return { kind: "retry", failure: { code: "RECORDING_UNAVAILABLE", message: `The recording ${check.reason}`, transient: true, retryAfterSeconds: 0 } };
  if (check.verdict === "unreachable") deps.log.info("telephony.record_unchecked", { key: item.job.key, host: hostOf(url), reason: check.reason });
  try {
    // Bitrix24 takes only .mp3 or .wav names, and in URL mode would take the link's own (FACTS-portals §7).
    await client.call("telephony.externalCall.attachRecord", { CALL_ID: callId, RECORD_URL: url, FILENAME: `comagic-${item.job.key}.mp3` });
    return { kind: "attached" };
  } catch (error) {
    const failure = asFailure(error);
    return failure.transient ? { kind: "retry", failure } : { kind: "failed", reason: failure.message };
  }
}

/** The host alone: a recording link may carry a signature in its path or query. */
function hostOf(url: string | null): string | null {
  try {
    return url ? new URL(url).host : null;
  } catch {
    return null;
  }
}

/** Runs `work` over `items`, at most `lanes` at a time (a Worker keeps six connections open at once: cloudflare/FACTS.md). */
async function inLanes<T>(items: readonly T[], lanes: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(lanes, items.length) }, lane));
}

/**
 * Writes each job's call into Bitrix24 telephony with the first client Bitrix24 lets use it. When every client
 * is refused, the calls stay timeline comments (as they are already) and /health says why for an hour.
 */
export async function handleTelephonyJobs(messages: readonly Message<unknown>[], deps: TelephonyDeps): Promise<void> {
  const items = readJobs(messages, callTelephonyJobSchema, deps.log);
  if (items.length === 0) return;
  const refused = await deps.status?.refusedBecause().catch(() => null);
  if (refused) {
    deps.log.info("telephony.skipped", { reason: refused, count: items.length });
    for (const { message } of items) message.ack();
    return;
  }
  const reasons: string[] = [];
  for (const { name, client } of deps.clients) {
    try {
      await process(items, client, deps);
      return;
    } catch (error) {
      if (!(error instanceof Refused)) {
        for (const { message, job } of items) await retryOrDeadLetter(message, deps.queue, asFailure(error), { key: job.key }, deps);
        return;
      }
      reasons.push(`${name}: ${error.reason.code}`);
    }
  }
  const reason = `Bitrix24 refused telephony.externalCall.* (${reasons.join("; ") || "no client"}): calls stay timeline comments`;
  deps.log.warn("telephony.refused", { reason, count: items.length });
  await deps.status?.refuse(reason).catch((error: unknown) => deps.log.warn("telephony.status_unsaved", { error: errorMessage(error) }));
  for (const { message } of items) message.ack();
}
