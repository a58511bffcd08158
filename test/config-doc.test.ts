import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigSchema } from "../schema/config.ts";
import { CONFIG_DOC, renderConfigReference, withConfigReference } from "../tools/config-doc.ts";

describe("configuration reference", () => {
  it("docs/configuration.md is what `npm run docs:config` generates from schema/config.ts", () => {
    const text = readFileSync(CONFIG_DOC, "utf8");
    // On failure: run `npm run docs:config` and commit docs/configuration.md.
    expect(text).toBe(withConfigReference(text));
  });

  it("lists every variable of the schema", () => {
    const reference = renderConfigReference();
    for (const name of Object.keys(ConfigSchema.shape)) expect(reference).toContain(`| \`${name}\` |`);
  });
});
