import * as z from "zod";

/**
 * Portal secrets (webhook URL, CoMagic password or key, OAuth tokens) sealed at rest with AES-GCM.
 *
 * The keys come from one Worker secret, `SETTINGS_KEY`: comma-separated base64 of 32 random bytes each. The first
 * key seals, every key opens. Rotation: put the new key first and keep the old one second until every stored value
 * has been sealed again (`needsReseal` tells which), then drop the old one.
 *
 * Each portal gets its own AES-256 key, derived from the settings key with HKDF-SHA-256 (`info` = `portal:<portal>`),
 * and each value is bound to its place by the additional data `<portal>|<field>|<key id>`: a sealed value pasted
 * into another portal's row, or into another field of the same portal, does not open. IVs are 96 random bits, fresh
 * for every seal: NIST SP 800-38D allows 2^32 such seals per key, far above a portal's handful of secrets resealed
 * on each OAuth refresh.
 */

const KEY_BYTES = 32; // AES-256 and HKDF's input are both 32 random bytes
const IV_BYTES = 12; // 96 bits: GCM's own IV size, no extra hashing of the IV
const GENERATE_HINT = "generate one with openssl rand -base64 32";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A sealed value as stored: `k` names the key (first 8 hex digits of its SHA-256), `iv` and `ct` are base64. */
export const sealedSchema = z.object({
  k: z.string().regex(/^[0-9a-f]{8}$/),
  iv: z.string().min(1),
  ct: z.string().min(1),
});
export type Sealed = z.infer<typeof sealedSchema>;

/**
 * One key of `SETTINGS_KEY`. Its bytes live in a private field, so a key that is logged or serialized shows
 * its id only.
 */
export class SettingsKey {
  readonly id: string;
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array) {
    if (bytes.length !== KEY_BYTES) throw new RangeError(`a settings key is ${KEY_BYTES} bytes, not ${bytes.length}`);
    this.#bytes = bytes.slice();
    this.id = keyId(this.#bytes);
  }

  /** The HKDF key, imported once per isolate: every seal and open of this key reuses it. */
  hkdfKey(): Promise<CryptoKey> {
    let key = importedKeys.get(this.id);
    if (!key) {
      key = crypto.subtle.importKey("raw", this.#bytes, "HKDF", false, ["deriveKey"]);
      importedKeys.set(this.id, key);
      // A failed import is not cached: the next call tries again.
      key.catch(() => importedKeys.delete(this.id));
    }
    return key;
  }
}

/** The keys in `SETTINGS_KEY`'s order: the first seals. */
export type SettingsKeys = readonly [SettingsKey, ...SettingsKey[]];

/** Why a sealed value does not open; the caller maps the code to its own error. */
export class SealedSecretError extends Error {
  constructor(
    readonly code: "unknown_key" | "tampered",
    message: string,
  ) {
    super(message);
    this.name = "SealedSecretError";
  }
}

// By key id. Ids are 32 bits of SHA-256; parseSettingsKeys refuses two keys with one id.
const importedKeys = new Map<string, Promise<CryptoKey>>();

/**
 * Reads `SETTINGS_KEY`. A problem reads after the setting's name ("SETTINGS_KEY is not set: …") and never
 * contains the value or a part of it.
 */
export function parseSettingsKeys(raw: string | undefined): { keys: SettingsKeys } | { problem: string } {
  if (raw === undefined || raw.trim() === "") return { problem: `is not set: portal secrets cannot be stored; ${GENERATE_HINT}` };
  const entries = raw.split(",").map((entry) => entry.trim());
  const keys: SettingsKey[] = [];
  for (const [index, entry] of entries.entries()) {
    const which = entries.length === 1 ? "the key" : `key ${index + 1} of ${entries.length}`;
    if (entry === "") return { problem: `has an empty entry (${which}): list keys separated by single commas` };
    if (/^[0-9a-f]{64}$/i.test(entry)) return { problem: `${which} is hex, not base64; ${GENERATE_HINT}` };
    const bytes = fromBase64(entry);
    if (!bytes) return { problem: `${which} is not base64; ${GENERATE_HINT}` };
    if (bytes.length !== KEY_BYTES) return { problem: `${which} decodes to ${bytes.length} bytes, not ${KEY_BYTES}; ${GENERATE_HINT}` };
    const key = new SettingsKey(bytes);
    const same = keys.findIndex((earlier) => earlier.id === key.id);
    if (same !== -1) return { problem: `lists one key twice (keys ${same + 1} and ${index + 1}): keep each key once, the new one first` };
    keys.push(key);
  }
  const [first, ...rest] = keys;
  // Unreachable: a value that is not blank has at least one entry, and an empty entry returned above.
  if (!first) return { problem: `is not set: portal secrets cannot be stored; ${GENERATE_HINT}` };
  return { keys: [first, ...rest] };
}

/** Seals `plaintext` as `field` of `portal` with the first key. */
export async function seal(keys: SettingsKeys, portal: string, field: string, plaintext: string): Promise<Sealed> {
  const key = keys[0];
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: additionalData(portal, field, key.id) }, await portalKey(key, portal), encoder.encode(plaintext));
  return { k: key.id, iv: toBase64(iv), ct: toBase64(new Uint8Array(ct)) };
}

/**
 * Opens what `seal` sealed as `field` of `portal`. Throws `SealedSecretError`: "unknown_key" when no key in the
 * list has the value's id (dropped from `SETTINGS_KEY` too early), "tampered" when the value was changed or
 * was sealed for another portal or field.
 */
export async function open(keys: SettingsKeys, portal: string, field: string, sealed: Sealed): Promise<string> {
  const key = keys.find((candidate) => candidate.id === sealed.k);
  if (!key) throw new SealedSecretError("unknown_key", `the ${field} of portal ${portal} was sealed with key ${sealed.k}, which SETTINGS_KEY no longer lists`);
  const tampered = new SealedSecretError("tampered", `the ${field} of portal ${portal} does not open: it was changed, or sealed for another portal or field`);
  const iv = fromBase64(sealed.iv);
  const ct = fromBase64(sealed.ct);
  if (!iv || iv.length !== IV_BYTES || !ct) throw tampered;
  try {
    const plaintext = await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: additionalData(portal, field, key.id) }, await portalKey(key, portal), ct);
    return decoder.decode(plaintext);
  } catch {
    // GCM refuses (OperationError) without saying why; any cause is a value we did not seal here.
    throw tampered;
  }
}

/** True when the value was sealed with a key other than the first: seal it again before the old key is dropped. */
export function needsReseal(keys: SettingsKeys, sealed: Sealed): boolean {
  return sealed.k !== keys[0].id;
}

// Derived per call: deriving is cheap next to the import, and a cache per portal would grow with the portals.
async function portalKey(key: SettingsKey, portal: string): Promise<CryptoKey> {
  return crypto.subtle.deriveKey(
    // No salt: the input is 32 uniformly random bytes already (RFC 5869 §3.1), and `info` separates the portals.
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode(`portal:${portal}`) },
    await key.hkdfKey(),
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

// The key id ends the string at a fixed length, and the portal is also in the derived key, so no two
// (portal, field) pairs that could share a key share this string.
function additionalData(portal: string, field: string, id: string): Uint8Array {
  return encoder.encode(`${portal}|${field}|${id}`);
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array | null {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}

/*
 * The key id: the first 8 hex digits of SHA-256 of the key's 32 bytes. Web Crypto's digest is asynchronous, and
 * SETTINGS_KEY is read where the rest of the settings are, synchronously; a 32-byte message is one SHA-256 block
 * (FIPS 180-4), and only the first word of the digest is needed. test/unit/sealed-secrets.test.ts checks it
 * against crypto.subtle.digest.
 */
const SHA256_K = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];
const SHA256_H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

function keyId(bytes: Uint8Array): string {
  const block = new Uint8Array(64);
  block.set(bytes);
  block[bytes.length] = 0x80;
  const view = new DataView(block.buffer);
  view.setUint32(60, bytes.length * 8);
  const w: number[] = [];
  for (let i = 0; i < 16; i++) w.push(view.getUint32(i * 4));
  const at = (i: number) => w[i] ?? 0;
  for (let i = 16; i < 64; i++) {
    const s0 = rotr(at(i - 15), 7) ^ rotr(at(i - 15), 18) ^ (at(i - 15) >>> 3);
    const s1 = rotr(at(i - 2), 17) ^ rotr(at(i - 2), 19) ^ (at(i - 2) >>> 10);
    w.push((at(i - 16) + s0 + at(i - 7) + s1) >>> 0);
  }
  let state = SHA256_H0;
  for (let i = 0; i < 64; i++) {
    const [a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0] = state;
    const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + (SHA256_K[i] ?? 0) + at(i)) >>> 0;
    const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
    state = [(t1 + t2) >>> 0, a, b, c, (d + t1) >>> 0, e, f, g];
  }
  return (((SHA256_H0[0] ?? 0) + (state[0] ?? 0)) >>> 0).toString(16).padStart(8, "0");
}

function rotr(x: number, n: number): number {
  return ((x >>> n) | (x << (32 - n))) >>> 0;
}
