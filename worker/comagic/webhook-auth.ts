import { matchesAnySecret } from "../security";

const encoder = new TextEncoder();

function hexToBytes(hex: string): Uint8Array | null {
  if (!/^[0-9a-f]{64}$/.test(hex)) return null;
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

async function signatureMatches(signature: string, body: ArrayBuffer, secrets: readonly string[]): Promise<boolean> {
  const expected = hexToBytes(signature.trim().replace(/^sha256=/, ""));
  if (!expected) return false;
  const results = await Promise.all(
    secrets.map(async (secret) => {
      const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
      return crypto.subtle.verify("HMAC", key, expected, body);
    }),
  );
  return results.includes(true);
}

export interface WebhookCredentials {
  token: string | null;
  signature: string | null;
}

export interface WebhookSecrets {
  tokens?: readonly string[];
  secrets?: readonly string[];
}

/**
 * A webhook passes when a configured method verifies it: the `token` query parameter or the
 * `X-CoMagic-Signature` HMAC-SHA256 of the raw body. A credential that is presented must be right:
 * a wrong signature fails the request even beside a right token.
 */
export async function verifyWebhook(credentials: WebhookCredentials, body: ArrayBuffer, configured: WebhookSecrets): Promise<boolean> {
  const checks: Promise<boolean>[] = [];
  if (credentials.token !== null && configured.tokens?.length) checks.push(matchesAnySecret(credentials.token, configured.tokens));
  if (credentials.signature !== null && configured.secrets?.length) checks.push(signatureMatches(credentials.signature, body, configured.secrets));
  if (checks.length === 0) return false;
  return (await Promise.all(checks)).every(Boolean);
}
