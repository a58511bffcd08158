/**
 * A structural check of a JSON schema given as params.schema, cheap enough for the producer's edge:
 * the worker's grammar compiler is the final judge (a schema it cannot decode fails with invalid_params),
 * but a malformed schema is refused at submission with the field that is wrong.
 */
const TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);
const SUBSCHEMA_MAPS = ["properties", "$defs", "definitions"] as const;
const SUBSCHEMA_LISTS = ["oneOf", "anyOf", "allOf", "prefixItems"] as const;

/** Deepest nesting of arrays and objects accepted in params.schema: far past any real schema, far below a stack overflow. */
export const MAX_JSON_DEPTH = 128;

/**
 * True when arrays and objects in `value` nest deeper than `max` levels. Iterative, so it is safe on any
 * depth JSON.parse accepts (JSON.stringify of a value ~8,000 levels deep overflows the stack).
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const pending: [unknown, number][] = [[value, 1]];
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [v, depth] = next;
    if (typeof v !== "object" || v === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) pending.push([child, depth + 1]);
  }
  return false;
}

export interface SchemaIssue {
  /** Where in the schema, e.g. "properties.name.type". */
  at: string;
  message: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function jsonSchemaIssue(schema: unknown, at = "", depth = 0): SchemaIssue | undefined {
  const where = (key: string) => (at ? `${at}.${key}` : key);
  if (typeof schema === "boolean") return undefined;
  if (!isObject(schema)) return { at: at || "(root)", message: "a JSON schema must be an object" };
  if (depth > 32) return { at, message: "the schema nests deeper than 32 levels" };
  const { type } = schema;
  if (type !== undefined) {
    const types = Array.isArray(type) ? type : [type];
    const bad = types.find((t) => typeof t !== "string" || !TYPES.has(t));
    if (types.length === 0 || bad !== undefined) {
      return { at: where("type"), message: `unknown type ${JSON.stringify(bad)}; use one of ${[...TYPES].join(", ")}` };
    }
  }
  if (schema.enum !== undefined && (!Array.isArray(schema.enum) || schema.enum.length === 0)) {
    return { at: where("enum"), message: "enum must be a non-empty array" };
  }
  if (schema.required !== undefined && (!Array.isArray(schema.required) || schema.required.some((r) => typeof r !== "string"))) {
    return { at: where("required"), message: "required must be an array of property names" };
  }
  for (const key of ["minLength", "maxLength", "minItems", "maxItems"]) {
    const v = schema[key];
    if (v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < 0)) {
      return { at: where(key), message: `${key} must be a non-negative integer` };
    }
  }
  for (const key of SUBSCHEMA_MAPS) {
    const map = schema[key];
    if (map === undefined) continue;
    if (!isObject(map)) return { at: where(key), message: `${key} must be an object of schemas` };
    for (const [name, sub] of Object.entries(map)) {
      const issue = jsonSchemaIssue(sub, where(`${key}.${name}`), depth + 1);
      if (issue) return issue;
    }
  }
  for (const key of SUBSCHEMA_LISTS) {
    const list = schema[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) return { at: where(key), message: `${key} must be an array of schemas` };
    for (const [i, sub] of list.entries()) {
      const issue = jsonSchemaIssue(sub, where(`${key}.${i}`), depth + 1);
      if (issue) return issue;
    }
  }
  for (const key of ["items", "additionalProperties"]) {
    if (schema[key] === undefined) continue;
    const issue = jsonSchemaIssue(schema[key], where(key), depth + 1);
    if (issue) return issue;
  }
  return undefined;
}
