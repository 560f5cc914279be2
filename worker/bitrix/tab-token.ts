import * as z from "zod";

/**
 * The token the CoMagic tab embeds for its Call button: who (portal, user), which lead, until when.
 * Signed with HMAC-SHA256 under a key derived from the app's client secret, so only a verified tab
 * session can start a call, and only for its own lead.
 */
export const tabClaimsSchema = z.object({
  memberId: z.string(),
  userId: z.string(),
  leadId: z.string(),
  /** Unix seconds. */
  expiresAt: z.number(),
  nonce: z.string(),
});
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

async function key(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  // A key of its own, derived from the client secret, so a tab token is never a valid OAuth value.
  const derived = await crypto.subtle.digest("SHA-256", encoder.encode(`comagic-tab-token|${secret}`));
  return crypto.subtle.importKey("raw", derived, { name: "HMAC", hash: "SHA-256" }, false, [usage]);
}

export async function signTabToken(claims: TabClaims, secret: string): Promise<string> {
  const payload = base64url(encoder.encode(JSON.stringify(claims)));
  const signature = new Uint8Array(await crypto.subtle.sign("HMAC", await key(secret, "sign"), encoder.encode(payload)));
  return `${payload}.${base64url(signature)}`;
}

/** The claims of a genuine, unexpired token; null for anything else. */
export async function verifyTabToken(token: string, secret: string, nowSeconds: number): Promise<TabClaims | null> {
  const [payload, signature, extra] = token.split(".");
  if (!payload || !signature || extra !== undefined) return null;
  const signatureBytes = fromBase64url(signature);
  if (!signatureBytes) return null;
  // subtle.verify compares in constant time.
  if (!(await crypto.subtle.verify("HMAC", await key(secret, "verify"), signatureBytes, encoder.encode(payload)))) return null;
  const bytes = fromBase64url(payload);
  if (!bytes) return null;
  try {
    const claims = tabClaimsSchema.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
    return claims.success && claims.data.expiresAt > nowSeconds ? claims.data : null;
  } catch {
    return null;
  }
}
