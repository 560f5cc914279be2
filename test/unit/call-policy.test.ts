import { describe, expect, it } from "vitest";
import { checkCallNumber, untypedCallCountries } from "../../worker/domain/call-policy";

const RU = new Set(["RU"]);

describe("the click-to-call number policy (toll fraud)", () => {
  it.each([
    ["+79123456789", "a Russian mobile"],
    ["+74951234567", "a Moscow landline"],
    ["+78005553535", "a Russian toll-free number"],
  ])("calls %s (%s)", (number) => {
    expect(checkCallNumber(number, RU)).toBeNull();
  });

  it.each([
    ["+78095551234", RU, "number_type_refused"],
    ["+4915123456789", RU, "country_not_allowed"],
    ["+881612345678", RU, "country_not_allowed"],
    ["+449098790123", new Set(["GB"]), "number_type_refused"],
    ["+77011234567", new Set(["KZ", "RU"]), null],
    ["+7123", RU, "not_a_phone"],
  ] as const)("refuses %s where only %o may be called: %s", (number, countries, reason) => {
    expect(checkCallNumber(number, countries)?.reason ?? null).toBe(reason);
  });

  it("names the CALL_COUNTRIES entries whose number types the bundled metadata cannot tell", () => {
    expect(untypedCallCountries(["RU", "KZ", "BR"])).toEqual(["BR"]);
  });
});
