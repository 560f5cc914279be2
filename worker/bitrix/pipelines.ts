/**
 * The portal's deal pipelines as Bitrix24 lists them (crm.category.list, crm.status.list; FACTS-portals §2): the
 * settings page's funnels, the CoMagic funnels made from them (FACTS-loop §1.2) and the deal loop read them here.
 */
import * as z from "zod";
import type { Pipeline } from "../domain/deal-history";
import type { BitrixClient } from "./client";

const idText = z.union([z.number(), z.string()]).transform(String);
const categoryRow = z.object({ id: idText, name: z.string() }).loose();
// The universal API answers {categories: […]}; an older answer is the array itself. Both are read.
const categoryList = z.union([z.object({ categories: z.array(categoryRow) }).transform((r) => r.categories), z.array(categoryRow)]);
const stageRows = z.array(z.object({ STATUS_ID: z.string(), NAME: z.string(), SORT: z.coerce.number().optional(), SEMANTICS: z.string().nullish() }).loose());

/**
 * Every deal pipeline (crm.category.list, entityTypeId 2) with all its stages and their semantics (crm.status.list
 * DEAL_STAGE[_<id>], FACTS-portals §2): the settings page's funnels and CoMagic's (FACTS-loop §1.2) are made from it.
 * The general funnel's name may be empty (the page names it); a portal that answers no funnel still has the general one.
 */
export async function loadPipelines(bitrix: BitrixClient): Promise<Pipeline[]> {
  const categories = categoryList.safeParse(await bitrix.call("crm.category.list", { entityTypeId: 2 })).data ?? [];
  const pipelines: Pipeline[] = [];
  for (const category of (categories.length ? categories : [{ id: "0", name: "" }]).slice(0, 20)) {
    const entityId = category.id === "0" ? "DEAL_STAGE" : `DEAL_STAGE_${category.id}`;
    const stages = stageRows.safeParse(await bitrix.call("crm.status.list", { filter: { ENTITY_ID: entityId } })).data ?? [];
    pipelines.push({
      categoryId: category.id,
      name: category.name,
      stages: stages.map((stage) => ({ id: stage.STATUS_ID, name: stage.NAME, sort: stage.SORT ?? 0, semantics: stage.SEMANTICS === "S" ? "S" : stage.SEMANTICS === "F" ? "F" : "P" })),
    });
  }
  return pipelines;
}
