CREATE TABLE `documents` (
	`id` text PRIMARY KEY NOT NULL,
	`owner` text,
	`title` text,
	`filename` text,
	`mime` text,
	`bytes` integer NOT NULL,
	`sha256` text NOT NULL,
	`object` text NOT NULL,
	`idempotency_key` text,
	`idempotency_fingerprint` text,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `documents_idempotency_key_unique` ON `documents` (`idempotency_key`);--> statement-breakpoint
CREATE INDEX `documents_owner_idx` ON `documents` (`owner`,`id`);