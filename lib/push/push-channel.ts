/**
 * The durable channel that carries push work (new messages for offline devices,
 * "read elsewhere" retractions) from messages and receipts to the push service:
 * NATS JetStream in a cluster, in-process in the embedded profile. At least once;
 * a redelivered job replaces the same notification (collapse key = conversation).
 */
export const PUSH_CHANNEL = "parley.push";
export const PUSH_DEAD_LETTER_CHANNEL = "parley.push.dead";
export const PUSH_MAX_RETRIES = 5;
export const PUSH_IN_FLIGHT = 32;
/** In one process: batches (one per event-loop turn) handled at once before any waits in the bulkhead's queue. */
export const PUSH_IN_PROCESS_IN_FLIGHT = 10_000;
/** How long one delivery retries FCM's transient failures before the channel redelivers it. */
export const PUSH_PATIENCE_MS = 15_000;
/** A push older than this is not worth showing any more: dropped rather than retried. */
export const PUSH_MAX_AGE_MS = 10 * 60_000;
export const PUSH_STREAM_LIMITS = { max_age: 86_400 * 1e9, max_bytes: 256 * 1024 ** 2 };
