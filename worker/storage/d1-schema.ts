/*
 * D1 holds what must survive and be queried: dead letters (listed newest first, replayed by id) and the
 * ledger of applied events (every session ever written, which Bitrix24's own fields cannot tell once a
 * later call has updated the lead), and the click-to-call guards. The schema is created on first use: no
 * migration step to forget.
 */
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS dead_letters (
     id TEXT PRIMARY KEY, queue TEXT NOT NULL, job_type TEXT NOT NULL, job TEXT NOT NULL, reason TEXT NOT NULL,
     code TEXT NOT NULL, attempts INTEGER NOT NULL, failed_at TEXT NOT NULL, replayed_at TEXT, replay_count INTEGER NOT NULL DEFAULT 0)`,
  `CREATE INDEX IF NOT EXISTS dead_letters_failed_at ON dead_letters (failed_at DESC)`,
  `CREATE TABLE IF NOT EXISTS applied_events (key TEXT PRIMARY KEY, lead_id TEXT NOT NULL, applied_at TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS contact_leads (contact TEXT PRIMARY KEY, lead_id TEXT NOT NULL, written_at TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS pending_creates (contact TEXT PRIMARY KEY, event_key TEXT NOT NULL, since TEXT NOT NULL)`,
  // The installed portal and its OAuth tokens: strongly consistent, so a spent refresh token is never read back.
  `CREATE TABLE IF NOT EXISTS portals (member_id TEXT PRIMARY KEY, record TEXT NOT NULL, refreshing_until TEXT)`,
  // Click-to-call: each tab token's one call, and calls a day per user and per portal (the toll-fraud caps).
  `CREATE TABLE IF NOT EXISTS call_tokens (nonce TEXT PRIMARY KEY, used_at TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS call_counts (day TEXT NOT NULL, scope TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (day, scope))`,
  // The attribution report: each conversion's visits with their shares per model, the deals they became, ad cost.
  `CREATE TABLE IF NOT EXISTS attribution_touches (
     entity TEXT NOT NULL, entity_id TEXT NOT NULL, touch_no INTEGER NOT NULL, created_at TEXT NOT NULL, at TEXT NOT NULL,
     utm_source TEXT, utm_medium TEXT, utm_campaign TEXT, source_medium TEXT, cm_campaign_id TEXT, cm_campaign_name TEXT, cm_channel TEXT, site_id TEXT,
     first_touch REAL NOT NULL, last_touch REAL NOT NULL, last_non_direct REAL NOT NULL, linear REAL NOT NULL, time_decay REAL NOT NULL, position_based REAL NOT NULL,
     PRIMARY KEY (entity, entity_id, touch_no))`,
  `CREATE INDEX IF NOT EXISTS attribution_touches_created ON attribution_touches (entity, created_at)`,
  `CREATE TABLE IF NOT EXISTS crm_deals (
     deal_id TEXT PRIMARY KEY, source_entity TEXT NOT NULL, source_id TEXT NOT NULL, semantic TEXT NOT NULL, amount REAL NOT NULL, currency TEXT NOT NULL,
     created_at TEXT, modified_at TEXT)`,
  `CREATE INDEX IF NOT EXISTS crm_deals_source ON crm_deals (source_entity, source_id)`,
  `CREATE TABLE IF NOT EXISTS ad_costs (day TEXT NOT NULL, site_id TEXT NOT NULL, campaign_id TEXT NOT NULL, campaign_name TEXT, currency TEXT NOT NULL, cost REAL NOT NULL, PRIMARY KEY (day, site_id, campaign_id, currency))`,
  // Deals of portals without leads that came with a contact the worker made (the report's "contacts made").
  `CREATE TABLE IF NOT EXISTS made_contacts (entity TEXT NOT NULL, entity_id TEXT NOT NULL, PRIMARY KEY (entity, entity_id))`,
  `CREATE TABLE IF NOT EXISTS sync_state (name TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  // The visitor id the worker wrote to each lead or deal (ledger ref): the only one whose journey the tab shows.
  `CREATE TABLE IF NOT EXISTS crm_visitors (item TEXT PRIMARY KEY, visitor_id TEXT NOT NULL, written_at TEXT NOT NULL)`,
];

const ready = new WeakMap<D1Database, Promise<unknown>>();

export function ensureSchema(db: D1Database): Promise<unknown> {
  let pending = ready.get(db);
  if (!pending) {
    pending = db.batch(SCHEMA.map((sql) => db.prepare(sql)));
    // A failure is not cached: the next use tries again.
    pending.catch(() => ready.delete(db));
    ready.set(db, pending);
  }
  return pending;
}
