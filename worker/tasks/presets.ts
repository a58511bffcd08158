/**
 * Ready analysis schemas for extract, chosen with params.preset. Every string and array is bounded
 * (maxLength, maxItems): a grammar limits tokens, not length, and a result must end for it to be JSON.
 */
import type { PRESET_NAMES } from "../../schema/job.ts";

export type PresetName = (typeof PRESET_NAMES)[number];

const text = (maxLength: number, description: string) => ({ type: "string", maxLength, description });
const list = (items: Record<string, unknown>, maxItems: number) => ({ type: "array", items, maxItems });
const object = (properties: Record<string, unknown>) => ({
  type: "object",
  properties,
  required: Object.keys(properties),
  additionalProperties: false,
});

export const PRESETS = {
  legal: object({
    parties: list(object({ name: text(120, "party name"), role: text(60, "e.g. lessor, buyer, employer") }), 10),
    clauses: list(object({ title: text(80, "clause heading or topic"), summary: text(300, "what the clause says") }), 20),
    obligations: list(
      object({
        party: text(120, "who is bound"),
        obligation: text(300, "what they must do or not do"),
        deadline: text(80, "when, or empty"),
      }),
      20,
    ),
    risks: list(
      object({
        risk: text(300, "a risk for the parties: liability, penalty, termination, ambiguity"),
        severity: { type: "string", enum: ["low", "medium", "high"] },
      }),
      10,
    ),
  }),
  medical: object({
    diagnoses: list(object({ condition: text(120, "diagnosis"), status: text(60, "e.g. confirmed, suspected, resolved") }), 15),
    medications: list(
      object({
        name: text(80, "drug name"),
        dosage: text(80, "strength and amount, e.g. 500 mg"),
        frequency: text(80, "e.g. twice daily"),
        route: text(40, "e.g. oral, IV"),
      }),
      20,
    ),
    followUps: list(object({ action: text(200, "test, visit or referral"), when: text(80, "date or interval, or empty") }), 10),
  }),
} as const satisfies Record<PresetName, Record<string, unknown>>;
