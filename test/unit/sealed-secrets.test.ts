import { describe, expect, it, vi } from "vitest";
import { needsReseal, open, parseSettingsKeys, type Sealed, SealedSecretError, type SettingsKeys, seal } from "../../worker/storage/sealed-secrets";

/*
 * Portal secrets sealed at rest (worker/storage/sealed-secrets.ts), on Node's Web Crypto, which is the API
 * workerd implements. Every attack is a stored row moved or changed by someone with write access to storage.
 */

function randomKey(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
}

function keysOf(raw: string): SettingsKeys {
  const parsed = parseSettingsKeys(raw);
  if (!("keys" in parsed)) throw new Error(`test key refused: ${parsed.problem}`);
  return parsed.keys;
}

async function expectRefusal(promise: Promise<unknown>, code: SealedSecretError["code"]) {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SealedSecretError);
  expect((error as SealedSecretError).code).toBe(code);
}

function flipByte(base64: string, index: number): string {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const at = index < 0 ? bytes.length + index : index;
  bytes[at] = (bytes[at] ?? 0) ^ 0x01;
  return btoa(String.fromCharCode(...bytes));
}

const WEBHOOK = "https://portal-a.bitrix24.ru/rest/1/abcdef0123456789/";

describe("sealing portal secrets", () => {
  const keys = keysOf(randomKey());

  it("opens what it sealed, for the same portal and field", async () => {
    const sealed = await seal(keys, "portal-a", "webhook_url", WEBHOOK);
    expect(await open(keys, "portal-a", "webhook_url", sealed)).toBe(WEBHOOK);
  });

  it("stores neither the secret nor the key in the sealed value", async () => {
    const raw = randomKey();
    const sealed = await seal(keysOf(raw), "portal-a", "webhook_url", WEBHOOK);
    const stored = JSON.stringify(sealed);
    expect(stored).not.toContain("abcdef0123456789");
    expect(stored).not.toContain(raw);
  });

  it("refuses a value of portal A pasted into portal B's row", async () => {
    const sealed = await seal(keys, "portal-a", "webhook_url", WEBHOOK);
    await expectRefusal(open(keys, "portal-b", "webhook_url", sealed), "tampered");
  });

  it("refuses a value moved to another field of the same portal", async () => {
    const sealed = await seal(keys, "portal-a", "comagic_password", "s3cret");
    await expectRefusal(open(keys, "portal-a", "webhook_url", sealed), "tampered");
  });

  it.each([
    ["the first byte of the ciphertext", (s: Sealed): Sealed => ({ ...s, ct: flipByte(s.ct, 0) })],
    ["the last byte of the tag", (s: Sealed): Sealed => ({ ...s, ct: flipByte(s.ct, -1) })],
    ["a byte of the IV", (s: Sealed): Sealed => ({ ...s, iv: flipByte(s.iv, 5) })],
    ["the ciphertext cut short", (s: Sealed): Sealed => ({ ...s, ct: s.ct.slice(0, 8) })],
    ["an IV that is not base64", (s: Sealed): Sealed => ({ ...s, iv: "not base64!" })],
  ])("refuses a value with %s changed", async (_change, tamper) => {
    const sealed = await seal(keys, "portal-a", "webhook_url", WEBHOOK);
    await expectRefusal(open(keys, "portal-a", "webhook_url", tamper(sealed)), "tampered");
  });

  it("seals one value twice to two different ciphertexts under fresh IVs", async () => {
    const first = await seal(keys, "portal-a", "webhook_url", WEBHOOK);
    const second = await seal(keys, "portal-a", "webhook_url", WEBHOOK);
    expect(second.iv).not.toBe(first.iv);
    expect(second.ct).not.toBe(first.ct);
  });

  it("says which key a value names when SETTINGS_KEY no longer lists it", async () => {
    const sealed = await seal(keysOf(randomKey()), "portal-a", "webhook_url", WEBHOOK);
    await expectRefusal(open(keys, "portal-a", "webhook_url", sealed), "unknown_key");
    await expect(open(keys, "portal-a", "webhook_url", sealed)).rejects.toThrow(sealed.k);
  });

  it("imports each key once, however many values it seals and opens", async () => {
    const fresh = keysOf(randomKey());
    const importKey = vi.spyOn(crypto.subtle, "importKey");
    for (const portal of ["portal-a", "portal-b", "portal-c"]) {
      await open(fresh, portal, "webhook_url", await seal(fresh, portal, "webhook_url", WEBHOOK));
    }
    expect(importKey).toHaveBeenCalledTimes(1);
  });
});

describe("rotating SETTINGS_KEY", () => {
  const oldKey = randomKey();
  const newKey = randomKey();

  it("opens values sealed with the old key while it is listed second, and asks for them to be sealed again", async () => {
    const sealed = await seal(keysOf(oldKey), "portal-a", "webhook_url", WEBHOOK);
    const rotating = keysOf(`${newKey},${oldKey}`);
    expect(await open(rotating, "portal-a", "webhook_url", sealed)).toBe(WEBHOOK);
    expect(needsReseal(rotating, sealed)).toBe(true);
  });

  it("seals with the new key once it is first, and opens those values with the new key alone", async () => {
    const sealed = await seal(keysOf(oldKey), "portal-a", "webhook_url", WEBHOOK);
    const rotating = keysOf(`${newKey},${oldKey}`);
    const resealed = await seal(rotating, "portal-a", "webhook_url", await open(rotating, "portal-a", "webhook_url", sealed));
    expect(needsReseal(rotating, resealed)).toBe(false);
    const rotated = keysOf(newKey);
    expect(await open(rotated, "portal-a", "webhook_url", resealed)).toBe(WEBHOOK);
    await expectRefusal(open(rotated, "portal-a", "webhook_url", sealed), "unknown_key");
  });
});

describe("reading SETTINGS_KEY", () => {
  const good = randomKey();
  const short = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const long = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(48))));
  const hex = [...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, "0")).join("");

  it.each([
    ["a key of 16 bytes", short, "key decodes to 16 bytes, not 32"],
    ["a key of 48 bytes listed second", `${good},${long}`, "key 2 of 2 decodes to 48 bytes, not 32"],
    ["a key in hex", hex, "is hex, not base64"],
    ["a key that is not base64", "correct horse battery staple!", "is not base64"],
    ["an empty entry", `${good},`, "empty entry"],
    ["one key listed twice", `${good}, ${good}`, "lists one key twice (keys 1 and 2)"],
  ])("refuses %s with a problem that does not contain the value", (_case, raw, problem) => {
    const parsed = parseSettingsKeys(raw);
    expect(parsed).toEqual({ problem: expect.stringContaining(problem) });
    const text = "problem" in parsed ? parsed.problem : "";
    for (const part of raw.split(",")) if (part.trim().length > 4) expect(text).not.toContain(part.trim().slice(0, 8));
  });

  it.each([undefined, "", "  "])("says how to make a key when the setting is %j", (raw) => {
    expect(parseSettingsKeys(raw)).toEqual({ problem: expect.stringMatching(/^is not set: .*openssl rand -base64 32/) });
  });

  it("accepts keys separated by a comma and spaces, first key first", () => {
    const other = randomKey();
    const [first, second] = keysOf(` ${good} , ${other} `);
    expect(first?.id).toBe(keysOf(good)[0].id);
    expect(second?.id).toBe(keysOf(other)[0].id);
  });

  it("names each key by the first 8 hex digits of its SHA-256", async () => {
    for (let i = 0; i < 20; i++) {
      const raw = randomKey();
      const digest = new Uint8Array(
        await crypto.subtle.digest(
          "SHA-256",
          Uint8Array.from(atob(raw), (c) => c.charCodeAt(0)),
        ),
      );
      const hexDigest = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
      expect(keysOf(raw)[0].id).toBe(hexDigest.slice(0, 8));
    }
  });

  it("shows only a key's id when the key is serialized or its properties are listed", () => {
    const key = keysOf(good)[0];
    expect(JSON.stringify(key)).toBe(JSON.stringify({ id: key.id }));
    const bytes = [...Uint8Array.from(atob(good), (c) => c.charCodeAt(0))].join(",");
    const ownValues = Object.getOwnPropertyNames(key).map((name) => String(Reflect.get(key, name)));
    for (const shown of [JSON.stringify(key), String(key), ...ownValues]) {
      expect(shown).not.toContain(good);
      expect(shown).not.toContain(bytes.slice(0, 20));
    }
  });
});
