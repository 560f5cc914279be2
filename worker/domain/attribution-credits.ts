import { channelOf, MODELS, touchShares, type Model } from "./attribution";
import type { Journey, SessionTouch } from "./touchpoints";

/*
 * What the attribution report reads: each lead's (or deal's) visits before it was created, with the keys every
 * grouping needs and the visit's share of the lead under each model. Stored once at enrichment, so the report
 * is a query over these rows, never a replay of journeys.
 */

export type CreditedEntity = "lead" | "deal";

export interface CreditRow {
  touchNo: number;
  at: string;
  utmSource: string | null;
  utmMedium: string | null;
  utmCampaign: string | null;
  /** The tab's channel label (`channelOf`): "utm_source / utm_medium", else CoMagic's channel, referral or direct. */
  sourceMedium: string;
  cmCampaignId: string | null;
  cmCampaignName: string | null;
  cmChannel: string | null;
  siteId: string | null;
  shares: Record<Model, number>;
}

/** CoMagic logs the visit a moment after the call or form it led to; visits this close after creation still count. */
const CREATION_TOLERANCE_MS = 10 * 60_000;

const onlyShare = (value: number) => Object.fromEntries(MODELS.map((m) => [m, value])) as Record<Model, number>;

/**
 * The credit rows of one conversion. A conversion whose visitor had no visit before it still counts once, as
 * one row without keys, so every model's shares add up to the number of leads.
 */
export function creditRows(journey: Journey, createdAt: Date): CreditRow[] {
  const until = createdAt.getTime() + CREATION_TOLERANCE_MS;
  const sessions = journey.touchpoints.filter((t): t is SessionTouch => t.type === "session" && Date.parse(t.at) <= until).sort((a, b) => a.at.localeCompare(b.at));
  if (sessions.length === 0) {
    return [
      {
        touchNo: 0,
        at: createdAt.toISOString(),
        utmSource: null,
        utmMedium: null,
        utmCampaign: null,
        sourceMedium: "",
        cmCampaignId: null,
        cmCampaignName: null,
        cmChannel: null,
        siteId: null,
        shares: onlyShare(1),
      },
    ];
  }
  const touches = sessions.map((s) => ({ channel: channelOf(s), at: Date.parse(s.at) }));
  const shares = Object.fromEntries(MODELS.map((m) => [m, touchShares(m, touches, createdAt.getTime())])) as Record<Model, number[]>;
  return sessions.map((s, i) => ({
    touchNo: i,
    at: s.at,
    utmSource: s.utm.source,
    utmMedium: s.utm.medium,
    utmCampaign: s.utm.campaign,
    sourceMedium: channelOf(s),
    cmCampaignId: s.campaignId ?? null,
    cmCampaignName: s.campaignName ?? null,
    cmChannel: s.channel,
    siteId: s.siteId ?? null,
    shares: Object.fromEntries(MODELS.map((m) => [m, shares[m][i] ?? 0])) as Record<Model, number>,
  }));
}
