CREATE TABLE `files` (
	`id` text PRIMARY KEY NOT NULL,
	`filename` text NOT NULL,
	`purpose` text NOT NULL,
	`bytes` integer NOT NULL,
	`batch_id` text,
	`batch_part` text,
	`owner` text,
	`created_at` text NOT NULL,
	`content` blob
);
--> statement-breakpoint
CREATE INDEX `files_created_idx` ON `files` (`created_at`);--> statement-breakpoint
CREATE TABLE `openai_batches` (
	`id` text PRIMARY KEY NOT NULL,
	`input_file_id` text NOT NULL,
	`endpoint` text NOT NULL,
	`completion_window` text NOT NULL,
	`metadata` text,
	`model` text,
	`rejected` text,
	`errors` text,
	`output_file_id` text,
	`error_file_id` text,
	`files_at` text,
	`owner` text,
	`created_at` text NOT NULL
);
