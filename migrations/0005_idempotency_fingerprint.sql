ALTER TABLE `batches` ADD `idempotency_fingerprint` text;--> statement-breakpoint
ALTER TABLE `jobs` ADD `idempotency_fingerprint` text;