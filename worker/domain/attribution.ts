import type { SessionTouch } from "./touchpoints";

/**
 * "Direct" is defined once, here: a visit with no UTM source, no referrer, and no channel from CoMagic
 * other than "direct" itself. Every other visit is credited to its channel label.
 */
export const DIRECT = "direct";

/** The label a visit is credited to: "utm_source / utm_medium" when tagged, else CoMagic's channel, else the referring site. */
export function channelOf(session: Pick<SessionTouch, "utm" | "channel" | "referrer">): string {
  if (session.utm.source) return session.utm.medium ? `${session.utm.source} / ${session.utm.medium}` : session.utm.source;
  if (session.channel && session.channel !== DIRECT) return session.channel;
  if (session.referrer) {
    try {
      return `referral: ${new URL(session.referrer).host}`;
    } catch {
      return "referral";
    }
  }
  return DIRECT;
}

export interface Touch {
  channel: string;
  /** Milliseconds since the epoch. */
  at: number;
}

/** Shares per channel, summing to 1 (empty when there are no touches). */
export type Credit = Record<string, number>;

export const MODELS = ["first_touch", "last_touch", "last_non_direct", "linear", "time_decay", "position_based"] as const;
export type Model = (typeof MODELS)[number];

const HALF_LIFE_MS = 7 * 86_400_000;

function credit(touches: readonly Touch[], weights: readonly number[]): Credit {
  const total = weights.reduce((a, b) => a + b, 0);
  const result: Credit = {};
  if (total <= 0) return result;
  touches.forEach((t, i) => {
    result[t.channel] = (result[t.channel] ?? 0) + (weights[i] ?? 0) / total;
  });
  return result;
}

/** Weights of each touch, oldest first, under a model (not normalised). */
function weightsFor(model: Model, touches: readonly Touch[], conversionAt: number): number[] {
  const n = touches.length;
  const only = (index: number) => touches.map((_, i) => (i === index ? 1 : 0));
  switch (model) {
    case "first_touch":
      return only(0);
    case "last_touch":
      return only(n - 1);
    case "last_non_direct": {
      // The last visit that was not direct; a journey of direct visits only is credited to direct.
      let index = n - 1;
      while (index > 0 && touches[index]?.channel === DIRECT) index -= 1;
      return only(touches[index]?.channel === DIRECT ? n - 1 : index);
    }
    case "linear":
      return touches.map(() => 1);
    case "time_decay":
      return touches.map((t) => 2 ** (-Math.max(0, conversionAt - t.at) / HALF_LIFE_MS));
    case "position_based":
      if (n <= 2) return touches.map(() => 1);
      return touches.map((_, i) => (i === 0 || i === n - 1 ? 0.4 : 0.2 / (n - 2)));
  }
}

/** Each touch's share of the conversion under a model, for touches already ordered oldest first; sums to 1. */
export function touchShares(model: Model, ordered: readonly Touch[], conversionAt: number): number[] {
  if (ordered.length === 0) return [];
  const weights = weightsFor(model, ordered, conversionAt);
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => (total > 0 ? w / total : 0));
}

/** Credits the conversion to the touches' channels under one model. Touches may come in any order. */
export function attribute(model: Model, touches: readonly Touch[], conversionAt: number): Credit {
  if (touches.length === 0) return {};
  const ordered = [...touches].sort((a, b) => a.at - b.at);
  return credit(ordered, weightsFor(model, ordered, conversionAt));
}
