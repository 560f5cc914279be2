/**
 * Bitrix24's users as `user.get` answers them (FACTS-portals §8): the fields the worker reads, and a user's full name.
 * One schema for the settings page, click-to-call, employee matching and the deal loop's CoMagic employees.
 */
import * as z from "zod";

export const userRows = z.array(
  z
    .object({
      ID: z.union([z.string(), z.number()]).transform(String),
      NAME: z.string().nullish(),
      LAST_NAME: z.string().nullish(),
      EMAIL: z.string().nullish(),
    })
    .loose(),
);
export type BitrixUser = z.infer<typeof userRows>[number];

/** "Maria Sales", or null when Bitrix24 has no name for the user. */
export function fullName(user: Pick<BitrixUser, "NAME" | "LAST_NAME"> | undefined): string | null {
  return [user?.NAME, user?.LAST_NAME].filter(Boolean).join(" ") || null;
}
