/**
 * Seconds buckets for job run time and queue wait, shared by the producer's and the workers' histograms
 * so a dashboard can put them side by side: interactive jobs take a second, batch documents minutes.
 */
export const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
