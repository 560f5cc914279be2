import * as z from "zod";

/**
 * The token the CoMagic tab embeds for its Call button: who (portal, user), which card, which number, until
 * when. Signed with HMAC-SHA256 under TAB_TOKEN_SECRET, a key of its own: the app's client secret is readable
 * by every portal admin and travels to the OAuth server on each refresh, so it must not sign calls.
 */
export const tabClaimsSchema = z
  .object({
    memberId: z.string(),
    userId: z.string(),
    /** The card's entity (a lead, deal or contact; tokens from before deal and contact cards name none: a lead). */
    entityType: z.enum(["lead", "deal", "contact"]).default("lead"),
    /** The card's entity id; a token signed before the rename (15 minutes at most) calls it `leadId`. */
    entityId: z.string().optional(),
    leadId: z.string().optional(),
    /** The exact number the tab showed and Call dials (E.164). */
    phone: z.string().nullable(),
    /** Unix seconds. */
    expiresAt: z.number(),
    nonce: z.string(),
  })
  .refine((c) => (c.entityId ?? c.leadId) !== undefined, { error: "names no card" })
  .transform(({ leadId, ...claims }) => ({ ...claims, entityId: (claims.entityId ?? leadId) as string }));
export type TabClaims = z.infer<typeof tabClaimsSchema>;

/** A card stays open a while; a quarter of an hour covers a conversation, not a day. */
export const TAB_TOKEN_TTL_SECONDS = 15 * 60;

const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array | null {
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** A short public name for a key, so a token says which key signed it and rotation needs no guessing. */
async function keyId(secret: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(`comagic-tab-token-kid|${secret}`)));
  return [...digest.slice(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function hmacKey(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [usage]);
}

/** Signs with the first key of TAB_TOKEN_SECRET: `<key id>.<claims>.<signature>`. */
export function signTabToken(claims: z.input<typeof tabClaimsSchema>, keys: readonly string[]): Promise<string> {
  return signClaims(claims, keys);
}

/** Signs any claims the app's pages carry (the Call button's, the report's) the same way. */
export async function signClaims(claims: object, keys: readonly string[]): Promise<string> {
  const secret = keys[0];
  if (!secret) throw new Error("no tab-token key");
  const head = `${await keyId(secret)}.${base64url(encoder.encode(JSON.stringify(claims)))}`;
  const signature = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret, "sign"), encoder.encode(head)));
  return `${head}.${base64url(signature)}`;
}

/**
 * The claims of a genuine token signed by any key of TAB_TOKEN_SECRET that has not expired and was never
 * meant to live longer than TAB_TOKEN_TTL_SECONDS; null for anything else.
 */
export function verifyTabToken(token: string, keys: readonly string[], nowSeconds: number): Promise<TabClaims | null> {
  return verifyClaims(token, keys, nowSeconds, tabClaimsSchema, TAB_TOKEN_TTL_SECONDS);
}

/** The claims of a genuine, unexpired token of `schema`, whose life was never meant to exceed `ttlSeconds`. */
export async function verifyClaims<T extends { expiresAt: number }>(token: string, keys: readonly string[], nowSeconds: number, schema: z.ZodType<T>, ttlSeconds: number): Promise<T | null> {
  const [kid, payload, signature, extra] = token.split(".");
  if (!kid || !payload || !signature || extra !== undefined) return null;
  const signatureBytes = fromBase64url(signature);
  if (!signatureBytes) return null;
  let secret: string | undefined;
  for (const candidate of keys) if ((await keyId(candidate)) === kid) secret = candidate;
  if (!secret) return null;
  // subtle.verify compares in constant time.
  if (!(await crypto.subtle.verify("HMAC", await hmacKey(secret, "verify"), signatureBytes, encoder.encode(`${kid}.${payload}`)))) return null;
  const bytes = fromBase64url(payload);
  if (!bytes) return null;
  try {
    const claims = schema.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
    if (!claims.success) return null;
    const { expiresAt } = claims.data;
    return expiresAt > nowSeconds && expiresAt <= nowSeconds + ttlSeconds ? claims.data : null;
  } catch {
    return null;
  }
}
