import { describe, expect, it } from "vitest";
import { attribute, channelOf, DIRECT, MODELS, type Model, type Touch } from "../../worker/domain/attribution";
import { EMPTY_UTM } from "../../worker/domain/lead-event";

const DAY = 86_400_000;
const conversion = Date.UTC(2026, 10, 24);
const touch = (channel: string, daysBefore: number): Touch => ({ channel, at: conversion - daysBefore * DAY });

const round = (credit: Record<string, number>) => Object.fromEntries(Object.entries(credit).map(([k, v]) => [k, Math.round(v * 1000) / 1000]));

describe("channelOf", () => {
  it.each([
    [{ utm: { ...EMPTY_UTM, source: "yandex", medium: "cpc" }, channel: "paid", referrer: null }, "yandex / cpc"],
    [{ utm: { ...EMPTY_UTM, source: "vk" }, channel: null, referrer: null }, "vk"],
    [{ utm: EMPTY_UTM, channel: "organic", referrer: "https://www.google.com/" }, "organic"],
    [{ utm: EMPTY_UTM, channel: null, referrer: "https://blog.example.org/post" }, "referral: blog.example.org"],
    [{ utm: EMPTY_UTM, channel: "direct", referrer: null }, DIRECT],
    [{ utm: EMPTY_UTM, channel: null, referrer: null }, DIRECT],
  ])("%o is credited to %s", (session, label) => {
    expect(channelOf(session)).toBe(label);
  });
});

const journeys: [string, Touch[]][] = [
  ["one visit", [touch("yandex / cpc", 3)]],
  ["two visits", [touch("yandex / cpc", 10), touch("organic", 1)]],
  ["an ad, organic, then direct", [touch("yandex / cpc", 20), touch("organic", 8), touch(DIRECT, 0)]],
  ["the same channel twice", [touch("vk", 30), touch(DIRECT, 14), touch("vk", 2), touch("email", 1)]],
  ["direct only", [touch(DIRECT, 5), touch(DIRECT, 1)]],
];

describe("every model", () => {
  it.each(journeys.flatMap(([name, touches]) => MODELS.map((model) => [name, model, touches] as const)))("gives shares summing to 1 for %s (%s)", (_name, model, touches) => {
    const total = Object.values(attribute(model, touches, conversion)).reduce((a, b) => a + b, 0);
    expect(total).toBeCloseTo(1, 10);
  });

  it.each(MODELS)("%s credits nothing when there are no touches", (model) => {
    expect(attribute(model, [], conversion)).toEqual({});
  });

  it.each(MODELS)("%s does not depend on the order touches come in", (model) => {
    const [, touches] = journeys[3] as [string, Touch[]];
    expect(attribute(model, [...touches].reverse(), conversion)).toEqual(attribute(model, touches, conversion));
  });
});

describe("the models on an ad, then organic, then direct", () => {
  const [, touches] = journeys[2] as [string, Touch[]];
  it.each<[Model, Record<string, number>]>([
    ["first_touch", { "yandex / cpc": 1, organic: 0, direct: 0 }],
    ["last_touch", { "yandex / cpc": 0, organic: 0, direct: 1 }],
    ["last_non_direct", { "yandex / cpc": 0, organic: 1, direct: 0 }],
    ["linear", { "yandex / cpc": 0.333, organic: 0.333, direct: 0.333 }],
    ["position_based", { "yandex / cpc": 0.4, organic: 0.2, direct: 0.4 }],
  ])("%s", (model, expected) => {
    expect(round(attribute(model, touches, conversion))).toEqual(expected);
  });

  it("time decay halves a visit's weight for every 7 days before the conversion", () => {
    // Weights 2^-(20/7), 2^-(8/7), 1.
    const w = [2 ** (-20 / 7), 2 ** (-8 / 7), 1];
    const sum = w.reduce((a, b) => a + b, 0);
    expect(round(attribute("time_decay", touches, conversion))).toEqual(round({ "yandex / cpc": (w[0] ?? 0) / sum, organic: (w[1] ?? 0) / sum, direct: (w[2] ?? 0) / sum }));
  });
});

describe("edge cases", () => {
  it("credits direct under last non-direct when every visit was direct", () => {
    expect(attribute("last_non_direct", journeys[4]?.[1] ?? [], conversion)).toEqual({ direct: 1 });
  });

  it("splits position-based 50/50 between two visits", () => {
    expect(attribute("position_based", journeys[1]?.[1] ?? [], conversion)).toEqual({ "yandex / cpc": 0.5, organic: 0.5 });
  });

  it("adds up a channel's visits", () => {
    expect(round(attribute("linear", journeys[3]?.[1] ?? [], conversion))).toEqual({ vk: 0.5, direct: 0.25, email: 0.25 });
  });
});
