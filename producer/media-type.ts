import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors.ts";
import type { OperationDoc } from "./openapi.ts";

/** The media types a route reads its body as, from its declaration: one schema name means JSON. */
export function bodyMediaTypes(body: OperationDoc["body"]): string[] | undefined {
  if (body === undefined) return undefined;
  return typeof body === "string" ? ["application/json"] : Object.keys(body);
}

/**
 * 415 `unsupported_media_type` unless the body's Content-Type is one of `types` (parameters such as charset
 * aside). A JSON route that read any body as JSON let a page on another site post JSON as `text/plain`, which a
 * browser sends without asking the server first (no CORS preflight).
 */
export function requireMediaType(types: readonly string[]): MiddlewareHandler {
  return async (c, next) => {
    const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
    if (!types.includes(type))
      throw new ApiError(
        "unsupported_media_type",
        `${type ? `Content-Type ${type} is not read here` : "no Content-Type"}: send the body as ${types.join(" or ")}`,
      );
    return next();
  };
}
