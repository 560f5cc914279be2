/**
 * crm-store.ts, the Bitrix24 CRM reads and writes of a round of events, against the Bitrix24 sandbox: its Hono app
 * is called in-process through the BitrixClient's `fetch` (unit tests have no network), so every command goes
 * through a real `batch` with Bitrix24's envelopes, `[]` for empty maps, empty error codes, lagging duplicate
 * search and portals without leads (sandbox/bitrix follows ../shared/reference/bitrix24/FACTS.md and
 * FACTS-portals.md; each test names the line it relies on). Each test gets a portal of its own.
 */
import { describe, expect, it } from "vitest";
import { createSandbox } from "../../sandbox/server";
import { createBitrixClient } from "../../worker/bitrix/client";
import { createCrmStore, type CrmStore, type WriteOutcome } from "../../worker/bitrix/crm-store";
import { BitrixError } from "../../worker/bitrix/errors";
import { ensureCrmUserFields } from "../../worker/bitrix/user-fields";
import type { CrmEntityRef, CrmMode } from "../../worker/domain/crm-entity";
import type { LeadEvent } from "../../worker/domain/lead-event";
import { planWrite, type CrmLookup } from "../../worker/domain/write-plan";
import { callEvent } from "../fixtures/lead-event";
import { rejection } from "../helpers/rejection";

const ORIGIN = "http://sandbox.test";
const DAY_MS = 86_400_000;

/** An item as the sandbox's control page shows it: its fields and its timeline. */
type CrmItem = Record<string, unknown> & { ID: string; TIMELINE_COMMENTS: string[]; TODOS: { title: string }[]; PHONE?: { VALUE: string }[] };

/** A sandbox portal set up as the worker's setup leaves it (the CoMagic user fields exist), and a store that writes to it. */
async function portal(settings: { mode?: 1 | 2 } = {}) {
  const { app, describe: at } = createSandbox();
  const client = createBitrixClient({
    baseUrl: at(ORIGIN).bitrixWebhookUrl,
    timeoutMs: 5_000,
    fetch: async (input, init) => app.request(input, init),
    sleep: async () => {},
  });
  const control = async (path: string, body: unknown) => {
    const res = await app.request(`${ORIGIN}/_sandbox/${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`sandbox ${path}: HTTP ${res.status}`);
    return (await res.json()) as { id?: number };
  };
  await ensureCrmUserFields(client);
  if (settings.mode) await control("portal", { mode: settings.mode });
  const mode: CrmMode = settings.mode === 2 ? "simple" : "classic";
  const store = createCrmStore(client);
  return {
    store,
    client,
    /** Sandbox settings: `faults` (and findbycommLagMs), `required-fields`, `portal`. */
    control,
    /** An item a manager typed in a day ago: the duplicate index has long seen it. */
    seed: async (entity: "leads" | "contacts" | "deals", fields: Record<string, unknown>) => String((await control(entity, { fields, createdAt: new Date(Date.now() - DAY_MS).toISOString() })).id),
    crm: async () => (await (await app.request(`${ORIGIN}/_sandbox/crm`)).json()) as Record<"leads" | "deals" | "contacts", CrmItem[]>,
    /** Looks the events up, plans each write as the consumer does, and applies the plans. */
    round: async (events: LeadEvent[], as: CrmMode = mode) => {
      const lookups = await store.lookup(events, as);
      const writes = events.map((event) => ({ event, plan: planWrite(event, lookupOf(lookups, event), rules(as)) }));
      return { writes, outcomes: await store.apply(writes) };
    },
  };
}

/** The consumer's rules for a round (worker/jobs/consumer.ts roundRules), in English. */
const rules = (mode: CrmMode) => ({ mode, now: new Date(), dedupDays: 30, defaultRegion: "RU" as const, language: "en" as const });

function lookupOf(lookups: Map<string, CrmLookup>, event: LeadEvent): CrmLookup {
  const lookup = lookups.get(event.key);
  if (!lookup) throw new Error(`no lookup for ${event.key}`);
  return lookup;
}

async function lookupOne(store: CrmStore, event: LeadEvent, mode: CrmMode, known?: ReadonlyMap<string, readonly CrmEntityRef[]>) {
  return lookupOf(await store.lookup([event], mode, known), event);
}

const PHONE = "+79123456789";

describe("finding the person a new event is about", () => {
  // FACTS.md §7: findbycomm matches Bitrix24's normalisation exactly; "9123456789 → 9123456789 (no match with the 11-digit forms)".
  it("finds a lead whose phone a manager typed without the country code, since the search sends every spelling", async () => {
    const { store, seed } = await portal();
    const id = await seed("leads", { TITLE: "By hand", PHONE: [{ VALUE: "(912) 345-67-89", VALUE_TYPE: "WORK" }] });
    const found = await lookupOne(store, callEvent({ key: "k1", phone: PHONE }), "classic");
    expect(found.leads.map((lead) => [lead.id, lead.phones])).toEqual([[id, ["(912) 345-67-89"]]]);
  });

  // FACTS.md §2.5: findbycomm with type EMAIL; without entity_type it answers leads, contacts and companies at once.
  it("finds a lead by the event's email", async () => {
    const { store, seed } = await portal();
    const id = await seed("leads", { TITLE: "Mail", EMAIL: [{ VALUE: "ivan@example.ru", VALUE_TYPE: "WORK" }] });
    const found = await lookupOne(store, callEvent({ key: "k1", phone: null, email: "ivan@example.ru" }), "classic");
    expect(found.leads.map((lead) => [lead.id, lead.emails])).toEqual([[id, ["ivan@example.ru"]]]);
  });

  // FACTS-portals §2: STAGE_SEMANTIC_ID P is in progress, S won, F lost; crm.deal.list filters by the deal's CONTACT_ID.
  it("finds the caller's contact with its open deal, and leaves out the deal already won", async () => {
    const { store, seed } = await portal();
    const contact = await seed("contacts", { NAME: "Ivan", PHONE: [{ VALUE: PHONE, VALUE_TYPE: "WORK" }] });
    const open = await seed("deals", { TITLE: "Open", CONTACT_ID: contact, STAGE_ID: "NEW" });
    await seed("deals", { TITLE: "Won", CONTACT_ID: contact, STAGE_ID: "WON" });
    const found = await lookupOne(store, callEvent({ key: "k1" }), "classic");
    expect(found.clients.map((c) => [c.type, c.id])).toEqual([["contact", contact]]);
    expect(found.deals.map((deal) => [deal.id, deal.stageSemantic])).toEqual([[open, "P"]]);
  });

  /*
   * FACTS.md §2.5: "If 20 or more duplicates are found for one object type, the other types are not returned" (so:
   * "call per entity_type when it matters"). A caller whose phone is on 20 old leads (on a portal without leads, 20
   * converted ones) would lose their contact and its open deal (a new lead or a second contact instead of a comment):
   * the store asks the other types again, one by one, when a search reaches the cap.
   */
  it("finds the caller's contact and its open deal even when the phone is on 20 closed leads", async () => {
    const { store, seed } = await portal();
    for (let i = 0; i < 20; i++) await seed("leads", { TITLE: `Old ${i}`, STATUS_ID: "JUNK", PHONE: [{ VALUE: PHONE, VALUE_TYPE: "WORK" }] });
    const contact = await seed("contacts", { NAME: "Ivan", PHONE: [{ VALUE: PHONE, VALUE_TYPE: "WORK" }] });
    const open = await seed("deals", { TITLE: "Open", CONTACT_ID: contact });
    const found = await lookupOne(store, callEvent({ key: "k1" }), "classic");
    expect(found.clients.map((c) => [c.type, c.id])).toEqual([["contact", contact]]);
    expect(found.deals.map((deal) => deal.id)).toEqual([open]);
  });

  // FACTS.md §2.5: "no hits → {"result":[]} (JSON array, not object)".
  it("reads the duplicate search's [] as nobody found", async () => {
    const { store } = await portal();
    expect(await lookupOne(store, callEvent({ key: "k1", email: "new@example.ru" }), "classic")).toEqual({ applied: null, leads: [], clients: [], deals: [], hinted: [] });
  });
});

describe("the duplicate search lags behind writes (FACTS.md §7: don't rely on findbycomm to dedupe two requests arriving milliseconds apart)", () => {
  it("does not see through the duplicate search the lead it has just created, but finds it by the event's key at once", async () => {
    const { store, control, round, crm } = await portal();
    await control("faults", { findbycommLagMs: 60_000 });
    const first = callEvent({ key: "first" });
    const { outcomes } = await round([first]);
    const lead = (await crm()).leads[0];
    expect(outcomes.get("first")).toEqual({ ok: true, action: "created", target: { type: "lead", id: lead?.ID }, client: null });

    // A second call from the same phone: the search does not see the lead yet.
    expect((await lookupOne(store, callEvent({ key: "second" }), "classic")).leads).toEqual([]);
    // The first event retried: its ORIGIN_ID, read by crm.lead.list, says it was written.
    expect((await lookupOne(store, first, "classic")).applied).toEqual({ type: "lead", id: lead?.ID, client: null, created: true });
    expect(await store.findAppliedKeys(["first"])).toEqual(new Map([["first", lead?.ID]]));
  });

  it("finds the lead our own records tie to the phone while the duplicate search does not see it yet", async () => {
    const { store, control, round } = await portal();
    await control("faults", { findbycommLagMs: 60_000 });
    const { outcomes } = await round([callEvent({ key: "first" })]);
    const created = outcomes.get("first");
    if (!created?.ok) throw new Error("the first event was not written");
    const id = created.target.id;

    const found = await lookupOne(store, callEvent({ key: "second" }), "classic", new Map([["second", [{ type: "lead", id }]]]));
    expect(found.leads.map((lead) => [lead.id, lead.phones])).toEqual([[id, [PHONE]]]);
    expect(found.hinted).toEqual([{ type: "lead", id }]);
  });
});

describe("finding the keys already applied", () => {
  // FACTS.md §7: "use your own idempotency key (e.g. … ORIGINATOR_ID/ORIGIN_ID fields)", which crm.*.list filters on.
  it("finds what an event created by its ORIGIN_ID and what it updated by UF_CRM_COMAGIC_ID, as ledger refs, whatever the portal's mode", async () => {
    const { store, seed, control, round } = await portal();
    const typed = await seed("leads", { TITLE: "By hand", PHONE: [{ VALUE: "+79120000002", VALUE_TYPE: "WORK" }] });
    const classic = await round([callEvent({ key: "made-lead", phone: "+79120000001" }), callEvent({ key: "updated-lead", phone: "+79120000002" })]);
    // The admin turns leads off (FACTS-portals §1): the leads stay, new events make deals.
    await control("portal", { mode: 2 });
    const simple = await round([callEvent({ key: "made-deal", phone: "+79120000003" })], "simple");
    const target = (outcome: WriteOutcome | undefined) => (outcome?.ok ? outcome.target : null);
    expect([target(classic.outcomes.get("made-lead"))?.type, target(classic.outcomes.get("updated-lead")), target(simple.outcomes.get("made-deal"))?.type]).toEqual([
      "lead",
      { type: "lead", id: typed },
      "deal",
    ]);

    expect(await store.findAppliedKeys(["made-lead", "updated-lead", "made-deal", "never-seen"])).toEqual(
      new Map([
        ["made-lead", target(classic.outcomes.get("made-lead"))?.id],
        ["updated-lead", typed],
        ["made-deal", `deal:${target(simple.outcomes.get("made-deal"))?.id}`],
      ]),
    );
  });

  it("does not take an ORIGIN_ID another integration wrote for one of ours", async () => {
    const { store, seed } = await portal();
    await seed("leads", { TITLE: "Other app", ORIGINATOR_ID: "other-app", ORIGIN_ID: "k1" });
    expect(await store.findAppliedKeys(["k1"])).toEqual(new Map());
    expect((await lookupOne(store, callEvent({ key: "k1", phone: "+79120000009" }), "classic")).applied).toBeNull();
  });
});

describe("writing leads on a portal with leads", () => {
  it("creates a lead carrying the event's phone and keys, and answers its id", async () => {
    const { round, crm } = await portal();
    const { outcomes } = await round([callEvent({ key: "k1", utm: { source: "google", medium: null, campaign: null, content: null, term: null } })]);
    const [lead] = (await crm()).leads;
    expect(outcomes.get("k1")).toEqual({ ok: true, action: "created", target: { type: "lead", id: lead?.ID }, client: null });
    expect(lead).toMatchObject({ ORIGINATOR_ID: "comagic", ORIGIN_ID: "k1", UF_CRM_COMAGIC_ID: "k1", UTM_SOURCE: "google", PHONE: [{ VALUE: PHONE }] });
  });

  // FACTS.md §2.2: a PHONE entry sent without ID adds a second phone, so the store must not send the one the lead has.
  it("updates the caller's open lead: the event's comment on its timeline, the new key on the lead, its phone not doubled", async () => {
    const { round, seed, crm } = await portal();
    const id = await seed("leads", { TITLE: "By hand", NAME: "Ivan", PHONE: [{ VALUE: PHONE, VALUE_TYPE: "WORK" }] });
    const { outcomes } = await round([callEvent({ key: "k1", name: "Someone else" })]);
    expect(outcomes.get("k1")).toEqual({ ok: true, action: "updated", target: { type: "lead", id }, client: null });
    const { leads } = await crm();
    expect(leads).toHaveLength(1);
    expect(leads[0]).toMatchObject({ ID: id, NAME: "Ivan", UF_CRM_COMAGIC_ID: "k1", PHONE: [{ VALUE: PHONE }] });
    expect(leads[0]?.TIMELINE_COMMENTS).toHaveLength(1);
  });

  // FACTS-portals §2: STATUS_SEMANTIC_ID F for JUNK, S for CONVERTED; only P is in progress.
  it("passes over the caller's closed leads: the event makes a new lead and the closed ones get no comment", async () => {
    const { round, seed, crm } = await portal();
    const junk = await seed("leads", { TITLE: "Junk", STATUS_ID: "JUNK", PHONE: [{ VALUE: PHONE, VALUE_TYPE: "WORK" }] });
    const converted = await seed("leads", { TITLE: "Converted", STATUS_ID: "CONVERTED", PHONE: [{ VALUE: PHONE, VALUE_TYPE: "WORK" }] });
    const outcome = (await round([callEvent({ key: "k1" })])).outcomes.get("k1");
    expect(outcome).toMatchObject({ ok: true, action: "created", target: { type: "lead" } });
    const { leads } = await crm();
    expect(leads.map((lead) => [lead.ID, lead.STATUS_SEMANTIC_ID, lead.TIMELINE_COMMENTS.length])).toEqual([
      [junk, "F", 0],
      [converted, "S", 0],
      [outcome?.ok && outcome.target.id, "P", 0],
    ]);
  });

  // FACTS.md §2.7: crm.timeline.comment.add answers NOT_FOUND for a missing lead; §2.11: inside a batch answered with
  // HTTP 200, whose `result` is `[]` (an empty map) when every command failed, as here.
  it("does not bring back leads deleted between lookup and write, and says each write is worth a retry", async () => {
    const { store, client, seed, crm } = await portal();
    const first = await seed("leads", { TITLE: "A", PHONE: [{ VALUE: "+79120000001", VALUE_TYPE: "WORK" }] });
    const second = await seed("leads", { TITLE: "B", PHONE: [{ VALUE: "+79120000002", VALUE_TYPE: "WORK" }] });
    const events = [callEvent({ key: "k1", phone: "+79120000001" }), callEvent({ key: "k2", phone: "+79120000002" })];
    const lookups = await store.lookup(events, "classic");
    const writes = events.map((event) => ({ event, plan: planWrite(event, lookupOf(lookups, event), rules("classic")) }));
    expect(writes.map((w) => w.plan.action)).toEqual(["update", "update"]);
    await client.call("crm.lead.delete", { id: first });
    await client.call("crm.lead.delete", { id: second });

    const outcomes = await store.apply(writes);
    for (const key of ["k1", "k2"]) {
      const outcome = outcomes.get(key);
      expect(outcome?.ok).toBe(false);
      if (outcome?.ok === false) {
        expect(outcome.error).toMatchObject({ code: "NOT_FOUND", transient: true, applied: "no" });
        expect(outcome.error.message).toContain("Not found");
      }
    }
    expect((await crm()).leads).toEqual([]);
  });
});

describe("writing contacts and deals on a portal without leads (FACTS-portals §1: a lead added there is converted at once)", () => {
  it("makes a new caller a contact and a deal of that contact, and no lead", async () => {
    const { round, crm } = await portal({ mode: 2 });
    const { outcomes } = await round([callEvent({ key: "k1" })]);
    const { leads, contacts, deals } = await crm();
    expect(leads).toEqual([]);
    expect(contacts).toHaveLength(1);
    expect(contacts[0]).toMatchObject({ ORIGINATOR_ID: "comagic", ORIGIN_ID: "k1", PHONE: [{ VALUE: PHONE }] });
    expect(deals).toHaveLength(1);
    expect(deals[0]).toMatchObject({ CONTACT_ID: contacts[0]?.ID, ORIGIN_ID: "k1", UF_CRM_COMAGIC_ID: "k1" });
    expect(outcomes.get("k1")).toEqual({ ok: true, action: "created", target: { type: "deal", id: deals[0]?.ID }, client: { type: "contact", id: contacts[0]?.ID }, contactCreated: true });
  });

  it("gives a known contact without an open deal a new deal, and no second contact", async () => {
    const { round, seed, crm } = await portal({ mode: 2 });
    const contact = await seed("contacts", { NAME: "Ivan", PHONE: [{ VALUE: "8 (912) 345-67-89", VALUE_TYPE: "WORK" }] });
    const { outcomes } = await round([callEvent({ key: "k1" })]);
    const { contacts, deals } = await crm();
    expect(contacts.map((c) => c.ID)).toEqual([contact]);
    expect(deals.map((d) => d.CONTACT_ID)).toEqual([contact]);
    expect(outcomes.get("k1")).toMatchObject({ ok: true, action: "created", client: { type: "contact", id: contact }, contactCreated: false });
  });

  it("comments on the open deal of the caller's contact", async () => {
    const { round, seed, crm } = await portal({ mode: 2 });
    const contact = await seed("contacts", { NAME: "Ivan", PHONE: [{ VALUE: PHONE, VALUE_TYPE: "WORK" }] });
    const deal = await seed("deals", { TITLE: "Open", CONTACT_ID: contact });
    const { outcomes } = await round([callEvent({ key: "k1" })]);
    expect(outcomes.get("k1")).toEqual({ ok: true, action: "updated", target: { type: "deal", id: deal }, client: { type: "contact", id: contact } });
    const { deals } = await crm();
    expect(deals).toHaveLength(1);
    expect(deals[0]).toMatchObject({ UF_CRM_COMAGIC_ID: "k1" });
    expect(deals[0]?.TIMELINE_COMMENTS).toHaveLength(1);
  });

  // FACTS-portals §5: a required field refuses the add with an empty code; FACTS.md §7: the search lags behind the contact.
  it("makes no second contact when an earlier try made the contact but Bitrix24 refused the deal", async () => {
    const { control, round, crm } = await portal({ mode: 2 });
    await control("faults", { findbycommLagMs: 60_000 });
    await control("required-fields", { entity: "deal", fields: ["BEGINDATE"], restCheck: true });
    const event = callEvent({ key: "k1" });
    const refused = (await round([event])).outcomes.get("k1");
    expect(refused).toMatchObject({ ok: false, error: { code: "REQUIRED_FIELD_MISSING", transient: false } });
    expect((await crm()).deals).toEqual([]);

    // The admin lifts the check and the dead letter is replayed.
    await control("required-fields", { entity: "deal", fields: [], restCheck: false });
    const { writes, outcomes } = await round([event]);
    const { contacts, deals } = await crm();
    expect(contacts).toHaveLength(1);
    expect(writes[0]?.plan).toMatchObject({ action: "create-deal", contact: { id: contacts[0]?.ID } });
    expect(deals.map((d) => d.CONTACT_ID)).toEqual([contacts[0]?.ID]);
    expect(outcomes.get("k1")).toMatchObject({ ok: true, action: "created", contactCreated: false });
  });
});

describe("Bitrix24's errors, as the queue acts on them", () => {
  // FACTS-portals §5 and FACTS.md §3.3: legacy crm.* methods answer `"error": ""` with the reason in the description.
  it.each([
    ["a field the portal requires of applications", { entity: "lead", fields: ["LAST_NAME"], restCheck: true }, callEvent({ key: "k1" }), "REQUIRED_FIELD_MISSING", "Last name"],
    // FACTS.md §7: "e-mails are syntax-checked".
    ["an e-mail Bitrix24 finds invalid", null, callEvent({ key: "k1", email: "ivan@mail" }), "ERROR", "Invalid e-mail address"],
  ] as const)("gives up on a lead refused for %s, keeping Bitrix24's words, and writes nothing", async (_name, setup, event, code, says) => {
    const { control, round, crm } = await portal();
    if (setup) await control("required-fields", setup);
    const outcome = (await round([event])).outcomes.get(event.key);
    expect(outcome).toMatchObject({ ok: false, error: { code, transient: false, applied: "no" } });
    expect(outcome?.ok === false && outcome.error.message).toContain(says);
    expect((await crm()).leads).toEqual([]);
  });

  // FACTS.md §3.3: INTERNAL_SERVER_ERROR, which may come after the work was done (the sandbox's 500 does the work
  // first): reading again is harmless, writing again is not.
  it("repeats a lookup whose reads failed with 500, but not a create: the create may have happened, and happens once", async () => {
    const { store, control, round, crm } = await portal();
    await control("faults", { targeted: [{ method: "crm.duplicate.findbycomm", kind: "500", times: 1 }] });
    expect((await lookupOne(store, callEvent({ key: "k1" }), "classic")).leads).toEqual([]);

    await control("faults", { targeted: [{ method: "crm.lead.add", kind: "500", times: 1 }] });
    const outcome = (await round([callEvent({ key: "k1" })])).outcomes.get("k1");
    expect(outcome).toMatchObject({ ok: false, error: { code: "INTERNAL_SERVER_ERROR", transient: true, applied: "unknown" } });
    expect((await crm()).leads.map((lead) => lead.ORIGIN_ID)).toEqual(["k1"]);
  });

  it("fails the whole lookup with Bitrix24's error when its reads keep failing, so that the round is retried", async () => {
    const { store, control } = await portal();
    await control("faults", { targeted: [{ method: "crm.lead.list", kind: "500", times: 10 }] });
    const error = await rejection(store.lookup([callEvent({ key: "k1" })], "classic"), BitrixError);
    expect(error).toMatchObject({ code: "INTERNAL_SERVER_ERROR", transient: true });
  });
});

describe("reading back what was written, and to-dos", () => {
  it("reads the UTMs, visitor and creation date of leads and deals by ledger ref, leaving out a lead that is gone", async () => {
    const { store, seed } = await portal();
    const utm = { source: "google", medium: "cpc", campaign: null, content: null, term: null };
    const lead = await seed("leads", { TITLE: "A", UTM_SOURCE: "google", UTM_MEDIUM: "cpc", UF_CRM_CM_VISITOR_ID: "v1" });
    const deal = await seed("deals", { TITLE: "B", UTM_SOURCE: "google", UTM_MEDIUM: "cpc" });
    const fields = await store.entityFields([
      { type: "lead", id: lead },
      { type: "deal", id: deal },
      { type: "lead", id: "999" },
    ]);
    expect([...fields.keys()]).toEqual([lead, `deal:${deal}`]);
    expect(fields.get(lead)).toMatchObject({ ref: { type: "lead", id: lead }, utm, visitorId: "v1" });
    expect(fields.get(`deal:${deal}`)).toMatchObject({ ref: { type: "deal", id: deal }, utm, visitorId: null });
    expect(fields.get(lead)?.dateCreate).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  // FACTS-portals §6: crm.activity.todo.add is not idempotent ("keep your own ledger") and answers OWNER_NOT_FOUND for a missing owner.
  it("answers only the to-dos Bitrix24 confirmed, leaving out one whose lead is gone", async () => {
    const { store, seed, crm } = await portal();
    const lead = await seed("leads", { TITLE: "A" });
    const todo = (ownerId: number) => ({ ownerTypeId: 1 as const, ownerId, deadline: "2026-11-24T10:30:00+00:00", title: "Call back", description: "Missed call" });
    expect(
      await store.addTodos([
        { key: "k1", todo: todo(Number(lead)) },
        { key: "k2", todo: todo(999) },
      ]),
    ).toEqual(new Set(["k1"]));
    expect((await crm()).leads[0]?.TODOS).toMatchObject([{ title: "Call back" }]);
  });
});
