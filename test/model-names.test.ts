import { describe, expect, it } from "vitest";
import { loadConfig } from "../schema/config.ts";
import { isModelName, RequestedModel, toModelName } from "../schema/model.ts";
import { shareConsumer, subjects, workerConsumer, workerConsumerOf } from "../schema/subjects.ts";

describe("model names", () => {
  it("a GGUF's name, a file name or a request's model becomes a subject token: lowercase [a-z0-9_-]", () => {
    expect(toModelName("Qwen3-Next-80B-A3B-Instruct")).toBe("qwen3-next-80b-a3b-instruct");
    expect(toModelName("Qwen3.5 27B (Q4_K_M).gguf")).toBe("qwen3-5-27b-q4_k_m");
    expect(toModelName("docket-demo-tiny")).toBe("docket-demo-tiny");
    expect(toModelName("...")).toBe("");
    expect(toModelName("a".repeat(100))).toHaveLength(64);
    for (const raw of ["Qwen3-Next-80B-A3B-Instruct", "x.y*z>w", " spaced name ", "ünïcode-モデル-7b"]) {
      expect(isModelName(toModelName(raw))).toBe(true);
    }
  });

  it("an API request's model is normalized, and refused when nothing usable is left", () => {
    expect(RequestedModel.parse("Docket-Demo-Tiny")).toBe("docket-demo-tiny");
    expect(RequestedModel.safeParse("...").success).toBe(false);
  });

  it("a job naming a model gets the model's token on its subject and its own consumer per lane", () => {
    expect(subjects.job("batch", "classify")).toBe("docket.jobs.batch.classify");
    expect(subjects.job("batch", "classify", "triage")).toBe("docket.jobs.batch.classify.triage");
    expect(workerConsumer("batch", "triage")).toBe("docket-workers-batch-triage");
    expect(workerConsumerOf("docket-workers-batch-triage")).toEqual({ lane: "batch", model: "triage" });
    expect(workerConsumerOf("docket-workers-interactive")).toEqual({ lane: "interactive" });
    expect(workerConsumerOf("docket-recorder")).toBeUndefined();
  });

  it("an API key's consumers name its lane, key, model and deadline class, and read six- or seven-token subjects", () => {
    expect(subjects.sharedJob("batch", "summarize", undefined, "key_a")).toBe("docket.jobs.batch.summarize._.key_a");
    expect(subjects.sharedJob("default", "ask", "triage-v2", "key_a", true)).toBe("docket.jobs.default.ask.triage-v2.key_a.due");
    expect(subjects.ownerJobs("batch", "triage-v2", "key_a")).toBe("docket.jobs.batch.*.triage-v2.key_a");
    for (const [lane, model, due] of [
      ["batch", undefined, false],
      ["default", "triage-v2", false],
      ["batch", "triage-v2", true],
    ] as const)
      expect(workerConsumerOf(shareConsumer(lane, "key_01abc", model, due))).toEqual({
        lane,
        owner: "key_01abc",
        ...(model ? { model } : {}),
        ...(due ? { due } : {}),
      });
  });

  it("DOCKET_MODEL_NAME and DOCKET_DEFAULT_MODEL must be model names, and not docket (OpenAI's name of the default)", () => {
    expect(loadConfig({ DOCKET_MODEL_NAME: "triage", DOCKET_DEFAULT_MODEL: "qwen3-next" })).toMatchObject({
      DOCKET_MODEL_NAME: "triage",
      DOCKET_DEFAULT_MODEL: "qwen3-next",
    });
    expect(() => loadConfig({ DOCKET_MODEL_NAME: "Qwen3.5" })).toThrow(
      /DOCKET_MODEL_NAME: not a model name: "Qwen3.5" .*e\.g\. qwen3-5/,
    );
    expect(() => loadConfig({ DOCKET_DEFAULT_MODEL: "docket" })).toThrow(
      /DOCKET_DEFAULT_MODEL: "docket" names the default model/,
    );
  });
});
