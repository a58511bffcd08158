CREATE TABLE `job_events` (
	`job_id` text NOT NULL,
	`kind` text NOT NULL,
	`attempt` integer NOT NULL,
	`worker_id` text NOT NULL,
	`at` text NOT NULL,
	`stream_seq` integer,
	PRIMARY KEY(`job_id`, `kind`, `attempt`)
);
--> statement-breakpoint
CREATE TABLE `jobs` (
	`id` text PRIMARY KEY NOT NULL,
	`lane` text NOT NULL,
	`task` text NOT NULL,
	`state` text NOT NULL,
	`input` text,
	`params` text NOT NULL,
	`batch_id` text,
	`custom_id` text,
	`idempotency_key` text,
	`result` text,
	`error` text,
	`attempts` integer DEFAULT 0 NOT NULL,
	`worker_id` text,
	`submitted_at` text NOT NULL,
	`deadline` text,
	`published_at` text,
	`started_at` text,
	`finished_at` text,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `jobs_idempotency_key_unique` ON `jobs` (`idempotency_key`);--> statement-breakpoint
CREATE INDEX `jobs_state_idx` ON `jobs` (`state`);--> statement-breakpoint
CREATE INDEX `jobs_batch_idx` ON `jobs` (`batch_id`);--> statement-breakpoint
CREATE INDEX `jobs_unpublished_idx` ON `jobs` (`published_at`);