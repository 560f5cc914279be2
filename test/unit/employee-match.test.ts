import { describe, expect, it } from "vitest";
import { employeeMap, matchEmployees, userNames } from "../../worker/domain/employee-match";

/* Which Bitrix24 user each CoMagic employee is, as the settings page proposes it (issue #24: "matched by email or name where sure"). */

const user = (id: string, first: string, last: string, email: string | null) => ({ id, name: `${first} ${last}`, email, names: userNames(first, last) });
const USERS = [user("1", "Ivan", "Petrov", "ivan@shop.ru"), user("2", "Maria", "Sidorova", "MARIA@shop.ru "), user("3", "Anna", "Smirnova", null), user("4", "Anna", "Smirnova", "anna2@shop.ru")];

describe("matching CoMagic's employees to Bitrix24 users", () => {
  it("takes the saved mapping first, then the same email (case and spaces aside), then the same full name either way round", () => {
    const matches = matchEmployees(
      [
        { id: "25", fullName: "Someone Else", email: "ivan@shop.ru" },
        { id: "26", fullName: "Sidorova Maria", email: "maria@shop.ru" },
        { id: "27", fullName: "Petrov Ivan", email: null },
      ],
      USERS,
      { "3": 25 },
    );
    expect(matches.map((m) => [m.employee.id, m.userId, m.by])).toEqual([
      ["25", "3", "saved"],
      ["26", "2", "email"],
      ["27", "1", "name"],
    ]);
  });

  it("chooses nobody where two users are alike, or the saved user has left", () => {
    const matches = matchEmployees(
      [
        { id: "30", fullName: "Anna Smirnova", email: null },
        { id: "31", fullName: "Nobody Known", email: "x@y.z" },
      ],
      USERS,
      { "9": 31 },
    );
    expect(matches.map((m) => [m.employee.id, m.userId, m.by])).toEqual([
      ["30", null, "none"],
      ["31", null, "none"],
    ]);
  });

  it("refuses one user for two employees when the choices are saved", () => {
    expect(
      employeeMap([
        { employeeId: "25", userId: "1" },
        { employeeId: "26", userId: "2" },
      ]),
    ).toEqual({ ok: true, map: { "1": 25, "2": 26 } });
    expect(
      employeeMap([
        { employeeId: "25", userId: "1" },
        { employeeId: "26", userId: "1" },
      ]),
    ).toEqual({ ok: false, userId: "1" });
  });
});
