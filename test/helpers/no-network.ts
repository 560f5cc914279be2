import { beforeEach, vi } from "vitest";

// Unit tests are pure: any outbound request is a bug in the test, so it fails loudly unless stubbed.
beforeEach(() => {
  vi.stubGlobal("fetch", (input: unknown) => {
    throw new Error(`Unexpected network call in a unit test: ${String(input)}`);
  });
});
