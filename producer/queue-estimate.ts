import type { QueueEstimate } from "../schema/queue.ts";
import { LANES, SHARED_LANES } from "../schema/subjects.ts";
import type { BatchRow, JobRow } from "../schema/tables.ts";
import type { JobStore, QueuedWork, QueuePlace } from "./stores/jobs.ts";
import type { FleetRate, Throughput } from "./throughput.ts";

/**
 * What a prompt token costs against a generated one: prompts are evaluated many tokens per decode step. Only the
 * difference between the queued work's prompt mix and the mix the workers' tokens/s was measured on uses it (see
 * Pace), so it matters only when they differ (long documents queued after short ones). ~0.04 measured on the 2-core
 * CPU dev VM with the bench model (bench:eta: 3035 generated + 64324 prompt tokens in 42 s at a 135 tok/s decode
 * rate); on a GPU prefill is relatively faster, so this errs towards later estimates there.
 */
export const PROMPT_TOKEN_COST = 0.04;

/**
 * The estimate of a job no live worker can take (its model has none: WorkerRegistry.waiting): its place in line,
 * and no times, as when no worker is alive at all.
 */
export function withoutTimes(e: QueueEstimate | null): QueueEstimate | null {
  return e && { ...e, estimatedStartAt: null, estimatedFinishAt: null, tokensPerSecond: null };
}

/** The view of a job's (first = last) or a batch's estimate: the first queued job's place, the last one's finish. */
function view(first: Estimate, last: Estimate, rate: number | null): QueueEstimate {
  return {
    position: first.ahead.jobs + 1,
    keyPosition: first.own + 1,
    ahead: first.ahead,
    estimatedStartAt: first.start,
    estimatedFinishAt: last.finish,
    tokensPerSecond: rate,
  };
}

/** A running job is, on average, half done. */
const RUNNING_LEFT = 0.5;

/** How recent jobs calibrate the estimates (JobStore.recentCalibration); none yet: budgets used whole, mix unknown. */
interface Pace {
  /** Generated tokens per token of budget. */
  fill: number;
  /** Estimated prompt tokens per generated token behind the measured tokens/s. */
  mix: number;
}

const tokens = (w: Pick<QueuedWork, "promptTokens" | "maxTokens">) => w.promptTokens + w.maxTokens;

/**
 * Queue position and ETA of queued jobs and batches. In the interactive lane jobs are served first come, first
 * served (by `queuedAt`: submission, or the retry that put them back); in the shared lanes (default, batch) each key
 * gets its share (by weight) of the lane, and its own jobs go in order, those with a deadline first (aheadOf).
 * Workers serve the interactive lane before default and
 * default before batch, so the queued work of the lanes served first and the rest of the running jobs come before
 * a job too. Times come from the work to do over the throughput the workers report (Throughput: generated tokens
 * per second, prompt evaluation included), else over the speed of recent jobs. The work is the tokens the jobs
 * will generate (their budgets times the share recent jobs used) plus PROMPT_TOKEN_COST per prompt token, and the
 * rate is raised by the prompt work already behind the measured tokens/s: with the mix recent jobs had, the time is
 * simply generated tokens over tokens/s. With S sequences running at once, a job starts when the work ahead of it,
 * less what the S-1 other slots hold, is done, and runs at 1/S of the aggregate rate: the last of N equal jobs then
 * starts at (N-S)·w/R and finishes at N·w/R, as it does.
 */
/** Where one queued job stands (QueueEstimator.estimate). */
interface Estimate {
  /** Its own key's jobs ahead of it. */
  own: number;
  ahead: { jobs: number; tokens: number };
  start: string | null;
  finish: string | null;
}

export class QueueEstimator {
  constructor(
    private readonly jobs: JobStore,
    private readonly throughput: Pick<Throughput, "current">,
    /** An API key's weight in the shared lanes (KeyStore.weight). */
    private readonly weightOf: (owner: string) => number = () => 1,
  ) {}

  forJob(row: JobRow, now = Date.now()): QueueEstimate | null {
    if (row.state !== "queued") return null;
    const place = {
      queuedAt: row.queuedAt ?? row.submittedAt,
      batchIndex: row.batchIndex ?? -1,
      id: row.id,
      due: row.deadline !== null,
    };
    const own = { promptTokens: row.estimatedPromptTokens ?? 0, maxTokens: row.maxTokens ?? 0 };
    const line = this.line(row.lane);
    const e = this.estimate(line, place, own, row.owner, now);
    return view(e, e, line.rate);
  }

  /** A batch's: its first queued job's position and start, its last one's finish. */
  forBatch(row: BatchRow, now = Date.now()): QueueEstimate | null {
    if (row.queued === 0) return null;
    const q = this.jobs.batchQueue(row.id);
    if (!q) return null;
    const line = this.line(row.lane);
    const first = this.estimate(line, q.first, q.first, row.owner, now);
    const last = this.estimate(line, q.last, q.last, row.owner, now);
    return view(first, last, line.rate);
  }

  /**
   * What comes before any queued job of `lane` (the lanes served first, the running jobs), how work is counted,
   * and the fleet's rate.
   */
  private line(lane: JobRow["lane"]) {
    const { fill, mix }: Pace = this.jobs.recentCalibration() ?? { fill: 1, mix: 0 };
    const work = (w: Pick<QueuedWork, "promptTokens" | "maxTokens">) => w.maxTokens * fill + w.promptTokens * PROMPT_TOKEN_COST;
    const first = LANES.slice(0, LANES.indexOf(lane));
    const before = { jobs: 0, work: 0 };
    for (const w of this.jobs.openWork()) {
      if (w.state === "running") {
        before.jobs += w.jobs;
        before.work += work(w) * RUNNING_LEFT;
      } else if (first.includes(w.lane)) {
        before.jobs += w.jobs;
        before.work += work(w);
      }
    }
    const fleet = this.fleet();
    return {
      lane,
      before,
      work,
      // In a shared lane, each key's queued work: what fair sharing serves beside a job (aheadOf).
      byOwner: SHARED_LANES.includes(lane) ? this.jobs.queuedByOwner(lane) : [],
      fleet,
      // The measured tokens/s already paid for `mix` prompt tokens per generated token.
      workPerSecond: fleet ? fleet.tokensPerSecond * (1 + PROMPT_TOKEN_COST * mix) : 0,
      rate: fleet ? Math.round(fleet.tokensPerSecond * 10) / 10 : null,
    };
  }

  /** The workers' rate, else recent jobs' speed times the sequences they run; undefined when no worker is alive. */
  private fleet(): FleetRate | undefined {
    const fleet = this.throughput.current();
    if (!fleet || fleet.tokensPerSecond > 0) return fleet;
    const perSequence = this.jobs.recentSequenceRate();
    return perSequence ? { tokensPerSecond: perSequence * fleet.sequences, sequences: fleet.sequences } : undefined;
  }

  /**
   * The queued work of its lane that runs before a job: in the interactive lane every job queued earlier; in a
   * shared lane (fair shares between keys) its own key's jobs ahead of it, and of each other key's queued work what
   * fair sharing serves meanwhile: the key's work ahead times the other key's weight over its own, at most all of it.
   */
  private aheadOf(line: ReturnType<QueueEstimator["line"]>, place: QueuePlace, owner: string | null) {
    if (!SHARED_LANES.includes(line.lane)) {
      const a = this.jobs.ahead(line.lane, place);
      return { own: a.jobs, jobs: a.jobs, tokens: tokens(a), work: line.work(a) };
    }
    const weight = (o: string | null) => (o === null ? 1 : this.weightOf(o));
    const mine = this.jobs.aheadOfOwner(line.lane, owner, place);
    const mineWork = line.work(mine);
    const out = { own: mine.jobs, jobs: mine.jobs, tokens: tokens(mine), work: mineWork };
    for (const other of line.byOwner) {
      if (other.owner === owner) continue;
      const total = line.work(other);
      if (total <= 0) continue;
      const served = Math.min(1, (mineWork * weight(other.owner)) / weight(owner) / total);
      out.jobs += other.jobs * served;
      out.tokens += tokens(other) * served;
      out.work += total * served;
    }
    return out;
  }

  private estimate(
    line: ReturnType<QueueEstimator["line"]>,
    place: QueuePlace,
    own: Pick<QueuedWork, "promptTokens" | "maxTokens">,
    owner: string | null,
    now: number,
  ): Estimate {
    const a = this.aheadOf(line, place, owner);
    const ahead = { jobs: Math.round(a.jobs), tokens: Math.round(a.tokens) };
    if (!line.fleet) return { own: a.own, ahead, start: null, finish: null };
    const { work, workPerSecond: rate } = line;
    const jobsAhead = line.before.jobs + a.jobs;
    const workAhead = line.before.work + a.work;
    const slots = Math.min(line.fleet.sequences, jobsAhead + 1);
    const meanJob = jobsAhead > 0 ? workAhead / jobsAhead : 0;
    const startIn = Math.max(0, workAhead - (slots - 1) * meanJob) / rate;
    const runFor = (work(own) * slots) / rate;
    const at = (seconds: number) => new Date(now + Math.round(seconds * 1000)).toISOString();
    return { own: a.own, ahead, start: at(startIn), finish: at(startIn + runFor) };
  }
}
