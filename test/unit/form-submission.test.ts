import { describe, expect, it } from "vitest";
import { formFingerprint, readFormSubmission } from "../../worker/domain/form-submission";
import { newLeadFields } from "../../worker/domain/lead-plan";
import { parseAllowedOrigins } from "../../worker/domain/origins";
import { SECRET_FIELD_NAME, withoutSecretFields } from "../../worker/domain/secret-fields";
import { SNIPPET_SOURCE } from "../../snippet/dist/bundle";

const options = { key: "form-abc", receivedAt: new Date("2026-11-24T10:00:00Z"), defaultRegion: "RU" as const };

describe("readFormSubmission", () => {
  it("maps the known fields and keeps the rest for the comment", () => {
    const result = readFormSubmission(
      {
        name: " Olga ",
        phone: "8 912 345 67 89",
        email: "O@Example.ru",
        comment: "hi",
        form_name: "Quiz",
        utm_source: "vk",
        first_utm_source: "ya",
        city: "Kazan",
        gclid: "g1",
        _hp: "",
        submission_id: "x",
      },
      options,
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event).toMatchObject({ kind: "form", key: "form-abc", phone: "+79123456789", email: "o@example.ru", name: "Olga", utm: { source: "vk" } });
    expect(result.event.form).toMatchObject({ name: "Quiz", message: "hi", firstUtm: { source: "ya" }, clickIds: { gclid: "g1" }, extra: { city: "Kazan" } });
  });

  it("names both fields when neither a phone nor an email is given", () => {
    expect(readFormSubmission({ name: "x" }, options)).toEqual({
      ok: false,
      issues: [
        { path: "phone", message: "a phone or an email is required" },
        { path: "email", message: "a phone or an email is required" },
      ],
    });
  });

  it("keeps at most 50 extra fields and cuts long values", () => {
    const fields = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`f${i}`, "v".repeat(3000)]));
    const result = readFormSubmission({ ...fields, email: "a@b.ru" }, options);
    expect(result.ok && Object.keys(result.event.form?.extra ?? {})).toHaveLength(50);
    expect(result.ok && result.event.form?.extra.f0).toHaveLength(2000);
  });

  it("credits a new lead to the visitor's first touch, keeping the last touch for the comment", () => {
    const result = readFormSubmission({ email: "a@b.ru", utm_source: "vk", first_utm_source: "ya", first_utm_medium: "cpc" }, options);
    if (!result.ok) throw new Error("expected ok");
    expect(newLeadFields(result.event)).toMatchObject({ UTM_SOURCE: "ya", UTM_MEDIUM: "cpc", SOURCE_ID: "WEB" });
    expect(newLeadFields(result.event)).not.toHaveProperty("UTM_CAMPAIGN");
  });
});

describe("withoutSecretFields", () => {
  // Issue #21 item 7: the names the first rule let through, then the first rule's own, in snake and camel case.
  it.each([
    ..."creditcard cc_number ccnum sms_code security_code verification_code pwd api_key".split(" "),
    ..."password passwd user_pass card_number cardholder cvv cvc iban csrf_token _csrf otp pin user_pin client_secret".split(" "),
    ..."creditCard ccNumber smsCode securityCode verificationCode apiKey newPassword userPwd authToken".split(" "),
  ])("drops %s", (name) => {
    expect(withoutSecretFields({ [name]: "s3cret", city: "Kazan" })).toEqual({ city: "Kazan" });
  });

  it.each([
    // Lead data that merely looks close: the rule must not eat a form's ordinary fields.
    ..."name phone email message comment city shipping_city order_id product promo_code postcode zip_code keyword opinion description company".split(" "),
    // Every field the worker maps and the snippet stamps.
    ..."form_name comagic_visitor_id comagic_session_id page_url referrer submission_id _hp _redirect ga_client_id ym_uid".split(" "),
    ..."source medium campaign content term".split(" ").flatMap((k) => [`utm_${k}`, `first_utm_${k}`]),
    ..."gclid yclid first_gclid first_yclid".split(" "),
  ])("keeps %s", (name) => {
    expect(withoutSecretFields({ [name]: "v" })).toEqual({ [name]: "v" });
  });

  it("is the very rule the snippet applies (snippet/build.mjs bundles it)", () => {
    expect(SNIPPET_SOURCE).toContain(String(SECRET_FIELD_NAME));
  });
});

describe("formFingerprint", () => {
  const now = new Date("2026-11-24T10:00:00Z");

  it("is the same for the same page view and content in any field order", () => {
    expect(formFingerprint({ a: "1", b: "2", submission_id: "pv" }, now)).toBe(formFingerprint({ b: "2", a: "1", submission_id: "pv" }, now));
  });

  it("differs for another page view or other content", () => {
    const base = formFingerprint({ a: "1", submission_id: "pv" }, now);
    expect(formFingerprint({ a: "1", submission_id: "pv2" }, now)).not.toBe(base);
    expect(formFingerprint({ a: "2", submission_id: "pv" }, now)).not.toBe(base);
  });

  it("groups plain HTML forms without a page-view id into 10-minute windows", () => {
    const later = new Date(now.getTime() + 11 * 60_000);
    expect(formFingerprint({ a: "1" }, now)).toBe(formFingerprint({ a: "1" }, new Date(now.getTime() + 60_000)));
    expect(formFingerprint({ a: "1" }, later)).not.toBe(formFingerprint({ a: "1" }, now));
  });
});

describe("parseAllowedOrigins", () => {
  const origins = parseAllowedOrigins(" https://shop.example.ru, https://*.example.org ,http://localhost:3000/, shop.example.com, https://x.ru/path");

  it.each([
    ["https://shop.example.ru", true],
    ["HTTPS://SHOP.EXAMPLE.RU", true],
    ["http://shop.example.ru", false],
    ["https://blog.example.org", true],
    ["https://a.b.example.org", true],
    ["https://example.org", false],
    ["https://evilexample.org", false],
    ["http://localhost:3000", true],
    ["http://localhost:3001", false],
    ["null", false],
    [undefined, false],
  ])("%s → %s", (origin, allowed) => {
    expect(origins.allows(origin)).toBe(allowed);
  });

  it("reports entries that are not origins", () => {
    expect(origins.invalid).toEqual(["shop.example.com", "https://x.ru/path"]);
  });
});
