import type { CreditRow, CreditedEntity } from "../domain/attribution-credits";
import type { Model } from "../domain/attribution";
import type { CampaignCost, DealOutcome, GroupCredit, Grouping } from "../domain/attribution-report";

/*
 * What the report reads and the sync jobs write. The contract only: `attribution.ts` keeps it in D1. Kept
 * apart so code that runs outside workerd (the bench's deal sync in Node) can name it without D1's types.
 */

export interface DealRecord extends Omit<DealOutcome, "entityId"> {
  sourceEntity: CreditedEntity;
  sourceId: string;
  createdAt: string | null;
  modifiedAt: string | null;
}

export interface CostRecord {
  day: string;
  siteId: string;
  campaignId: string;
  campaignName: string | null;
  currency: string;
  cost: number;
}

export type Range = { from: Date; to: Date };

/** One conversion's credits as enrichment writes them. */
export interface ConversionCredits {
  entity: CreditedEntity;
  entityId: string;
  createdAt: Date;
  rows: readonly CreditRow[];
  /** Only ever set, never cleared: a later enrichment (a backfill) cannot tell and must not forget it. */
  madeContact?: boolean;
}

export interface AttributionStore {
  /**
   * Replaces one conversion's credits (a repeated enrichment writes the same rows). `madeContact` is only ever
   * set, never cleared: a later enrichment (a backfill) cannot tell and must not forget it.
   */
  putCredits(entity: CreditedEntity, entityId: string, createdAt: Date, rows: readonly CreditRow[], madeContact?: boolean): Promise<void>;
  /**
   * Replaces several conversions' credits in one D1 commit (one transaction: all of them or none), as
   * `putCredits` does each: an enrichment batch writes its leads' credits together.
   */
  putCreditsMany(conversions: readonly ConversionCredits[]): Promise<void>;
  /** Each conversion created in [from, to) with its share per group under a model. */
  credits(entity: CreditedEntity, range: Range, model: Model, grouping: Grouping): Promise<GroupCredit[]>;
  /** The deals of the conversions created in [from, to). */
  dealsOf(entity: CreditedEntity, range: Range): Promise<DealOutcome[]>;
  /** Ad cost per CoMagic campaign and currency over days (inclusive). */
  costs(days: { from: string; to: string }): Promise<CampaignCost[]>;
  /** Which of these leads and deals the report credits: only their deals are kept in step with Bitrix24. */
  credited(entity: CreditedEntity, ids: readonly string[]): Promise<Set<string>>;
  putDeals(deals: readonly DealRecord[]): Promise<void>;
  /** Replaces a day's cost for the sites read (a re-import of the same day writes the same rows). */
  putCosts(day: string, siteIds: readonly string[], rows: readonly CostRecord[]): Promise<void>;
  /** Sites the credited visits came from: get.campaign_daily_stat wants one site_id a request. */
  siteIds(): Promise<string[]>;
  hasCredits(entity: CreditedEntity): Promise<boolean>;
  getState(name: string): Promise<string | null>;
  setState(name: string, value: string): Promise<void>;
  /**
   * Takes the report sync's lease (one sync at a time, the cron's and every refresh's alike) until `until`:
   * its id, or null while another sync holds an unexpired lease. Atomic: of two callers, one gets it.
   */
  claimSync(now: Date, until: Date): Promise<string | null>;
  /** Gives the lease back (only the holder's own: a lease that expired and was taken again stays taken). */
  releaseSync(lease: string): Promise<void>;
  /** Whether a sync holds an unexpired lease now. */
  syncRunning(now: Date): Promise<boolean>;
}
