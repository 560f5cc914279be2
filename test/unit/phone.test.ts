import { describe, expect, it } from "vitest";
import { maskPhone, normalizePhone, phoneSearchVariants } from "../../worker/domain/phone";

describe("normalizePhone", () => {
  it.each([
    ["8 (912) 345-67-89", "+79123456789"],
    ["+7 912 345 67 89", "+79123456789"],
    ["79123456789", "+79123456789"],
    ["89123456789", "+79123456789"],
    ["9123456789", "+79123456789"],
    ["  +7(912)345-67-89 ", "+79123456789"],
    ["+44 7911 123456", "+447911123456"],
    ["+375 29 123 45 67", "+375291234567"],
  ])("turns %s into %s", (raw, e164) => {
    expect(normalizePhone(raw, "RU")).toBe(e164);
  });

  it.each(["", "12345", "abc", "0079123456789", "+7 912"])("refuses %j", (raw) => {
    expect(normalizePhone(raw, "RU")).toBeNull();
  });

  it("reads a national number in the configured region", () => {
    expect(normalizePhone("030 1234567", "DE")).toBe("+49301234567");
  });
});

describe("phoneSearchVariants", () => {
  it("covers the spellings managers type for a Russian number", () => {
    expect(phoneSearchVariants("+79123456789")).toEqual(["+79123456789", "79123456789", "9123456789", "89123456789"]);
  });

  it("has no trunk-8 spelling outside Russia and Kazakhstan", () => {
    expect(phoneSearchVariants("+447911123456")).toEqual(["+447911123456", "447911123456", "7911123456"]);
  });
});

describe("maskPhone", () => {
  it("keeps the country and operator code and the last two digits", () => {
    expect(maskPhone("+79123456789")).toBe("+7912*****89");
  });
  it("hides short values entirely", () => {
    expect(maskPhone("12345")).toBe("*****");
  });
});
