import { describe, expect, it } from "vitest";
import { LeakyBucket } from "../../sandbox/bitrix/leaky-bucket";
import { bitrixNormalizePhone } from "../../sandbox/bitrix/normalize-phone";
import { Portal, RestError } from "../../sandbox/bitrix/portal";

describe("the sandbox's findbycomm normalisation follows Bitrix24's (FACTS.md §7 worked examples)", () => {
  it.each([
    ["+7 (912) 345-67-89", "79123456789"],
    ["8 912 345-67-89", "79123456789"],
    ["8 (800) 555-35-35", "78005553535"],
    ["9123456789", "9123456789"],
    ["+44 7911 123456", "447911123456"],
    ["07911 123456", "7911123456"],
    ["+375 29 123 45 67", "375291234567"],
    ["80291234567", "80291234567"],
    ["011 44 7911 123456", "447911123456"],
    ["+7 912 345 67 89 #123", "79123456789"],
  ])("%s → %s", (raw, normalized) => {
    expect(bitrixNormalizePhone(raw)).toBe(normalized);
  });
});

describe("the sandbox portal behaves like Bitrix24", () => {
  it("adds a second phone when an update sends a PHONE entry without ID", () => {
    const portal = new Portal();
    const id = portal.addLead({ PHONE: [{ VALUE: "+79123456789", VALUE_TYPE: "WORK" }] });
    portal.call("crm.lead.update", { id, fields: { PHONE: [{ VALUE: "+79123456789", VALUE_TYPE: "WORK" }] } });
    expect((portal.call("crm.lead.get", { id }).result as { PHONE: unknown[] }).PHONE).toHaveLength(2);
  });

  it("returns [] from findbycomm when nothing matches, and ids when a spelling matches", () => {
    const portal = new Portal();
    const id = portal.addLead({ PHONE: [{ VALUE: "8 (912) 345-67-89" }] });
    expect(portal.call("crm.duplicate.findbycomm", { type: "PHONE", values: ["+79990000000"], entity_type: "LEAD" }).result).toEqual([]);
    expect(portal.call("crm.duplicate.findbycomm", { type: "PHONE", values: ["+79123456789"], entity_type: "LEAD" }).result).toEqual({ LEAD: [id] });
  });

  // FACTS.md §7: "Don't rely on findbycomm to dedupe two requests arriving milliseconds apart".
  it("finds a new lead's phone by findbycomm only after the configured index lag, while crm.lead.list sees it at once", () => {
    let now = new Date("2026-11-24T10:00:00Z");
    const portal = new Portal(() => now);
    portal.findbycommLagMs = 30_000;
    const id = portal.addLead({ PHONE: [{ VALUE: "+79123456789" }] });
    const search = () => portal.call("crm.duplicate.findbycomm", { type: "PHONE", values: ["+79123456789"], entity_type: "LEAD" }).result;
    expect(search()).toEqual([]);
    expect(portal.call("crm.lead.list", { filter: { "@ID": [id] }, select: ["ID"] }).result).toEqual([{ ID: String(id) }]);
    now = new Date(now.getTime() + 30_000);
    expect(search()).toEqual({ LEAD: [id] });
  });

  it("drops unknown fields silently, including a user field that was never created", () => {
    const portal = new Portal();
    const id = portal.addLead({ TITLE: "x", UF_CRM_NOPE: "1", BOGUS: "2" });
    const lead = portal.call("crm.lead.get", { id }).result as Record<string, unknown>;
    expect(lead).not.toHaveProperty("UF_CRM_NOPE");
    expect(lead).not.toHaveProperty("BOGUS");
  });

  it('answers every field as a string, user fields as "" when empty', () => {
    const portal = new Portal();
    portal.call("crm.lead.userfield.add", { fields: { FIELD_NAME: "CM_X", USER_TYPE_ID: "string" } });
    const id = portal.addLead({ OPPORTUNITY: 5 });
    expect(portal.call("crm.lead.get", { id }).result).toMatchObject({ ID: String(id), OPPORTUNITY: "5", UF_CRM_CM_X: "", STATUS_SEMANTIC_ID: "P" });
  });

  it.each([
    ["an update of a missing lead", "crm.lead.update", { id: 999, fields: {} }, "Not found"],
    ["an update without an id", "crm.lead.update", { fields: {} }, "ID is not defined or invalid."],
    ["a user field without type", "crm.lead.userfield.add", { fields: { FIELD_NAME: "A" } }, "The 'USER_TYPE_ID' field is not found."],
    ["an unknown method", "crm.nothing", {}, "Method not found!"],
  ])("refuses %s with Bitrix's words", (_name, method, params, description) => {
    const portal = new Portal();
    let error: unknown;
    try {
      portal.call(method, params);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RestError);
    expect((error as RestError).description).toBe(description);
  });

  it("refuses a second user field with the same code", () => {
    const portal = new Portal();
    portal.call("crm.lead.userfield.add", { fields: { FIELD_NAME: "UF_CRM_A", USER_TYPE_ID: "string" } });
    expect(() => portal.call("crm.lead.userfield.add", { fields: { FIELD_NAME: "a", USER_TYPE_ID: "string" } })).toThrow(/already exists/);
  });
});

describe("the sandbox's leaky bucket", () => {
  it("lets a burst of 50 through, refuses the 51st, and drains 2 a second", () => {
    let now = 0;
    const bucket = new LeakyBucket(2, 50, () => now);
    for (let i = 0; i < 50; i++) expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
    now += 1_000;
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
  });
});
