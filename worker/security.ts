const encoder = new TextEncoder();

async function sha256(data: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(data));
}

/**
 * True when `candidate` equals one of `accepted`, in constant time: both sides are hashed first so their
 * lengths never leak, and every accepted value is compared so timing does not tell which one matched.
 */
export async function matchesAnySecret(candidate: string, accepted: readonly string[]): Promise<boolean> {
  const wanted = await sha256(candidate);
  const results = await Promise.all(accepted.map(async (value) => crypto.subtle.timingSafeEqual(wanted, await sha256(value))));
  return results.includes(true);
}
